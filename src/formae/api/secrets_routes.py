"""``/api/v1/secrets/rotate``: a new current key for sealing secrets (admin only, by the gate)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from formae.secrets import SecretKeyring


class KeyRotated(BaseModel):
    current: str
    keys: list[str]


def secrets_routes(keyring: SecretKeyring) -> APIRouter:
    router = APIRouter(prefix="/secrets")

    @router.post("/rotate")
    async def rotate() -> KeyRotated:
        """Secrets sealed from now on use a new key; older keys stay to open what they sealed."""
        current = keyring.rotate()
        return KeyRotated(current=current, keys=sorted(keyring.keys))

    return router
