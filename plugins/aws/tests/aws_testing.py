"""moto's server mode as a real process on a free loopback port: the AWS API the tests talk to.

The tests never use moto's in-process mocks: the plugin reaches this server over HTTP through
boto3, exactly as it reaches AWS (``endpoint_url`` in the target's config).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""Fake credentials: moto accepts any, and boto3 must never find real ones during a test."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class MotoServer:
    """One ``moto_server`` process; ``reset()`` empties it between tests."""

    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        env = {**os.environ, **CREDENTIALS}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not answer within {timeout}s")

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def client(self, service: str, endpoint: str | None = None) -> Any:
        """A boto3 client of the test's own, for out-of-band changes and checks."""
        return boto3.client(
            service,
            endpoint_url=endpoint or self.url,
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


_EC2_THROTTLE = (
    b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
    b"</Message></Error></Errors><RequestID>throttled</RequestID></Response>"
)
_JSON_THROTTLE = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'


@dataclass
class Call:
    """One request that went through the proxy: the AWS action, when, and whether it was throttled."""

    action: str
    at: float
    throttled: bool


class ThrottlingProxy:
    """An HTTP proxy in front of moto that answers the first N calls of chosen actions with AWS's
    throttling error (and a ``Retry-After``), or (``lose``) passes them on and hangs up without the
    answer, as when a plugin dies right after AWS acted; it records every call it saw.

    Actions are named as AWS names them: ``CreateVpc`` (EC2's query protocol) or ``CreateLogGroup``
    (a JSON protocol's ``X-Amz-Target``).
    """

    def __init__(
        self,
        upstream: MotoServer,
        throttle: dict[str, int],
        retry_after: float = 0.2,
        lose: dict[str, int] | None = None,
    ) -> None:
        self.upstream = upstream
        self.remaining = dict(throttle)
        self.to_lose = dict(lose or {})
        self.retry_after = retry_after
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="throttling-proxy", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ThrottlingProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def calls_of(self, action: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.action == action]

    def _decide(self, action: str) -> bool:
        with self._lock:
            throttled = self.remaining.get(action, 0) > 0
            if throttled:
                self.remaining[action] -= 1
            self.calls.append(Call(action, time.monotonic(), throttled))
            return throttled

    def _lose(self, action: str) -> bool:
        with self._lock:
            lost = self.to_lose.get(action, 0) > 0
            if lost:
                self.to_lose[action] -= 1
            return lost

    def rewrite(self, target: str, body: bytes, status: int, payload: bytes) -> tuple[int, bytes]:
        """The answer the plugin gets for one it had from moto: unchanged here (see ``SlowTablesProxy``)."""
        return status, payload

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                action = target.rsplit(".", 1)[-1] if target else _query_action(body)
                if proxy._decide(action):
                    self._throttle(bool(target))
                elif proxy._lose(action):  # AWS did it, but the answer never arrives: a crash, a cut
                    self._forward(body, reply=False)
                    self.close_connection = True
                else:
                    self._forward(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any  # noqa: N815 (http.server's names)

            def _throttle(self, json_protocol: bool) -> None:
                payload = _JSON_THROTTLE if json_protocol else _EC2_THROTTLE
                self.send_response(400)
                self.send_header(
                    "Content-Type", "application/x-amz-json-1.1" if json_protocol else "text/xml"
                )
                self.send_header("Retry-After", str(proxy.retry_after))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _forward(self, body: bytes, reply: bool = True) -> None:
                connection = http.client.HTTPConnection("127.0.0.1", proxy.upstream.port, timeout=60)
                try:
                    connection.request(self.command, self.path, body=body, headers=dict(self.headers))
                    answer = connection.getresponse()
                    payload = answer.read()
                finally:
                    connection.close()
                if not reply:
                    return
                status, payload = proxy.rewrite(
                    self.headers.get("X-Amz-Target", ""), body, answer.status, payload
                )
                self.send_response(status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

        return Handler


class SlowTablesProxy(ThrottlingProxy):
    """The proxy, and DynamoDB tables that take a while, as AWS's do: moto's finish at once.

    After a CreateTable, the first ``creating`` DescribeTable answers for that table say
    ``CREATING`` instead of ``ACTIVE``; after a DeleteTable (moto drops the table at once), the first
    ``deleting`` DescribeTable answers are the table, ``DELETING``, where moto says it is not found.
    ``served`` records every status the plugin was told, in order.
    """

    def __init__(self, upstream: MotoServer, creating: int, deleting: int) -> None:
        super().__init__(upstream, {})
        self.creating, self.deleting = creating, deleting
        self.served: list[tuple[str, str]] = []
        self._pending: dict[str, tuple[str, int]] = {}  # table: (status to report, answers left)
        self._deleted: dict[str, dict[str, Any]] = {}

    def rewrite(self, target: str, body: bytes, status: int, payload: bytes) -> tuple[int, bytes]:
        action = target.rsplit(".", 1)[-1]
        if action not in ("CreateTable", "DeleteTable", "DescribeTable"):
            return status, payload
        table = str(json.loads(body or b"{}").get("TableName", ""))
        with self._lock:
            if action == "CreateTable" and status == 200:
                self._pending[table] = ("CREATING", self.creating)
            elif action == "DeleteTable" and status == 200:
                self._pending[table] = ("DELETING", self.deleting)
                self._deleted[table] = json.loads(payload)["TableDescription"]
            elif action == "DescribeTable":
                return self._describe(table, status, payload)
        return status, payload

    def _describe(self, table: str, status: int, payload: bytes) -> tuple[int, bytes]:
        slow, left = self._pending.get(table, ("", 0))
        if left > 0:
            self._pending[table] = (slow, left - 1)
            found = json.loads(payload)["Table"] if status == 200 else dict(self._deleted[table])
            status, payload = 200, json.dumps({"Table": {**found, "TableStatus": slow}}).encode()
        told = (
            json.loads(payload).get("Table", {}).get("TableStatus", "NotFound")
            if status == 200
            else "NotFound"
        )
        self.served.append((table, told))
        return status, payload


def _query_action(body: bytes) -> str:
    for pair in body.split(b"&"):
        if pair.startswith(b"Action="):
            return pair.split(b"=", 1)[1].decode()
    return ""
