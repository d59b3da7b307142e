"""PluginRegistry: filled only by announcements, the single source of routing, and honest about health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

import pytest

from formae.agent.plugin_link import PluginLink, PluginUnavailable
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import (
    Location,
    NodeClaimRefused,
    NoPluginError,
    PluginRegistry,
    RegisteredPlugin,
)
from formae.wire.types import ReadRequest, ResourceSchema, TargetInfo
from tests.unit.fakes import FakeClock
from tests.unit.memory_stream import MemoryStreamPair

pytestmark = pytest.mark.timeout(10)

LinkFactory = Callable[..., PluginLink]
READ = ReadRequest("FakeAWS::S3::Bucket", "b-1", TargetInfo("t", "FakeAWS"))


async def settle() -> None:
    """Let every ready task run until it blocks; no real time passes, so nothing here waits on a race."""
    for _ in range(10):
        await asyncio.sleep(0)


@pytest.fixture
def limiter() -> RateLimiter:
    return RateLimiter()


@pytest.fixture
def registry(limiter: RateLimiter, clock: FakeClock) -> PluginRegistry:
    return PluginRegistry(limiter, heartbeat_timeout=0.06, clock=clock)


@pytest.fixture
def pairs() -> Iterator[list[MemoryStreamPair]]:
    made: list[MemoryStreamPair] = []
    yield made
    for pair in made:
        pair.close()


@pytest.fixture
def link_to(pairs: list[MemoryStreamPair]) -> LinkFactory:
    def make(namespace: str = "FakeAWS", node: str = "fake-aws@a") -> PluginLink:
        pair = MemoryStreamPair(peer=f"memory:{node}")
        pairs.append(pair)
        return PluginLink(pair.agent, namespace, node)

    return make


def plugin(
    link: PluginLink,
    *,
    rate_limit: float = 0.0,
    version: str = "1.0.0",
    location: Location = Location.LOCAL,
    certificate: str | None = None,
) -> RegisteredPlugin:
    return RegisteredPlugin(
        namespace=link.namespace,
        name="fake-aws",
        version=version,
        node=link.node,
        pid=1234,
        location=location,
        protocol_version=1,
        rate_limit=rate_limit,
        max_concurrency=0,
        schemas=(ResourceSchema(f"{link.namespace}::S3::Bucket", "BucketName"),),
        link=link,
        certificate=certificate,
    )


def test_starts_empty(registry: PluginRegistry) -> None:
    assert registry.plugins() == []
    assert registry.namespaces() == []
    assert registry.schema("FakeAWS::S3::Bucket") is None


def test_lookup_of_an_unknown_namespace_names_what_is_registered(
    registry: PluginRegistry, link_to: LinkFactory
) -> None:
    with pytest.raises(NoPluginError) as raised:
        registry.lookup("FakeAWS")
    assert str(raised.value) == "no plugin registered for namespace FakeAWS (registered: none)"
    assert raised.value.namespace == "FakeAWS"

    registry.register(plugin(link_to("Zeta", "z@h")))
    registry.register(plugin(link_to("Alpha", "a@h")))
    with pytest.raises(NoPluginError) as raised:
        registry.lookup("FakeAWS")
    assert str(raised.value) == "no plugin registered for namespace FakeAWS (registered: Alpha, Zeta)"
    assert isinstance(raised.value, LookupError)


def test_register_logs_namespace_and_node(
    registry: PluginRegistry, link_to: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    link = link_to("FakeAWS", "fake-aws-77@box")
    with caplog.at_level(logging.INFO, logger="formae.agent.registry"):
        registry.register(plugin(link))
    [record] = [r for r in caplog.records if "Plugin registered" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert "namespace=FakeAWS" in record.getMessage()
    assert "node=fake-aws-77@box" in record.getMessage()
    assert registry.lookup("FakeAWS") is link
    assert registry.namespaces() == ["FakeAWS"]
    assert registry.schema("FakeAWS::S3::Bucket") == ResourceSchema("FakeAWS::S3::Bucket", "BucketName")


def test_register_sizes_the_namespace_rate_limit(
    registry: PluginRegistry, limiter: RateLimiter, link_to: LinkFactory
) -> None:
    registry.register(plugin(link_to(), rate_limit=7.5))
    assert limiter.rate("FakeAWS") == 7.5


async def test_reannounce_from_the_same_node_replaces_and_closes_the_old_link(
    registry: PluginRegistry, link_to: LinkFactory
) -> None:
    old = link_to("FakeAWS", "n@h")
    registry.register(plugin(old, version="1.0.0"))
    pending = asyncio.create_task(old.call(READ))
    await asyncio.sleep(0)
    assert old.in_flight == 1

    new = link_to("FakeAWS", "n@h")
    registry.register(plugin(new, version="1.1.0"))

    assert old.is_closed
    assert not new.is_closed
    assert await old.wait_closed() == "replaced by a new announcement from the same node"
    with pytest.raises(PluginUnavailable, match="replaced by a new announcement"):
        await pending
    assert [p.version for p in registry.plugins()] == ["1.1.0"]
    assert registry.lookup("FakeAWS") is new
    registry.disconnected(old, "the old stream ended")  # late news about the old link changes nothing
    assert registry.plugins()[0].healthy


async def test_disconnected_marks_unhealthy_and_lookup_says_why(
    registry: PluginRegistry, link_to: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    link = link_to("FakeAWS", "n@h")
    registry.register(plugin(link))
    pending = asyncio.create_task(link.call(READ))
    await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING, logger="formae.agent.registry"):
        registry.disconnected(link, "stream closed by the plugin")

    [registered] = registry.plugins()
    assert not registered.healthy
    assert registered.status_reason == "disconnected: stream closed by the plugin"
    assert "Plugin unhealthy namespace=FakeAWS node=n@h" in caplog.text
    with pytest.raises(
        PluginUnavailable, match=r"no healthy plugin for namespace FakeAWS \(n@h: disconnected"
    ):
        registry.lookup("FakeAWS")
    with pytest.raises(PluginUnavailable, match="is gone: stream closed by the plugin"):
        await pending
    with pytest.raises(PluginUnavailable):
        await link.call(READ)


async def test_heartbeat_silence_marks_unhealthy(
    registry: PluginRegistry, link_to: LinkFactory, clock: FakeClock
) -> None:
    quiet = link_to("FakeAWS", "quiet@h")
    chatty = link_to("FakeAWS", "chatty@h")
    registry.register(plugin(quiet))
    registry.register(plugin(chatty))
    for _ in range(4):  # 0.1s of fake time, chatty heartbeating every 0.025s; quiet silent
        clock.advance(0.025)
        registry.heartbeat(chatty)
        registry.check_heartbeats()  # what the watcher does at each tick, on the fake clock
    assert quiet.is_closed
    reason = await quiet.wait_closed()
    assert reason.startswith("no heartbeat for ")
    health = {p.node: (p.healthy, p.status_reason) for p in registry.plugins()}
    assert health["chatty@h"] == (True, "")
    assert health["quiet@h"][0] is False
    assert not chatty.is_closed
    assert registry.lookup("FakeAWS") is chatty


async def test_a_check_that_wakes_late_blames_the_agents_stall_not_the_plugin(
    limiter: RateLimiter, link_to: LinkFactory, clock: FakeClock
) -> None:
    """The agent's loop blocked for 3 s while the plugin's heartbeats queued up unread."""
    rounds: asyncio.Queue[None] = asyncio.Queue()

    async def one_round(_seconds: float) -> None:
        await rounds.get()

    async def run_round() -> None:
        rounds.put_nowait(None)
        for _ in range(5):  # no real time passes: the watcher only runs its round
            await asyncio.sleep(0)

    registry = PluginRegistry(limiter, heartbeat_timeout=0.5, clock=clock, sleep=one_round)
    link = link_to("FakeAWS", "busy@h")
    registry.register(plugin(link))
    watcher = asyncio.create_task(registry.watch_heartbeats())
    try:
        await run_round()
        clock.advance(3.0)
        await run_round()  # wakes 3 s late: judges nobody
        registry.heartbeat(link)  # the heartbeat that waited, read in the same turn of the loop
        await run_round()
        clock.advance(0.1)
        await run_round()
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
    assert not link.is_closed
    assert [p.healthy for p in registry.plugins()] == [True]

    silent = link_to("FakeAWS", "silent@h")  # and silence the agent did not cause is still found
    registry.register(plugin(silent))
    watcher = asyncio.create_task(registry.watch_heartbeats())
    try:
        await run_round()
        for _ in range(7):
            clock.advance(0.1)
            await run_round()
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
    assert silent.is_closed


async def test_an_unhealthy_plugin_that_never_returns_is_forgotten(
    limiter: RateLimiter, link_to: LinkFactory, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    registry = PluginRegistry(limiter, heartbeat_timeout=0.06, forget_after=10.0, clock=clock)
    gone, back, alive = link_to("FakeAWS", "gone@h"), link_to("FakeAWS", "back@h"), link_to("Other", "o@h")
    for link in (gone, back, alive):
        registry.register(plugin(link))
    registry.disconnected(gone, "stream closed by the plugin")
    registry.disconnected(back, "stream closed by the plugin")
    clock.advance(9.0)
    registry.check_heartbeats()
    registry.register(plugin(link_to("FakeAWS", "back@h")))  # returned in time: kept
    with caplog.at_level(logging.INFO, logger="formae.agent.registry"):
        for _ in range(3):
            clock.advance(0.5)
            registry.heartbeat(alive)
            registry.heartbeat(registry.lookup("FakeAWS"))
            registry.check_heartbeats()
    assert sorted(p.node for p in registry.plugins()) == ["back@h", "o@h"]
    assert "Plugin forgotten namespace=FakeAWS node=gone@h" in caplog.text


def test_heartbeat_from_a_replaced_link_is_ignored(
    registry: PluginRegistry, link_to: LinkFactory, clock: FakeClock
) -> None:
    old = link_to("FakeAWS", "n@h")
    registry.register(plugin(old))
    new = link_to("FakeAWS", "n@h")
    registry.register(plugin(new))
    clock.advance(10)
    registry.heartbeat(old)
    assert registry.plugins()[0].last_heartbeat == 1000.0
    registry.heartbeat(new)
    assert registry.plugins()[0].last_heartbeat == 1010.0


def test_a_heartbeat_that_says_the_plugins_clock_measures_its_skew(link_to: LinkFactory) -> None:
    registry = PluginRegistry(RateLimiter(), wall_clock=lambda: 1_000_000.0)
    link = link_to("FakeAWS", "n@h")
    registry.register(plugin(link))
    registry.heartbeat(link)
    assert registry.plugins()[0].clock_skew is None

    registry.heartbeat(link, wall_time=1_000_090.5)
    assert registry.plugins()[0].clock_skew == 90.5
    registry.heartbeat(link, wall_time=999_999.0)
    assert registry.plugins()[0].clock_skew == -1.0


async def test_replicas_lookup_picks_the_least_busy_healthy_one(
    registry: PluginRegistry, link_to: LinkFactory
) -> None:
    busy, idle, dead = (link_to("FakeAWS", n) for n in ("busy@h", "idle@h", "dead@h"))
    for link in (busy, idle, dead):
        registry.register(plugin(link))
    calls = [asyncio.create_task(busy.call(READ)) for _ in range(2)]
    calls.append(asyncio.create_task(idle.call(READ)))
    await asyncio.sleep(0)
    assert (busy.in_flight, idle.in_flight, dead.in_flight) == (2, 1, 0)

    registry.disconnected(dead, "gone")
    assert registry.lookup("FakeAWS") is idle  # dead has fewer calls in flight but routes nothing

    calls.append(asyncio.create_task(idle.call(READ)))
    calls.append(asyncio.create_task(idle.call(READ)))
    await asyncio.sleep(0)
    assert registry.lookup("FakeAWS") is busy
    assert registry.namespaces() == ["FakeAWS"]

    busy.close("test over")
    idle.close("test over")
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, PluginUnavailable) for r in results)


async def test_wait_for_returns_once_a_plugin_reregisters(
    registry: PluginRegistry, link_to: LinkFactory
) -> None:
    old = link_to("FakeAWS", "n@h")
    registry.register(plugin(old))
    registry.disconnected(old, "crashed")
    waiter = asyncio.create_task(registry.wait_for("FakeAWS", timeout=5))
    await settle()
    assert not waiter.done()

    registry.register(plugin(link_to("Other", "o@h")))
    await settle()
    assert not waiter.done()  # woken, but not for FakeAWS

    new = link_to("FakeAWS", "n@h")
    registry.register(plugin(new))
    assert await asyncio.wait_for(waiter, 1) is new


async def test_wait_for_returns_at_once_when_healthy(registry: PluginRegistry, link_to: LinkFactory) -> None:
    link = link_to()
    registry.register(plugin(link))
    assert await registry.wait_for("FakeAWS", timeout=0.01) is link


async def test_wait_for_times_out(registry: PluginRegistry, link_to: LinkFactory) -> None:
    link = link_to()
    registry.register(plugin(link))
    registry.disconnected(link, "gone")
    with pytest.raises(TimeoutError):
        await registry.wait_for("FakeAWS", timeout=0.02)


async def test_wait_for_returns_once_a_plugin_first_registers(
    registry: PluginRegistry, link_to: LinkFactory
) -> None:
    waiter = asyncio.create_task(registry.wait_for("FakeAWS", timeout=5))
    await settle()
    link = link_to()
    registry.register(plugin(link))
    assert await asyncio.wait_for(waiter, 1) is link


async def test_a_node_name_stays_with_its_first_certificate_and_namespace(
    registry: PluginRegistry, link_to: LinkFactory
) -> None:
    holder = link_to("FakeAWS", "n@h")
    registry.register(plugin(holder, location=Location.REMOTE, certificate="aa"))

    for namespace, certificate in [("Alpha", "aa"), ("FakeAWS", "bb"), ("FakeAWS", None)]:
        claim = plugin(link_to(namespace, "n@h"), location=Location.REMOTE, certificate=certificate)
        with pytest.raises(NodeClaimRefused, match="bound to the plugin that registered it first"):
            registry.register(claim)

    assert not holder.is_closed
    assert registry.lookup("FakeAWS") is holder
    same = link_to("FakeAWS", "n@h")
    registry.register(plugin(same, location=Location.REMOTE, certificate="aa"))  # its own restart
    assert holder.is_closed
    assert registry.lookup("FakeAWS") is same


def test_a_spawned_plugins_node_name_is_only_for_the_process_manager_s_child(
    limiter: RateLimiter, link_to: LinkFactory
) -> None:
    registry = PluginRegistry(limiter, spawned_here=lambda node: node == "fake-aws@h")
    with pytest.raises(NodeClaimRefused, match="belongs to a plugin this agent spawns"):
        registry.register(plugin(link_to("FakeAWS", "fake-aws@h"), location=Location.REMOTE))
    assert registry.plugins() == []

    registry.register(plugin(link_to("FakeAWS", "fake-aws@h"), certificate="local-1"))
    registry.register(plugin(link_to("FakeAWS", "fake-aws@h"), certificate="local-2"))  # restarted child
    assert [p.certificate for p in registry.plugins()] == ["local-2"]
