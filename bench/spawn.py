"""Plugin spawn -> `Plugin registered`: the agent's real hub and registry, a real fake-aws process.

Times from the moment the child is spawned to the moment the registry records its announcement,
which includes the interpreter's start, the SDK's dial, the cookie handshake and the announcement.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

from bench.hub import running_hub
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import PluginRegistry, RegisteredPlugin

FAKE_AWS = Path(sys.executable).parent / "fake-aws-plugin"


class _TimedRegistry(PluginRegistry):
    def __init__(self) -> None:
        super().__init__(RateLimiter())
        self.registered = asyncio.Event()

    def register(self, plugin: RegisteredPlugin) -> None:
        super().register(plugin)
        self.registered.set()


async def spawn_to_registered(runs: int = 20, *, tls: bool = True) -> list[float]:
    """Seconds from spawn to registration, one sample per fresh plugin process."""
    samples = []
    for _ in range(runs):
        registry = _TimedRegistry()
        async with running_hub(registry, "fake-aws@bench", tls=tls) as hub:
            started = time.perf_counter()
            child = await asyncio.create_subprocess_exec(
                str(FAKE_AWS), env=hub.child_env, stdin=asyncio.subprocess.DEVNULL
            )
            await asyncio.wait_for(registry.registered.wait(), 30)
            samples.append(time.perf_counter() - started)
            child.terminate()
            await child.wait()
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "runs": len(ordered),
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[max(0, round(0.95 * len(ordered)) - 1)] * 1000,
        "min_ms": ordered[0] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


if __name__ == "__main__":
    result = summary(asyncio.run(spawn_to_registered(int(sys.argv[1]) if len(sys.argv) > 1 else 20)))
    print(" ".join(f"{k}={v:.1f}" for k, v in result.items()))
