"""``/api/v1/auth/tokens``: mint, list and revoke API tokens (admin only, enforced by the gate)."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from formae.auth import ApiToken, Role
from formae.store import ApiTokenRecord, Datastore, utc_now


class ApiTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    ttl_seconds: int | None = Field(
        default=None,
        ge=1,
        le=10 * 365 * 24 * 3600,
        description="Lifetime (at most ten years); none: until revoked",
    )
    description: str = Field(default="", max_length=200)


class ApiTokenView(BaseModel):
    id: str
    role: Role
    description: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenView):
    token: str = Field(description="Send as 'Authorization: Bearer <token>'; shown once, stored as a hash")


def auth_routes(store: Datastore) -> APIRouter:
    router = APIRouter(prefix="/auth")

    @router.post("/tokens", status_code=201)
    async def create(body: ApiTokenRequest) -> ApiTokenCreated:
        token = ApiToken.new()
        now = utc_now()
        expires = now + timedelta(seconds=body.ttl_seconds) if body.ttl_seconds else None
        record = ApiTokenRecord(token.id, str(body.role), token.secret_sha256, body.description, now, expires)
        await store.create_api_token(record)
        return ApiTokenCreated(token=token.encode(), **_view(record).model_dump())

    @router.get("/tokens")
    async def listing() -> list[ApiTokenView]:
        return [_view(r) for r in await store.list_api_tokens()]

    @router.delete("/tokens/{token_id}")
    async def revoke(token_id: str) -> ApiTokenView:
        if not await store.revoke_api_token(token_id):
            raise HTTPException(404, f"no live API token {token_id}")
        found = await store.get_api_token(token_id)
        assert found is not None
        return _view(found)

    return router


def _view(record: ApiTokenRecord) -> ApiTokenView:
    return ApiTokenView(
        id=record.id,
        role=Role(record.role),
        description=record.description,
        created_at=record.created_at,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
    )
