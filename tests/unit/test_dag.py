"""The execution DAG: validation, cycles found before running, readiness, failure and cancel."""

from __future__ import annotations

import pytest

from formae.model import Operation, ResourceKey, Target
from formae.plan import (
    Changeset,
    CycleError,
    Dag,
    DagError,
    DependencyFailure,
    NodeState,
    PlannedUpdate,
)

pytestmark = pytest.mark.timeout(10)

TARGET = Target(label="local", namespace="FakeAWS")


def update(id: str, *depends_on: str) -> PlannedUpdate:
    return PlannedUpdate(
        id=id,
        operation=Operation.CREATE,
        key=ResourceKey("net", "FakeAWS::S3::Bucket", id),
        target=TARGET,
        desired_properties={},
        prior_properties=None,
        patch=None,
        native_id=None,
        depends_on=frozenset(depends_on),
    )


def dag(*updates: PlannedUpdate) -> Dag:
    return Dag(Changeset(updates))


def ready_ids(graph: Dag) -> list[str]:
    return [u.id for u in graph.ready()]


def finish(graph: Dag, id: str) -> None:
    graph.mark_started(id)
    graph.mark_succeeded(id)


def test_only_updates_without_pending_dependencies_are_ready() -> None:
    graph = dag(update("vpc"), update("subnet", "vpc"), update("bucket"))

    assert ready_ids(graph) == ["vpc", "bucket"]


def test_a_dependant_becomes_ready_when_all_its_dependencies_succeed() -> None:
    graph = dag(update("a"), update("b"), update("c", "a", "b"))
    finish(graph, "a")
    assert ready_ids(graph) == ["b"]

    finish(graph, "b")

    assert ready_ids(graph) == ["c"]


def test_started_updates_are_no_longer_ready_and_the_dag_is_done_when_all_finish() -> None:
    graph = dag(update("a"), update("b", "a"))
    graph.mark_started("a")

    assert ready_ids(graph) == []
    assert not graph.is_done()
    graph.mark_succeeded("a")
    finish(graph, "b")
    assert graph.is_done()
    assert graph.state("b") is NodeState.SUCCEEDED


def test_an_empty_changeset_is_done() -> None:
    assert dag().is_done()


def test_unknown_dependency_is_refused() -> None:
    with pytest.raises(DagError, match="b depends on ghost, which is not in the changeset"):
        dag(update("a"), update("b", "ghost"))


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(DagError, match="two updates have the id a"):
        dag(update("a"), update("a"))


def test_a_cycle_is_found_before_anything_runs_and_named() -> None:
    with pytest.raises(CycleError) as caught:
        dag(update("a", "b"), update("b", "a"), update("c"))

    assert caught.value.cycle == ["a", "b", "a"]
    assert str(caught.value) == "dependency cycle: a -> b -> a"


def test_a_cycle_behind_other_updates_names_only_the_cycle() -> None:
    with pytest.raises(CycleError) as caught:
        dag(update("a", "b"), update("b", "c"), update("c", "d"), update("d", "b"), update("e", "a"))

    assert caught.value.cycle == ["b", "c", "d", "b"]


def test_an_update_depending_on_itself_is_a_cycle() -> None:
    with pytest.raises(CycleError, match="dependency cycle: a -> a"):
        dag(update("a", "a"))


def test_failure_fails_every_transitive_dependant_once() -> None:
    graph = dag(
        update("vpc"),
        update("subnet", "vpc"),
        update("route", "vpc"),
        update("nic", "subnet", "route"),
        update("bucket"),
    )
    graph.mark_started("vpc")

    failed = graph.mark_failed("vpc")

    assert sorted(failed) == ["nic", "route", "subnet"]
    assert graph.cause("nic") == DependencyFailure("nic", "vpc")
    assert graph.cause("vpc") is None
    assert graph.state("vpc") is NodeState.FAILED
    assert ready_ids(graph) == ["bucket"]
    finish(graph, "bucket")
    assert graph.is_done()


def test_a_dependant_already_ready_is_failed_when_another_dependency_fails() -> None:
    graph = dag(update("a"), update("b"), update("c", "a"), update("d", "b", "c"))
    finish(graph, "a")
    graph.mark_started("b")

    assert sorted(graph.mark_failed("b")) == ["d"]
    assert ready_ids(graph) == ["c"]


def test_cancel_cancels_only_what_has_not_started() -> None:
    graph = dag(update("a"), update("b", "a"), update("c"))
    graph.mark_started("a")

    assert graph.mark_canceled_pending() == ["b", "c"]
    assert ready_ids(graph) == []
    assert not graph.is_done()
    graph.mark_succeeded("a")
    assert ready_ids(graph) == []
    assert graph.is_done()
    assert graph.state("b") is NodeState.CANCELED


def test_starting_an_update_that_is_not_ready_is_refused() -> None:
    graph = dag(update("a"), update("b", "a"))

    with pytest.raises(DagError, match="b is not ready to start"):
        graph.mark_started("b")


def test_transitions_outside_the_table_are_refused() -> None:
    graph = dag(update("a"))

    with pytest.raises(DagError, match="a cannot go from pending to succeeded"):
        graph.mark_succeeded("a")
    finish(graph, "a")
    with pytest.raises(DagError, match="a cannot go from succeeded to failed"):
        graph.mark_failed("a")


def test_a_pending_update_may_fail_without_running() -> None:
    graph = dag(update("a"), update("b", "a"))

    assert graph.mark_failed("a") == ["b"]
    assert graph.is_done()


def run_all(graph: Dag) -> int:
    finished = 0
    while not graph.is_done():
        batch = graph.ready()
        for item in batch:
            graph.mark_started(item.id)
        for item in batch:
            graph.mark_succeeded(item.id)
        finished += len(batch)
    return finished


def test_ten_thousand_updates_in_a_chain() -> None:
    updates = [update("n0")] + [update(f"n{i}", f"n{i - 1}") for i in range(1, 10_000)]

    assert run_all(Dag(Changeset(tuple(updates)))) == 10_000


def test_ten_thousand_updates_fanned_out_and_in() -> None:
    fan = [update(f"leaf{i}", "root") for i in range(9_998)]
    updates = [update("root"), *fan, update("sink", *(u.id for u in fan))]

    assert run_all(Dag(Changeset(tuple(updates)))) == 10_000


def test_failure_in_a_long_chain_fails_the_rest_at_once() -> None:
    updates = [update("n0")] + [update(f"n{i}", f"n{i - 1}") for i in range(1, 10_000)]
    graph = Dag(Changeset(tuple(updates)))
    graph.mark_started("n0")

    assert len(graph.mark_failed("n0")) == 9_999
    assert graph.is_done()


def test_a_cycle_through_ten_thousand_updates_is_found() -> None:
    updates = [update("n0", "n9999")] + [update(f"n{i}", f"n{i - 1}") for i in range(1, 10_000)]

    with pytest.raises(CycleError) as caught:
        Dag(Changeset(tuple(updates)))

    assert len(caught.value.cycle) == 10_001
