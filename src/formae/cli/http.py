"""The CLI's HTTP: the standard library's ``http.client``, one kept-alive connection to the agent.

Why not httpx, as the agent's tests use: ``import httpx`` costs ~190 ms of CPU here (it imports
its own command line, click and rich included), more than the whole start-up budget of a
``formae`` command (150 ms). ``http.client`` is already in memory after ~20 ms, speaks HTTP/1.1
keep-alive, TLS through ``ssl`` (imported only for an ``https`` agent) and chunked request bodies,
and lets a response be read line by line as it arrives, which is all the CLI needs.

:class:`Transport` is the seam: :class:`HttpTransport` talks to a real agent, a test may pass any
object with the same two methods.
"""

from __future__ import annotations

import http.client
import select
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    import ssl

Body = bytes | Iterable[bytes] | None
"""A request body: whole, or chunks sent as they come (``Transfer-Encoding: chunked``)."""


class TransportFailure(Exception):
    """The agent could not be reached, or the connection broke mid-way."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    target: str
    """Path and query string, e.g. ``/api/v1/commands/01J?updates=false``."""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Body = None
    timeout: float | None = None


class Headers(Protocol):
    """A response's headers, looked up case-insensitively."""

    def get(self, name: str, /) -> str | None: ...


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    reason: str
    headers: Headers
    body: bytes = b""
    lines: Iterator[bytes] | None = None
    """For a streamed response: its body line by line, read as the agent writes it."""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Transport(Protocol):
    def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse: ...

    def close(self) -> None: ...


def query_string(params: Mapping[str, Any] | None) -> str:
    """``?a=1&state=x&state=y`` as httpx writes it: booleans ``true``/``false``, lists repeated."""
    if not params:
        return ""
    pairs = [
        (name, _primitive(item))
        for name, value in params.items()
        for item in (value if isinstance(value, list | tuple) else [value])
    ]
    return "?" + urlencode(pairs)


def _primitive(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


class HttpTransport:
    """One connection to ``base_url``'s host, reopened when the agent closed it while idle."""

    def __init__(self, base_url: str, *, timeout: float | None, ca: Path | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TransportFailure(f"{base_url} is not an http:// or https:// URL")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._timeout = timeout
        self._ca = ca
        self._connection: http.client.HTTPConnection | None = None

    def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse:
        try:
            response = self._exchange(request)
            if stream:
                return _streamed(response)
            return HttpResponse(response.status, response.reason, response.msg, response.read())
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise TransportFailure(_describe(error)) from None

    def _exchange(self, request: HttpRequest) -> http.client.HTTPResponse:
        connection = self._open()
        connection.timeout = request.timeout if request.timeout is not None else self._timeout
        if connection.sock is not None:
            connection.sock.settimeout(connection.timeout)
        chunked = request.body is not None and not isinstance(request.body, bytes)
        connection.request(
            request.method,
            request.target,
            body=request.body,
            headers=dict(request.headers),
            encode_chunked=chunked,
        )
        return connection.getresponse()

    def _open(self) -> http.client.HTTPConnection:
        if self._connection is not None and _closed_by_peer(self._connection):
            self.close()
        if self._connection is None:
            if self._tls:
                self._connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=_tls_context(self._ca)
                )
            else:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    """An idle kept-alive socket that is readable has been closed (or broken) by the agent."""
    sock = connection.sock
    if sock is None:
        return False
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _streamed(response: http.client.HTTPResponse) -> HttpResponse:
    def lines() -> Iterator[bytes]:
        try:
            yield from response
        except (OSError, http.client.HTTPException) as error:
            raise TransportFailure(_describe(error)) from None

    if response.status >= 400:
        return HttpResponse(response.status, response.reason, response.msg, response.read())
    return HttpResponse(response.status, response.reason, response.msg, lines=lines())


def _tls_context(ca: Path | None) -> ssl.SSLContext:
    import ssl

    return ssl.create_default_context(cafile=str(ca) if ca else None)


def _describe(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__
