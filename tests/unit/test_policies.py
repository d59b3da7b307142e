"""Stack policies: declared in the forma, stored with an expiry, due on their interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from formae.agent.policies import _due, _only_stack
from formae.forma import FormaError, forma_from_json
from formae.store import StackRecord

pytestmark = pytest.mark.timeout(5)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _stack(*policies: dict[str, object]) -> dict[str, object]:
    return {"stacks": [{"label": "s", "policies": list(policies)}], "targets": [], "resources": []}


def test_a_ttl_counts_from_the_apply_that_declared_it() -> None:
    forma = forma_from_json(_stack({"type": "ttl", "ttl_seconds": 60}), "f")

    record = StackRecord.from_model(forma.stacks[0], NOW)

    assert record.expires_at == NOW + timedelta(seconds=60)
    assert record.reconciled_at == NOW
    assert record.policies == [{"type": "ttl", "ttl_seconds": 60.0}]


def test_an_unknown_or_nonsense_policy_is_refused_with_the_forma() -> None:
    with pytest.raises(FormaError, match="policies"):
        forma_from_json(_stack({"type": "forever"}), "f")
    with pytest.raises(FormaError, match="interval_seconds"):
        forma_from_json(_stack({"type": "auto-reconcile", "interval_seconds": 0}), "f")


def test_auto_reconcile_is_due_an_interval_after_the_last_reconcile() -> None:
    policy = {"type": "auto-reconcile", "interval_seconds": 30.0}
    stack = StackRecord("s", policies=[policy], reconciled_at=NOW)

    assert not _due(stack, NOW + timedelta(seconds=29))
    assert _due(stack, NOW + timedelta(seconds=30))
    assert not _due(StackRecord("s", reconciled_at=NOW), NOW + timedelta(days=1))


def test_the_forma_to_enforce_is_the_stacks_part_of_the_last_reconcile() -> None:
    forma = {
        "stacks": [{"label": "a"}, {"label": "b"}],
        "targets": [{"label": "t"}],
        "resources": [{"label": "x", "stack": "a"}, {"label": "y", "stack": "b"}],
    }

    assert _only_stack(forma, "a") == {
        "stacks": [{"label": "a"}],
        "targets": [{"label": "t"}],
        "resources": [{"label": "x", "stack": "a"}],
    }
