"""What a person chooses about a drawing: its format, and above how many resources a group folds.

A module of its own, importing nothing, because ``formae graph``'s signature names both and every
``formae`` command reads every signature at start (see ``formae.cli``): the graph's model pulls in
``formae.model`` and pydantic, which a command that draws nothing must not pay for.
"""

from __future__ import annotations

from enum import StrEnum

COLLAPSE_ABOVE = 25
"""More resources than this of one type in one stack are shown as one box."""


class Format(StrEnum):
    DOT = "dot"
    SVG = "svg"
    PNG = "png"
