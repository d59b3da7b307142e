"""The synchronizer's pure parts: what a sync writes as the new desire, and its run's state machine."""

from __future__ import annotations

import pytest

from formae.agent.synchronizer import SYNC_TRANSITIONS, Outcome, SyncRun, SyncState, synced_desired

pytestmark = pytest.mark.timeout(5)

VPC_REF = {"$res": True, "$label": "vpc", "$type": "FakeAWS::EC2::VPC", "$stack": "net", "$property": "VpcId"}


def test_a_value_edited_in_the_cloud_becomes_the_desire_so_the_planner_puts_the_forma_back() -> None:
    desired = {"BucketName": "b", "Tags": {"env": "dev"}}
    before = {"BucketName": "b", "Tags": {"env": "dev"}}
    after = {"BucketName": "b", "Tags": {"env": "prod"}, "Extra": 1}

    assert synced_desired(desired, before, after, frozenset()) == {
        "BucketName": "b",
        "Tags": {"env": "prod"},
        "Extra": 1,
    }


def test_a_removed_value_leaves_the_desire_references_and_read_only_values_never_change() -> None:
    desired = {"CidrBlock": "10.0.1.0/24", "VpcId": VPC_REF, "Name": "n"}
    before = {"CidrBlock": "10.0.1.0/24", "VpcId": "vpc-1", "SubnetId": "subnet-1", "Name": "n"}
    after = {"CidrBlock": "10.0.1.0/24", "VpcId": "vpc-2", "SubnetId": "subnet-9"}

    assert synced_desired(desired, before, after, frozenset({"SubnetId"})) == {
        "CidrBlock": "10.0.1.0/24",
        "VpcId": VPC_REF,
    }


def test_a_run_ends_once_and_counts_its_outcomes() -> None:
    run = SyncRun("r1", "stack:net")
    run.move(SyncState.RUNNING)
    run.count(Outcome.FAILED, "net/T/b: Throttling: slow down")
    run.move(SyncState.FAILED)

    assert run.finished.is_set()
    assert run.counts[Outcome.FAILED] == 1
    assert run.errors == ["net/T/b: Throttling: slow down"]
    assert SYNC_TRANSITIONS[SyncState.FAILED] == frozenset()
    with pytest.raises(RuntimeError):
        run.move(SyncState.SUCCESS)
