"""Plugin spawn -> `Plugin registered`: the agent's real hub and registry, a real fake-aws process.

Times from the moment the child is spawned to the moment the registry records its announcement,
which includes the interpreter's start, the SDK's dial, the cookie handshake and the announcement.
"""

from __future__ import annotations

import asyncio
import os
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


async def spawn_to_registered(
    runs: int = 20, *, tls: bool = True, cpu: list[float] | None = None
) -> list[float]:
    """Seconds from spawn to registration, one sample per fresh plugin process.

    ``cpu``, when given, receives each plugin's own CPU time (user + system) until it registered:
    on a machine others load, the wall time measures them too, the CPU time only us.
    """
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
            if cpu is not None:
                cpu.append(_cpu_seconds(child.pid))
            child.terminate()
            await child.wait()
    return samples


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process, from /proc (in clock ticks, 10 ms here)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    used: list[float] = []
    result = summary(
        asyncio.run(spawn_to_registered(int(sys.argv[1]) if len(sys.argv) > 1 else 20, cpu=used))
    )
    print(
        " ".join(f"{k}={v:.1f}" for k, v in result.items()),
        f"cpu_median_ms={statistics.median(used) * 1000:.0f}",
    )
