from __future__ import annotations

from formae.model import Stack, Target
from formae.store import Datastore, StackRecord, TargetRecord


async def test_stacks_are_upserted_by_label(store: Datastore) -> None:
    await store.upsert_stack(StackRecord("web"))
    await store.upsert_stack(StackRecord.from_model(Stack(label="app", description="first")))
    await store.upsert_stack(StackRecord("app", "second"))

    assert await store.list_stacks() == [StackRecord("app", "second"), StackRecord("web", "")]


async def test_targets_are_upserted_by_label(store: Datastore) -> None:
    dev = Target(label="aws-dev", namespace="FakeAWS", config={"region": "eu-west-1", "retries": 3})
    await store.upsert_target(TargetRecord.from_model(dev))
    await store.upsert_target(TargetRecord("aws-dev", "FakeAWS", {"region": "us-east-1"}))
    await store.upsert_target(TargetRecord("k8s", "K8s"))

    assert await store.list_targets() == [
        TargetRecord("aws-dev", "FakeAWS", {"region": "us-east-1"}),
        TargetRecord("k8s", "K8s", {}),
    ]
