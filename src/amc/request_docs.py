"""The request reference, ``docs/REQUESTS.md``: every request's fields, defaults, ranges and
meanings as Markdown tables, rendered from :mod:`amc.requests` (``python -m amc.requests``)."""

from __future__ import annotations

from typing import Any

from amc.requests import REQUESTS

__all__ = ["markdown_reference", "value_range"]


def value_range(info: Any) -> str:
    """A field's allowed range as text (``> 0, <= 1``), from its pydantic constraints."""
    marks = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    parts = [f"{sign} {getattr(m, key)}" for m in info.metadata for key, sign in marks.items() if hasattr(m, key)]
    return ", ".join(parts)


def markdown_reference() -> str:
    """The options of every request as Markdown tables (docs/REQUESTS.md)."""
    lines = [
        "# Request reference",
        "",
        "Generated from `amc.requests` by `python -m amc.requests`: the same fields are",
        "`amc` flags (`--proxy-size`), TOML keys (`proxy_size` or `proxy-size`) and JSON fields (`proxy_size`).",
        "",
    ]
    for name, cls in REQUESTS.items():
        lines += [
            f"## {name}",
            "",
            (cls.__doc__ or "").strip(),
            "",
            "| field | default | meaning |",
            "| --- | --- | --- |",
        ]
        for field, info in cls.model_fields.items():
            default = "required" if info.is_required() else f"`{info.default!r}`"
            lines.append(f"| `{field}` | {default} | {value_range(info)} | {info.description or ''} |")
        lines.append("")
    return "\n".join(lines)
