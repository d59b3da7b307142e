"""Work raced against an event: "do this, unless that happens first", written once.

The agent and the plugin SDK wait this way in several places: a plugin's handshake unless it is told
to stop, a queued command's claim unless it is canceled, the executor's next finished update unless
a cancel arrives, a plugin link's frames unless the link is closed. Each had its own copy of the
same ``asyncio.wait(..., FIRST_COMPLETED)`` dance, and each had to get the same details right (one
did not, and leaked a task on cancel):

- no task outlives the call, however it ends: the work finished, the event came first, or the caller
  was cancelled while waiting;
- work that finished in the same moment as the event keeps its result: an item taken from a queue
  is returned, not lost.

:func:`unless_set` returns the work's result, or raises :class:`Interrupted` when the event came
first, as ``asyncio.wait_for`` raises ``TimeoutError`` when time runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["Interrupted", "unless_set"]

T = TypeVar("T")


class Interrupted(Exception):
    """The event was set before the work finished; the work was cancelled."""


async def unless_set(work: Awaitable[T], event: asyncio.Event) -> T:
    """``work``'s result (or its exception); ``Interrupted`` if ``event`` is set first.

    Both the work and the wait for the event have ended when this returns or raises.
    """
    doing = asyncio.ensure_future(work)
    waiting = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({doing, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        doing.cancel()
        waiting.cancel()
        await asyncio.wait({doing, waiting})
    if doing.cancelled():
        raise Interrupted
    return doing.result()
