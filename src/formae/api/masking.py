"""The last line of defence for secrets on the way out of the API: nothing sealed or known leaves.

The agent never puts a clear secret where the API reads, but a route may still return a sealed one
(a resource's properties, a target's config, a plan's patch, an extracted forma, a drift) or a
message that quotes a value. This middleware rewrites every JSON answer that holds either: each
secret, whatever its shape, becomes ``(secret)``, and each known clear value in a string too. An
answer with neither passes untouched after one substring check, so the common case costs nothing.
"""

from __future__ import annotations

import json
from typing import Any

from formae.api.auth import AsgiApp, Message, Receive, Scope, Send
from formae.secrets import Redactor, mask

_MARKERS = (b'"$sealed"', b'"$value"', b'"$secret"')


class SecretMasking:
    def __init__(self, app: AsgiApp, redactor: Redactor) -> None:
        self._app = app
        self._redactor = redactor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if not _is_json(
                    message
                ):  # HTML, a stream of events: nothing of JSON to mask, sent as it comes
                    await send(message)
                    return
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._flush(send, start, b"".join(chunks))

        await self._app(scope, receive, buffered)

    async def _flush(self, send: Send, start: Message, body: bytes) -> None:
        if self._needs_masking(start, body):
            body = json.dumps(self._masked(json.loads(body))).encode()
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            start = {**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        await send(start)
        await send({"type": "http.response.body", "body": body})

    def _needs_masking(self, start: Message, body: bytes) -> bool:
        return any(m in body for m in _MARKERS) or self._redactor.knows_any(body.decode(errors="replace"))

    def _masked(self, value: Any) -> Any:
        return self._redacted(mask(value))

    def _redacted(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._redacted(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redacted(v) for v in value]
        return self._redactor.redact(value) if isinstance(value, str) else value


def _is_json(start: Message) -> bool:
    types = [v for k, v in start.get("headers", []) if k.lower() == b"content-type"]
    return bool(types) and b"json" in types[0]
