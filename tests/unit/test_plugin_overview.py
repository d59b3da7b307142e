"""ProcessStatus and PluginOverview: a crash-looping plugin is visible, degrades health, and refuses work."""

from __future__ import annotations

import pytest

from formae.agent.plugin_link import PluginLink
from formae.agent.plugin_overview import PluginOverview
from formae.agent.process_status import IllegalTransition, ProcessState, ProcessStatus
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import Location, PluginRegistry, RegisteredPlugin
from tests.unit.memory_stream import MemoryStreamPair

pytestmark = pytest.mark.timeout(10)


class Processes:
    def __init__(self, *statuses: ProcessStatus) -> None:
        self.list = list(statuses)

    def statuses(self) -> list[ProcessStatus]:
        return self.list


def crash_looping(name: str = "flaky", node: str = "flaky@h") -> ProcessStatus:
    status = ProcessStatus(name, "1.0.0", node)
    for failures in range(1, 4):
        status.started(100 + failures)
        status.wrote(f"boom {failures}")
        status.exited(3, failures, 60.0)
        status.retrying()
    return status


def registered(registry: PluginRegistry, namespace: str, node: str) -> PluginLink:
    pair = MemoryStreamPair()
    link = PluginLink(pair.agent, namespace, node)
    registry.register(
        RegisteredPlugin(namespace, "flaky", "1.0.0", node, 1, Location.LOCAL, 1, 0.0, 0, (), link)
    )
    return link


def test_the_process_state_machine_refuses_illegal_moves() -> None:
    status = ProcessStatus("p", "1.0.0", "p@h")
    status.started(10)
    status.exited(78, 1, None)
    assert status.state is ProcessState.REFUSED
    with pytest.raises(IllegalTransition):
        status.retrying()
    assert status.problem() == "plugin p exited 78 (refused by this agent) and is not restarted"


def test_three_quick_exits_make_a_crash_loop_with_its_last_words() -> None:
    status = crash_looping()
    assert status.crash_looping
    assert (status.restarts, status.last_exit_code, list(status.stderr)) == (
        3,
        3,
        ["boom 1", "boom 2", "boom 3"],
    )
    assert status.problem() is not None
    assert status.problem().startswith("plugin flaky is crash-looping: 3 quick exits in a row, 3 restarts")  # type: ignore[union-attr]


async def test_a_namespace_whose_plugin_crash_loops_is_refused_without_waiting() -> None:
    registry = PluginRegistry(RateLimiter())
    link = registered(registry, "Flaky", "flaky@h")
    registry.disconnected(link, "stream closed by the plugin")
    overview = PluginOverview(registry, Processes(crash_looping()), grace=30.0)

    unavailable = await overview.unavailable(["Flaky"])  # the 30 s grace would time the test out

    assert unavailable.missing == []
    [down] = unavailable.down
    assert down.startswith("no healthy plugin for namespace Flaky: plugin flaky is crash-looping")
    assert overview.problems()[0].startswith("plugin flaky is crash-looping")
    [row] = overview.rows()
    assert row.registered is not None
    assert row.process is not None


async def test_a_plugin_briefly_away_is_waited_for_and_an_unknown_namespace_names_what_is_down() -> None:
    registry = PluginRegistry(RateLimiter())
    link = registered(registry, "FakeAWS", "fake-aws@h")
    registry.disconnected(link, "killed")
    overview = PluginOverview(registry, Processes(crash_looping("crashy", "crashy@h")), grace=0.05)

    unavailable = await overview.unavailable(["FakeAWS", "AWS"])

    assert unavailable.down == [
        "no healthy plugin for namespace FakeAWS: fake-aws@h: disconnected: killed (see formae plugin list)"
    ]
    [missing] = unavailable.missing
    assert missing.startswith("no plugin registered for namespace AWS (registered: FakeAWS); local plugins")
    assert "plugin crashy is crash-looping" in missing
