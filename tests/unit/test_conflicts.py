"""Claims: overlapping work is refused or queued in order; background work is told what is busy."""

from __future__ import annotations

import asyncio

import pytest

from formae.agent.conflicts import Claimant, ClaimKind, Claims, ConflictError, Scope
from formae.model import ResourceKey

pytestmark = pytest.mark.timeout(10)

BUCKET = ResourceKey("net", "FakeAWS::S3::Bucket", "b")
OTHER = ResourceKey("app", "FakeAWS::S3::Bucket", "logs")
A, B, C = Claimant.command("A"), Claimant.command("B"), Claimant.command("C")


def test_disjoint_scopes_are_both_granted() -> None:
    claims = Claims()
    claims.try_claim(A, Scope.of(stacks={"net"}))
    claim = claims.try_claim(B, Scope.of(stacks={"app"}, resources={ResourceKey("db", "T::X::Y", "x")}))
    assert claim.granted


@pytest.mark.parametrize(
    ("held", "asked", "named"),
    [
        (Scope.of(stacks={"net"}), Scope.of(stacks={"net", "app"}), "stack 'net'"),
        (Scope.of(stacks={"net"}), Scope.of(resources={BUCKET}), "resource net/FakeAWS::S3::Bucket/b"),
        (Scope.of(resources={BUCKET}), Scope.of(stacks={"net"}), "resource net/FakeAWS::S3::Bucket/b"),
        (Scope.of(resources={BUCKET}), Scope.of(resources={BUCKET, OTHER}), "resource net/"),
    ],
)
def test_an_overlap_is_refused_naming_the_holder_and_what_it_changes(
    held: Scope, asked: Scope, named: str
) -> None:
    claims = Claims()
    claims.try_claim(A, held)

    with pytest.raises(ConflictError) as conflict:
        claims.try_claim(B, asked)

    assert conflict.value.holders == [A]
    assert str(conflict.value).startswith("command A is changing ")
    assert named in str(conflict.value)
    assert [c.claimant for c in claims.held()] == [A]  # the refused claim left nothing behind


def test_changing_answers_for_held_claims_only() -> None:
    claims = Claims()
    claim = claims.try_claim(A, Scope.of(stacks={"net"}))
    assert claims.changing(BUCKET) == A
    assert claims.changing(OTHER) is None
    claim.release()
    assert claims.changing(BUCKET) is None


async def test_a_queued_claim_is_granted_when_the_holder_releases_and_blocks_later_ones() -> None:
    claims = Claims()
    first = claims.try_claim(A, Scope.of(stacks={"net"}))
    told: list[list[Claimant]] = []

    async def on_queued(holders: list[Claimant]) -> None:
        told.append(holders)

    waiting = asyncio.create_task(claims.claim(B, Scope.of(stacks={"net"}), on_queued))
    await asyncio.sleep(0)
    assert told == [[A]]
    with pytest.raises(ConflictError) as conflict:  # queued counts: C may not overtake B
        claims.try_claim(C, Scope.of(resources={BUCKET}))
    assert conflict.value.holders == [A, B]

    first.release()
    second = await asyncio.wait_for(waiting, 1)

    assert second.granted
    assert claims.changing(BUCKET) == B


async def test_queued_claims_are_granted_in_the_order_they_were_asked() -> None:
    claims = Claims()
    first = claims.try_claim(A, Scope.of(stacks={"net"}))
    order: list[str] = []

    async def take(who: Claimant) -> None:
        claim = await claims.claim(who, Scope.of(stacks={"net"}))
        order.append(who.id)
        await asyncio.sleep(0)
        claim.release()

    async with asyncio.TaskGroup() as group:
        group.create_task(take(B))
        await asyncio.sleep(0)
        group.create_task(take(C))
        await asyncio.sleep(0)
        first.release()

    assert order == ["B", "C"]


async def test_a_cancelled_wait_withdraws_its_claim() -> None:
    claims = Claims()
    first = claims.try_claim(A, Scope.of(stacks={"net"}))
    waiting = asyncio.create_task(claims.claim(B, Scope.of(stacks={"net"})))
    await asyncio.sleep(0)

    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    first.release()

    assert claims.holders(Scope.of(stacks={"net"})) == []


def test_widen_is_all_or_nothing() -> None:
    claims = Claims()
    claims.try_claim(A, Scope.of(stacks={"app"}))
    claim = claims.try_claim(B, Scope.of(stacks={"net"}))

    with pytest.raises(ConflictError):
        claim.widen(Scope.of(resources={OTHER}))
    claim.widen(Scope.of(stacks={"db"}))

    assert claim.scope == Scope.of(stacks={"net", "db"})


def test_background_holders_do_not_block_commands() -> None:
    sync = Claimant.sync("drift")
    assert sync.kind is ClaimKind.SYNC
    assert Claims.blocking([sync, Claimant.discovery("d"), A]) == [A]


def test_a_claim_is_released_by_its_with_block() -> None:
    claims = Claims()
    with claims.try_claim(Claimant.sync("s"), Scope.of(resources={BUCKET})):
        assert claims.changing(BUCKET) == Claimant.sync("s")
    assert claims.changing(BUCKET) is None


def test_every_stack_overlaps_anything_but_nothing() -> None:
    claims = Claims()
    claims.try_claim(A, Scope.of(resources={OTHER}))
    with pytest.raises(ConflictError, match="every stack"):
        claims.try_claim(B, Scope.everything())
    assert Scope.everything().overlap(Scope()) == []
    assert Scope.everything().covers(BUCKET)
