"""A running command as server-sent events: the page follows it without reloading.

``GET /ui/commands/{id}/events`` answers ``text/event-stream``. Every ``INTERVAL`` it reads the
command's counts and updates from the store (what every agent sharing the store sees, so a
command run by another agent is followed too) and sends a ``progress`` event when anything
changed: the command's state and message, its counts, the mark of each box of its graph and the
state of each update. A final state sends ``end`` and closes the stream; so does ``MAX_STREAM``
(the browser's EventSource reconnects by itself) and the browser going away.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from formae.console import views
from formae.console.pages import ConsoleServices
from formae.graph import mark_class

INTERVAL = 0.5
MAX_STREAM = 300.0
"""Seconds one stream lasts; the browser then opens the next."""


def live_routes(services: ConsoleServices) -> APIRouter:
    router = APIRouter()

    @router.get("/commands/{command_id}/events")
    async def events(request: Request, command_id: str) -> StreamingResponse:
        if await services.store.get_command(command_id, with_forma=False) is None:
            raise HTTPException(404, f"no command {command_id}")
        return StreamingResponse(
            _stream(services, request, command_id),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    return router


async def _stream(services: ConsoleServices, request: Request, command_id: str) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    last: str | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MAX_STREAM
    while loop.time() < deadline and not await request.is_disconnected():
        shown = await views.command_page(services.store, services.runner, command_id, services.redact)
        if shown is None:
            return
        data = json.dumps(progress(shown), separators=(",", ":"))
        if data != last:
            yield f"event: progress\ndata: {data}\n\n"
            last = data
        if shown.command.state.is_final:
            yield "event: end\ndata: {}\n\n"
            return
        await asyncio.sleep(INTERVAL)


def progress(shown: views.CommandPage) -> dict[str, Any]:
    """What the page's script applies: text by element id, class and text by box, state by update."""
    return {
        "state": str(shown.command.state),
        "final": shown.command.state.is_final,
        "message": shown.message,
        "counts": shown.counts,
        "boxes": {
            b.id: [mark_class(b.mark), str(b.mark), b.lines[2] if b.members > 1 else None]
            for b in shown.graph.boxes
        },
        "updates": {
            u.update_id: [str(u.state), u.attempts, u.native_id or "", shown.errors.get(u.update_id, "")]
            for u in shown.updates
        },
    }
