"""Test doubles shared by the unit tests, so each exists once: a clock that moves only when told."""

from __future__ import annotations


class FakeClock:
    """A monotonic clock for code taking ``clock: Callable[[], float]``; time passes only by ``advance``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
