"""``/api/v1/agent/config`` and ``/api/v1/agent/reload``: the running configuration, and reloading it.

Both need an admin token (the gate): the configuration tells where everything is, even masked,
and a reload changes how the agent behaves. A reload answers what it applied and what waits for a
restart; a configuration that no longer validates is answered 400 with its problems, changing nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from formae.agent.live_config import LiveConfig, ReloadRefused
from formae.config import effective_rows


class SettingView(BaseModel):
    key: str
    value: Any
    origin: str
    live: bool


class EffectiveConfig(BaseModel):
    file: str | None
    settings: list[SettingView]


class Reloaded(BaseModel):
    applied: list[str]
    needs_restart: list[str]


def config_routes(live: LiveConfig) -> APIRouter:
    router = APIRouter(prefix="/agent")

    @router.get("/config")
    async def config() -> EffectiveConfig:
        """Every setting in force, where its value came from, and whether a reload can change it."""
        settings = live.settings
        assert settings is not None
        rows = [SettingView(**row.as_json()) for row in effective_rows(settings)]
        path = settings.file.path
        return EffectiveConfig(file=str(path) if path else None, settings=rows)

    @router.post(
        "/reload",
        response_model=Reloaded,
        responses={400: {"description": "the configuration is invalid; nothing changed"}},
    )
    async def reload() -> Any:
        """Read the configuration again; apply what can change live, and name what needs a restart."""
        try:
            changes = await live.reload()
        except ReloadRefused as refused:
            return JSONResponse(
                {"error": "configuration not reloaded", "problems": str(refused).splitlines()},
                status_code=400,
            )
        return Reloaded(**changes.as_json())

    return router
