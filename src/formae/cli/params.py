"""Option and argument values without pydantic, for the plain types our commands take.

typer (0.2x) turns every command-line value into its annotated type through a pydantic
``TypeAdapter``: importing pydantic and building the adapters costs ~60 ms of CPU in a command
whose whole start-up budget is 150 ms. Our parameters are plain (``str``, ``bool``, ``int``, a
``StrEnum`` such as ``Output``, ``Path``, lists of these), and for those the conversion is one call.

:func:`plain_value` does it when the value is unambiguous and returns :data:`UNSURE` otherwise, so
that typer's own conversion runs and gives exactly its result, or its error message, as before.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Final, get_args, get_origin

UNSURE: Final = object()
"""Not converted here: let typer (and pydantic) do it."""


def plain_value(annotation: Any, info: Any, value: Any) -> Any:
    """``value`` (a string, or a tuple of them) as ``annotation``; :data:`UNSURE` when in doubt.

    ``info`` is typer's ``ParameterInfo``: a custom parser, bounds or path checks mean typer decides.
    """
    if info.parser is not None:
        return UNSURE
    if get_origin(annotation) is list:
        if not isinstance(value, tuple | list) or not value:
            return UNSURE
        (item,) = get_args(annotation)
        items = [_leaf(item, info, one) for one in value]
        return UNSURE if any(i is UNSURE for i in items) else items
    return _leaf(annotation, info, value)


def _leaf(annotation: Any, info: Any, value: Any) -> Any:
    if isinstance(value, bool) and annotation is bool:
        return value
    if not isinstance(value, str):
        return UNSURE
    if annotation is str:
        return value
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _member(annotation, value)
    if annotation is int and value.isascii() and value.isdigit() and _unbounded(info):
        return int(value)
    if annotation is Path and value and _unchecked_path(info):
        return Path(value)
    return UNSURE


def _member(enum: type[Enum], value: str) -> Any:
    for member in enum:
        if member.value == value:
            return member
    return UNSURE  # typer's message names the choices


def _unbounded(info: Any) -> bool:
    return info.min is None and info.max is None and not info.clamp


def _unchecked_path(info: Any) -> bool:
    return not (
        info.exists
        or info.writable
        or info.resolve_path
        or info.allow_dash
        or info.path_type is not None
        or not info.file_okay
        or not info.dir_okay
        or not info.readable
    )
