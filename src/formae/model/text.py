"""Which strings a forma may hold: checked once, before anything is stored or sent, for every backend.

Two rules, because names and data differ:

- **names** (labels of stacks, targets and resources, namespaces, property keys) are printed in
  plans, tables and logs, and identify things in the store: no control characters (so no ANSI
  escape that repaints a terminal), no invisible format characters (such as bidirectional
  overrides that make a name read as another), no line separators, no NUL;
- **text** (property values, descriptions, target configuration) may hold tabs and newlines, as
  a policy document does, but no NUL (PostgreSQL cannot store it in text or JSON, and other
  languages end strings there) and no lone UTF-16 surrogate (it has no UTF-8 encoding, so no
  store, wire or terminal can take it).

A problem shows the offending character as ``U+001B``, never the character itself.
"""

from __future__ import annotations

import unicodedata

_FORBIDDEN_IN_NAMES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_ALLOWED_CONTROLS_IN_TEXT = frozenset("\t\n\r")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a label or a key, or None if it can."""
    if name.isascii() and name.isprintable():  # the usual name, checked in C: no control character
        return None
    for char in name:
        category = unicodedata.category(char)
        if category in _FORBIDDEN_IN_NAMES:
            return f"contains {_describe(char, category)}, which a name may not hold"
    return None


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as a value, or None if it can."""
    if text.isascii() and "\x00" not in text:  # the usual value, checked in C: no surrogate can be ASCII
        return None
    for char in text:
        if char == "\x00" or unicodedata.category(char) == "Cs":
            return f"contains {_describe(char, unicodedata.category(char))}, which cannot be stored"
    return None


def shown(text: str) -> str:
    """``text`` with every character a name may not hold written as an escape: safe to print."""
    return "".join(
        f"\\u{ord(char):04x}" if unicodedata.category(char) in _FORBIDDEN_IN_NAMES else char for char in text
    )


_KINDS = {
    "Cc": "the control character",
    "Cf": "the invisible format character",
    "Cs": "a lone UTF-16 surrogate",
    "Zl": "the line separator",
    "Zp": "the paragraph separator",
}


def _describe(char: str, category: str) -> str:
    code = f"U+{ord(char):04X}"
    if char == "\x00":
        return f"the NUL character {code}"
    if char == "\x1b":
        return f"the escape character {code} (an ANSI escape sequence)"
    return f"{_KINDS[category]} {code}"
