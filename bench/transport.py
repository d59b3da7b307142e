"""The transport limit: the same plugin operations over the same gRPC stream, without the agent.

The agent's own hub and plugin link carry the calls to a real fake-aws process, with the same
number in flight as the agent's executor allows; there is no datastore, no planner and no DAG.
Creates go in two waves (VPCs and buckets, then the subnets with their VPCs' real ids), because
no apply can do better than its dependency chain; deletes go in the reverse two waves.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from bench.hub import running_hub
from formae.agent.plugin_link import PluginLink
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import PluginRegistry
from formae.model import Reference, resolve_references
from formae.wire.types import CreateRequest, DeleteRequest, OperationRequest, ProgressResult, TargetInfo

FAKE_AWS = Path(sys.executable).parent / "fake-aws-plugin"
IN_FLIGHT = 256  # the executor's per-namespace bound


async def transport_limit(
    forma: dict[str, Any], in_flight: int = IN_FLIGHT, *, tls: bool = True
) -> tuple[float, float]:
    """Seconds to create, then delete, every resource of ``forma`` straight over the wire."""
    registry = PluginRegistry(RateLimiter())
    async with running_hub(registry, "fake-aws@transport", tls=tls) as hub:
        child = await asyncio.create_subprocess_exec(
            str(FAKE_AWS), env=hub.child_env, stdin=asyncio.subprocess.DEVNULL
        )
        try:
            link = await registry.wait_for("FakeAWS", 30)
            return await _create_then_delete(link, forma, in_flight)
        finally:
            child.terminate()
            await child.wait()


async def _create_then_delete(link: PluginLink, forma: dict[str, Any], in_flight: int) -> tuple[float, float]:
    target = TargetInfo("bench", "FakeAWS", forma["targets"][0]["config"])
    first = [r for r in forma["resources"] if r["type"] != "FakeAWS::EC2::Subnet"]
    second = [r for r in forma["resources"] if r["type"] == "FakeAWS::EC2::Subnet"]
    ids: dict[str, str] = {}

    def create(resource: dict[str, Any]) -> CreateRequest:
        properties = resolve_references(resource["properties"], lambda ref: ids[_key(ref)])
        return CreateRequest(resource["type"], resource["label"], properties, target, resource["label"])

    started = time.perf_counter()
    for wave in (first, second):
        results = await _run(link, [create(r) for r in wave], in_flight)
        ids.update({r["label"]: result.native_id for r, result in zip(wave, results, strict=True)})
    created = time.perf_counter() - started

    started = time.perf_counter()
    for wave in (second, first):
        await _run(link, [DeleteRequest(r["type"], ids[r["label"]], target) for r in wave], in_flight)
    return created, time.perf_counter() - started


def _key(reference: Reference) -> str:
    return reference.label


async def _run(link: PluginLink, requests: list[OperationRequest], in_flight: int) -> list[ProgressResult]:
    """``in_flight`` workers share the requests, as the executor's bounded tasks do: one coroutine per
    request (60,000 at 100,000 resources) blocked this process's loop long enough to lose the plugin."""
    results: list[ProgressResult | None] = [None] * len(requests)
    pending = iter(enumerate(requests))

    async def worker() -> None:
        for index, request in pending:
            result = await link.call(request, 60)
            assert isinstance(result, ProgressResult), result
            assert result.status.name == "SUCCESS", result
            results[index] = result

    await asyncio.gather(*(worker() for _ in range(min(in_flight, len(requests)))))
    return [r for r in results if r is not None]
