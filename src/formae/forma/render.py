"""Write a forma back out: JSON, YAML, or Pkl that ``pkl eval -f json`` turns into the same JSON.

What ``formae extract`` prints. The Pkl is plain (no formae package needed), in the style of
``examples/network.pkl``: objects for maps, ``new Listing`` for lists, quoted keys where a name
is not a Pkl identifier (``["$res"] = true``). Pkl's JSON output drops properties whose value
is null, so a null property comes back absent.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEYWORDS = frozenset(
    (
        "abstract",
        "amends",
        "as",
        "class",
        "const",
        "else",
        "extends",
        "external",
        "false",
        "fixed",
        "for",
        "function",
        "hidden",
        "if",
        "import",
        "in",
        "is",
        "let",
        "local",
        "module",
        "new",
        "nothing",
        "null",
        "open",
        "out",
        "outer",
        "override",
        "read",
        "record",
        "super",
        "this",
        "throw",
        "trace",
        "true",
        "typealias",
        "unknown",
        "when",
    )
)
INDENT = "  "


def render(forma: dict[str, Any], form: str) -> str:
    """``forma`` as ``json``, ``yaml`` or ``pkl`` text."""
    if form == "json":
        return json.dumps(forma, indent=2) + "\n"
    if form == "yaml":
        return str(yaml.safe_dump(forma, sort_keys=False))
    if form == "pkl":
        return to_pkl(forma)
    raise ValueError(f"unknown forma format {form!r}: use pkl, json or yaml")


def to_pkl(forma: dict[str, Any]) -> str:
    lines = ["// Written by formae extract: `pkl eval -f json` renders formae's JSON shape.", ""]
    for section in ("stacks", "targets", "resources"):
        lines.append(f"{section} {{")
        for item in forma.get(section, []):
            lines.extend(_object_lines(item, 1, opener="new {"))
        lines.extend(["}", ""])
    return "\n".join(lines)


def _object_lines(value: dict[str, Any], depth: int, *, opener: str) -> list[str]:
    pad = INDENT * depth
    lines = [pad + opener]
    for key, item in value.items():
        lines.extend(_member(_name(key), item, depth + 1))
    lines.append(pad + "}")
    return lines


def _member(name: str, value: Any, depth: int) -> list[str]:
    pad = INDENT * depth
    if isinstance(value, dict):
        if not value:
            return [f"{pad}{name} {{}}"]
        return _object_lines(value, depth, opener=f"{name} {{")
    if isinstance(value, list):
        return [f"{pad}{name} = " + _listing(value, depth).lstrip()]
    return [f"{pad}{name} = {_scalar(value)}"]


def _listing(values: list[Any], depth: int) -> str:
    pad = INDENT * depth
    if not values:
        return f"{pad}new Listing {{}}"
    inner = INDENT * (depth + 1)
    lines = [f"{pad}new Listing {{"]
    for value in values:
        if isinstance(value, dict):
            lines.extend(_object_lines(value, depth + 1, opener="new Dynamic {"))
        elif isinstance(value, list):
            lines.append(_listing(value, depth + 1))
        else:
            lines.append(inner + _scalar(value))
    lines.append(pad + "}")
    return "\n".join(lines)


def _name(key: str) -> str:
    if _IDENTIFIER.match(key) and key not in _KEYWORDS:
        return key
    return f"[{_string(key)}]"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    return _string(str(value))


def _string(text: str) -> str:
    """A Pkl string literal: backslash escapes, ``\\u{…}`` for other control characters."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20:
            out.append(f"\\u{{{ord(char):x}}}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
