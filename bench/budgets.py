"""One row per budget of the issue: what was measured, the budget, and whether it is met.

Every bench module that measures a budget returns its figures as ``Row``s, so that
``python -m bench`` can print and write all of them in one table, whoever measured them. A module
joins by exposing a function ``rows(quick: bool) -> list[Row]`` and being listed in
``bench.__main__.ROW_SOURCES``; ``quick`` is the CI smoke run (small N, no file written), where
a row may still be printed but its verdict says only that the harness ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    figure: str
    """What was measured, e.g. ``CLI cold start, formae --help (median of 20)``."""
    measured: str
    """The figure with its unit, e.g. ``132 ms``; ``—`` when it could not be measured."""
    budget: str
    """The budget as the issue states it, e.g. ``≤ 150 ms``; empty for a figure without one."""
    met: bool | None
    """None when there is no budget, or the figure could not be measured (``note`` says why)."""
    note: str = ""


RowSource = Callable[[bool], list[Row]]


def verdict(row: Row) -> str:
    if row.met is None:
        return "not measured" if row.measured == "—" else ""
    return "met" if row.met else "**missed**"


HEADER = "| figure | measured | budget | |\n|---|---|---|---|"


def line(row: Row) -> str:
    note = f" ({row.note})" if row.note else ""
    return f"| {row.figure} | {row.measured}{note} | {row.budget} | {verdict(row)} |"


def table(rows: list[Row]) -> str:
    return "\n".join([HEADER, *(line(r) for r in rows)])


def at_most(figure: str, value: float, limit: float, unit: str, digits: int = 0, note: str = "") -> Row:
    """A row for a budget of the form ``value ≤ limit``, both in ``unit``."""
    return Row(figure, f"{value:.{digits}f}{unit}", f"≤ {limit:g}{unit}", value <= limit, note)


def skipped(figure: str, budget: str, why: str) -> Row:
    return Row(figure, "—", budget, None, why)
