"""Join tokens: spent once, never after expiry, never with a wrong secret; only a hash is kept."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from formae.store import Datastore, JoinRefused, JoinTokenRecord, utc_now

pytestmark = pytest.mark.timeout(30)


def a_token(token_id: str = "t1", expires_in: timedelta = timedelta(hours=1)) -> JoinTokenRecord:
    now = utc_now()
    return JoinTokenRecord(token_id, "ab" * 32, ("AWS", "FakeAWS"), now, now + expires_in)


async def test_a_token_is_redeemed_once(store: Datastore) -> None:
    await store.create_join_token(a_token())

    redeemed = await store.redeem_join_token("t1", "ab" * 32, "aws@host-a")

    assert redeemed.namespaces == ("AWS", "FakeAWS")
    assert redeemed.used_by == "aws@host-a"
    with pytest.raises(JoinRefused, match=r"join token t1 was already used \(by aws@host-a\)"):
        await store.redeem_join_token("t1", "ab" * 32, "aws@host-b")


async def test_racing_joins_with_one_token_let_exactly_one_in(store: Datastore) -> None:
    await store.create_join_token(a_token())

    results = await asyncio.gather(
        *(store.redeem_join_token("t1", "ab" * 32, f"aws@{i}") for i in range(10)), return_exceptions=True
    )

    assert sum(isinstance(r, JoinTokenRecord) for r in results) == 1
    assert sum(isinstance(r, JoinRefused) for r in results) == 9


@pytest.mark.parametrize(
    ("token_id", "secret", "reason"),
    [
        ("t1", "cd" * 32, "join token t1 is unknown or its secret is wrong"),
        ("nope", "ab" * 32, "join token nope is unknown or its secret is wrong"),
    ],
)
async def test_wrong_secret_or_unknown_token_is_refused(
    store: Datastore, token_id: str, secret: str, reason: str
) -> None:
    await store.create_join_token(a_token())

    with pytest.raises(JoinRefused) as refused:
        await store.redeem_join_token(token_id, secret, "aws@host")

    assert str(refused.value) == reason


async def test_an_expired_token_is_refused(store: Datastore) -> None:
    await store.create_join_token(a_token(expires_in=timedelta(seconds=-1)))

    with pytest.raises(JoinRefused, match="join token t1 expired at "):
        await store.redeem_join_token("t1", "ab" * 32, "aws@host")
