"""Typer options generated from a request's fields (:mod:`amc.requests`).

Every option is declared as an optional string (lists as repeated strings, booleans as
``--x/--no-x``) and left ``None`` when not given, so that flags override a TOML spec field by
field, and pydantic, not click, checks every value: one message for the CLI, TOML and HTTP.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Optional

import typer
from pydantic.fields import FieldInfo

from amc.request_docs import value_range
from amc.requests import Request, flag

__all__ = ["request_command"]


def _metavar(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return "|".join(str(a) for a in args)
    if typing.get_origin(annotation) in (types.UnionType, typing.Union) and len(args) == 1:
        return _metavar(args[0])
    if typing.get_origin(annotation) is list:
        return _metavar(args[0]) + " ..."
    return getattr(annotation, "__name__", "TEXT").upper()


def _is(annotation: Any, kind: type) -> bool:
    if annotation is kind:
        return True
    args = typing.get_args(annotation)
    return typing.get_origin(annotation) is kind or any(a is kind or typing.get_origin(a) is kind for a in args)


def _parameter(name: str, info: FieldInfo) -> inspect.Parameter:
    help_text = info.description or ""
    if value_range(info):
        help_text += f" ({value_range(info)})"
    if not info.is_required():
        help_text += f" [default: {info.default!r}]" if info.default not in (None, [], ()) else ""
    ann = info.annotation
    if _is(ann, bool):
        option: Any = Annotated[
            Optional[bool], typer.Option(f"{flag(name)}/--no-{name.replace('_', '-')}", help=help_text)
        ]
    elif _is(ann, list):
        option = Annotated[Optional[list[str]], typer.Option(flag(name), help=help_text, metavar=_metavar(ann))]
    else:
        option = Annotated[Optional[str], typer.Option(flag(name), help=help_text, metavar=_metavar(ann))]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=option)


def request_command(
    request: type[Request],
    handler: Callable[[dict[str, Any]], None],
    extra: tuple[inspect.Parameter, ...] = (),
    skip: tuple[str, ...] = (),
) -> Callable[..., None]:
    """A function whose signature Typer reads as ``request``'s options (plus ``extra``, e.g. a
    positional argument); calling it hands ``handler`` the options given (``None`` dropped)."""
    params = [*extra, *(_parameter(n, f) for n, f in request.model_fields.items() if n not in skip)]

    def command(**given: Any) -> None:
        handler({k: v for k, v in given.items() if v is not None})

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = request.__doc__
    return command
