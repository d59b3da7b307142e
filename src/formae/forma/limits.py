"""Bounds on the shape of a parsed forma, checked before anything walks it recursively.

A forma arrives as text (a file) or as JSON already parsed (over REST), and everything after
this check — validation, planning, JSON Schema, the store, the wire — walks it recursively and may
copy it. So three shapes are refused here, with a walk that uses no recursion itself:

- **nesting deeper than** :data:`MAX_DEPTH` levels: Python's recursion limit is about 1,000
  frames, and a forma nested 900 deep would otherwise crash whatever walks it next;
- **more values than** :data:`MAX_VALUES` **once YAML aliases are expanded**: a 500-byte YAML
  document whose aliases refer to aliases ("billion laughs") stands for hundreds of millions of
  values; it parses in milliseconds into shared objects, then hangs whatever copies it;
- **a value that contains itself** (a YAML alias inside the node it names): infinite.

The walk counts each shared object once (memoised by identity), so checking costs the size of the
document as written, not as expanded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from formae.forma.errors import FormaError, Problem

MAX_DEPTH = 64
"""Levels of objects and lists, the forma itself counting as one; properties get most of them."""
MAX_VALUES = 5_000_000
"""Every value of the forma once aliases are expanded: a 10,000-resource forma has about 100,000."""
MAX_TEXT_BYTES = 64 * 1024 * 1024
"""The largest forma file read, before it is parsed: 25 times a 10,000-resource forma."""


@dataclass(slots=True)
class _Frame:
    """A container being walked: its children still to visit and the values counted under it."""

    value: Any
    key: Any
    """Where it sits in its parent (None for the forma itself); paths are spelled only for a problem."""
    children: Iterator[tuple[Any, Any]]
    count: int = 1


def check_shape(data: Any, source: str) -> None:
    """Raise :class:`FormaError` when ``data`` is nested too deep, too big expanded, or cyclic.

    Runs on every submission of every forma (100,000 resources are about a million values), so
    its inner loop visits scalars without a call per value, and builds no path until it reports.
    """
    sizes: dict[int, int] = {}
    """Expanded size of each container walked, by identity: a shared one is counted, not walked, again."""
    stack: list[_Frame] = []
    on_stack: set[int] = set()
    total = _enter(data, None, stack, on_stack, sizes, source)
    while stack:
        frame = stack[-1]
        for key, value in frame.children:
            if not isinstance(value, dict | list):
                frame.count += 1
                total += 1
                continue
            counted = _enter(value, key, stack, on_stack, sizes, source)
            frame.count += counted
            total += counted or 1
            if total > MAX_VALUES:
                raise FormaError.single(source, f"more than {MAX_VALUES:,} values (YAML aliases expanded)")
            if not counted:
                break  # walk the new container first
        else:
            stack.pop()
            on_stack.discard(id(frame.value))
            sizes[id(frame.value)] = frame.count
            if stack:
                stack[-1].count += frame.count
        if total > MAX_VALUES:
            raise FormaError.single(source, f"more than {MAX_VALUES:,} values (YAML aliases expanded)")


def _enter(
    value: Any, key: Any, stack: list[_Frame], on_stack: set[int], sizes: dict[int, int], source: str
) -> int:
    """Start walking ``value`` if it is a new container; returns what it adds to its parent's count now."""
    if not isinstance(value, dict | list):
        return 1
    identity = id(value)
    if identity in on_stack:
        raise _at(source, _path(stack, key), "contains itself (a YAML alias inside the node it names)")
    if identity in sizes:
        return sizes[identity]
    if len(stack) >= MAX_DEPTH:
        raise _at(source, _path(stack, key), f"nested more than {MAX_DEPTH} levels deep")
    items = iter(value.items()) if isinstance(value, dict) else enumerate(value)
    stack.append(_Frame(value, key, items))
    on_stack.add(identity)
    return 0


def _path(stack: list[_Frame], key: Any) -> str:
    """The path of the child ``key`` of the innermost container walked, as problems spell it."""
    keys = [frame.key for frame in stack[1:]] + ([key] if stack else [])
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")


def _at(source: str, path: str, message: str) -> FormaError:
    return FormaError([Problem(source, None, path or None, message)])
