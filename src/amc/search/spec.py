"""Search environment specs: TOML files (``envs/*.toml``) holding a search's settings.

Keys are the long flag names of ``amc search`` with dashes or underscores
(``model``, ``flops``, ``proxy_size``, ...). Flags given on the command line win over the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from amc.errors import AmcError

__all__ = ["DEFAULTS", "resolve"]

DEFAULTS: dict[str, Any] = {
    "model": None,
    "data": None,
    "checkpoint": None,
    "flops": None,
    "params": None,
    "method": "ddpg",
    "episodes": 400,
    "warmup": 100,
    "reward": "acc",
    "criterion": "l1",
    "reconstruct": False,
    "proxy_size": 1000,
    "calib_images": 500,
    "max_sparsity": 0.8,
    "round_to": 1,
    "residual": False,
    "storage": None,
    "study": None,
    "seed": 0,
    "out": "policies/best.json",
    "device": "auto",
    "precision": "auto",
}


def read_spec(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise AmcError(f"env spec {path} does not exist: pass a TOML file such as envs/resnet56-cifar10.toml")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise AmcError(f"env spec {path} is not valid TOML: {exc}") from None
    flat: dict[str, Any] = {}
    for key, value in raw.items():  # tables ([proxy], [agent]) are flattened
        items = value.items() if isinstance(value, dict) else [(key, value)]
        for k, v in items:
            k = k.replace("-", "_")
            if k not in DEFAULTS:
                raise AmcError(f"env spec {path}: unknown key '{k}' (known: {', '.join(DEFAULTS)})")
            flat[k] = v
    return flat


def resolve(cli: dict[str, Any], spec_path: str | None) -> dict[str, Any]:
    """Defaults, overridden by the spec file, overridden by flags given (not None)."""
    merged = dict(DEFAULTS)
    if spec_path:
        merged.update(read_spec(spec_path))
    merged.update({k: v for k, v in cli.items() if v is not None})
    return merged
