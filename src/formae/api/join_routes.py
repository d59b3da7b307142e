"""REST route for joining plugins: POST /api/v1/plugins/tokens mints a one-time join token (admin)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException

from formae.agent.joining import JoinService
from formae.api.schemas import TokenRequest, TokenResponse


def join_routes(joins: JoinService | None) -> APIRouter:
    """``joins`` is None when the agent runs without plugin TLS: the route then answers 409."""
    router = APIRouter()

    @router.post("/plugins/tokens", status_code=201)
    async def create_join_token(body: TokenRequest) -> TokenResponse:
        """A one-time token for a plugin on another host; the response is the only copy of its secret."""
        if joins is None:
            raise HTTPException(
                409, "this agent runs without plugin TLS (--no-plugin-tls): plugins need no token"
            )
        try:
            token, record = await joins.create_token(
                body.namespaces, timedelta(seconds=body.ttl_seconds), body.agent_address
            )
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        return TokenResponse(
            token=token.encode(),
            id=record.id,
            namespaces=list(record.namespaces),
            expires_at=record.expires_at,
            agent_address=token.agent_address,
        )

    return router
