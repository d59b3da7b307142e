"""Large answers in pages, built in slices, so a read can never starve a heartbeat.

The agent's event loop also answers plugin heartbeats; a plugin that misses a few exits. Turning
100,000 update rows into JSON took ~4 s of that loop. So every answer that grows with the data
comes in pages (``limit``, and ``after`` = the cursor the previous page returned), and a page is
turned into bytes SLICE items at a time, the loop running other work (a heartbeat) between slices.
Only a few large reads are served at once (``turn``); the others wait, idle, so the loop's queue of
ready work stays short however many arrive.

Why not a worker thread: a thread busy in Python makes the loop wait for the GIL behind it at each
of its many small steps; with 50 concurrent large GETs, heartbeat answers took 2-3 s that way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import quote

from fastapi import Response
from pydantic import BaseModel

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_PAGE = 1000
MAX_PAGE = 5000
SLICE = 100
"""Items built and encoded between two chances for the loop to run something else."""
NEXT_HEADER = "X-Next-After"
"""The cursor of the next page of a list answer (absent on the last page)."""


class LargeReads:
    """Admission and slicing for the API's reads that grow with the data."""

    def __init__(self, at_once: int = 2) -> None:
        self._turns = asyncio.Semaphore(at_once)

    def turn(self) -> asyncio.Semaphore:
        """Held while a large read is fetched and rendered."""
        return self._turns


async def in_slices(items: Sequence[T], work: Callable[[T], R]) -> list[R]:
    """``work`` applied to every item, SLICE at a time, yielding the loop between slices."""
    done: list[R] = []
    for start in range(0, len(items), SLICE):
        if start:
            await asyncio.sleep(0)
        done += [work(item) for item in items[start : start + SLICE]]
    return done


async def json_list(items: Sequence[BaseModel], **headers: str) -> Response:
    """A JSON array of ``items``, encoded in slices."""
    encoded = await in_slices(items, lambda item: item.model_dump_json().encode())
    return Response(b"[" + b",".join(encoded) + b"]", media_type="application/json", headers=headers)


async def json_with_list(head: BaseModel, field: str, items: Sequence[BaseModel]) -> Response:
    """``head`` as JSON with ``field`` set to the array of ``items``, encoded in slices."""
    encoded = await in_slices(items, lambda item: item.model_dump_json().encode())
    body = head.model_dump_json(exclude={field}).encode()
    array = b"[" + b",".join(encoded) + b"]"
    return Response(body[:-1] + b',"' + field.encode() + b'":' + array + b"}", media_type="application/json")


def encode_cursor(cursor: str) -> str:
    """A cursor as a header value (ASCII): percent-encoded; the client decodes it to pass as ``after``."""
    return quote(cursor, safe="")
