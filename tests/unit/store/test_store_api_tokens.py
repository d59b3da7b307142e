"""API tokens as the store keeps them: a hash, a role, a lifetime, revocation — on both backends."""

from __future__ import annotations

from datetime import timedelta

from formae.auth import ApiToken
from formae.store import ApiTokenRecord, Datastore, utc_now


async def test_a_token_is_found_by_id_and_matches_only_its_own_secret(store: Datastore) -> None:
    token = ApiToken.new()
    now = utc_now()
    await store.create_api_token(ApiTokenRecord(token.id, "read", token.secret_sha256, "ci", now))
    found = await store.get_api_token(token.id)
    assert found is not None
    assert found.role == "read"
    assert found.valid(token.secret_sha256, now)
    assert not found.valid(ApiToken.new().secret_sha256, now)
    assert await store.get_api_token("nope") is None


async def test_revoked_and_expired_tokens_are_not_valid(store: Datastore) -> None:
    now = utc_now()
    short, long = ApiToken.new(), ApiToken.new()
    expires = now + timedelta(seconds=5)
    await store.create_api_token(ApiTokenRecord(short.id, "admin", short.secret_sha256, "", now, expires))
    await store.create_api_token(ApiTokenRecord(long.id, "operator", long.secret_sha256, "", now))
    found = await store.get_api_token(short.id)
    assert found is not None
    assert found.valid(short.secret_sha256, now)
    assert not found.valid(short.secret_sha256, now + timedelta(seconds=6))

    assert await store.revoke_api_token(long.id)
    assert not await store.revoke_api_token(long.id)  # once
    revoked = await store.get_api_token(long.id)
    assert revoked is not None
    assert revoked.revoked_at is not None
    assert not revoked.valid(long.secret_sha256, now)
    assert {t.id for t in await store.list_api_tokens()} == {short.id, long.id}
