"""Exponential backoff with jitter: the one formula behind every retry in formae.

The updater (a plugin call that failed), the process manager (a plugin that crashed) and the
plugin runtime (a dial to the agent that failed) all wait longer after each failure, up to a cap.
Each keeps its own parameters; this module keeps the arithmetic, so the three cannot drift apart.
It imports nothing of formae, so the agent and the plugin SDK can both use it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

_MAX_DOUBLINGS = 1000
"""Beyond this the delay is the cap anyway; keeps ``2.0 ** n`` finite however long a failure lasts."""


def exponential_delay(failures: int, initial: float, cap: float) -> float:
    """``initial`` after the first failure, doubling after each further one, never above ``cap``."""
    doublings = min(max(0, failures - 1), _MAX_DOUBLINGS)
    return float(min(cap, initial * 2.0**doublings))


def jittered(delay: float, spread: float, uniform: Callable[[float, float], float] = random.uniform) -> float:
    """``delay`` scaled by a random factor in [1 - spread, 1 + spread], so retries do not move in lockstep."""
    return delay * uniform(1 - spread, 1 + spread)
