"""The agent's key figures, and small inline SVG sparklines of them.

Until the agent keeps metrics of its own over time, the series come from what the store keeps:
the latest commands (their durations, their updates, their failures) and commands started per
hour. A sparkline is a polyline in a fixed box with its last value and range written beside it,
and an ``aria-label`` that says the same for a screen reader.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from xml.sax.saxutils import quoteattr

from formae.store import Command

WIDTH, HEIGHT, PAD = 160, 36, 3


@dataclass(frozen=True, slots=True)
class Series:
    title: str
    unit: str
    values: tuple[float, ...]

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None

    def summary(self) -> str:
        if not self.values:
            return f"{self.title}: no data yet"
        low, high = min(self.values), max(self.values)
        return (
            f"{self.title}: last {_fmt(self.values[-1])} {self.unit}, "
            f"range {_fmt(low)} to {_fmt(high)} over {len(self.values)} points"
        )


def sparkline(series: Series) -> str:
    values = series.values
    label = quoteattr(series.summary())
    head = f'<svg xmlns="http://www.w3.org/2000/svg" class="spark" viewBox="0 0 {WIDTH} {HEIGHT}"'
    head += f' width="{WIDTH}" height="{HEIGHT}" role="img" aria-label={label}>'
    if len(values) < 2:
        return (
            head
            + f'<line x1="0" y1="{HEIGHT - PAD}" x2="{WIDTH}" y2="{HEIGHT - PAD}" class="spark-none"/></svg>'
        )
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (WIDTH - 2 * PAD) / (len(values) - 1)
    points = " ".join(
        f"{PAD + i * step:.1f},{HEIGHT - PAD - (v - low) / span * (HEIGHT - 2 * PAD):.1f}"
        for i, v in enumerate(values)
    )
    x, y = points.rsplit(" ", 1)[-1].split(",")
    return (
        head
        + f'<polyline points="{points}" class="spark-line" fill="none"/>'
        + f'<circle cx="{x}" cy="{y}" r="2.5" class="spark-dot"/></svg>'
    )


def command_series(
    commands: Sequence[Command], updates: Sequence[int], failed: Sequence[int]
) -> list[Series]:
    """Series over the latest commands, oldest first; ``updates`` and ``failed`` count per command."""
    durations = tuple(round((c.updated_at - c.created_at).total_seconds(), 2) for c in commands)
    return [
        Series("Command duration", "s", durations),
        Series("Resource updates per command", "updates", tuple(float(n) for n in updates)),
        Series("Failed updates per command", "failed", tuple(float(n) for n in failed)),
    ]


def per_hour(commands: Sequence[Command], now: datetime, hours: int = 24) -> Series:
    """Commands started in each of the last ``hours`` hours, oldest first."""
    start = now - timedelta(hours=hours)
    slots = Counter(
        int((c.created_at - start).total_seconds() // 3600) for c in commands if c.created_at >= start
    )
    return Series(
        "Commands started per hour", "commands", tuple(float(slots.get(h, 0)) for h in range(hours))
    )


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"
