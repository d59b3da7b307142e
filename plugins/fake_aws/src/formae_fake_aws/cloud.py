"""The pretend cloud: resources by native id, in memory, optionally journaled to a file.

The journal is what makes the fake honest about crashes: a real cloud keeps what it created when
the plugin process dies, so every change is appended (and flushed) before the plugin answers, and
replayed when the plugin starts again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


@dataclass
class CloudResource:
    type: str
    native_id: str
    properties: dict[str, Any]


@dataclass
class PendingRequest:
    """An operation the cloud accepted and is still working on."""

    request_id: str
    operation: str
    type: str
    native_id: str
    polls_left: int


class Cloud:
    def __init__(self, journal: Path | None = None) -> None:
        self.resources: dict[str, CloudResource] = {}
        self.tokens: dict[str, str] = {}
        self.requests: dict[str, PendingRequest] = {}
        self._journal: IO[str] | None = None
        if journal is not None:
            self._replay(journal)
            self._journal = journal.open("a", encoding="utf-8")

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()

    def put(self, resource: CloudResource, token: str = "") -> None:
        self._record(
            {
                "op": "put",
                "type": resource.type,
                "id": resource.native_id,
                "properties": resource.properties,
                "token": token,
            }
        )
        self._apply_put(resource, token)

    def remove(self, native_id: str) -> None:
        self._record({"op": "remove", "id": native_id})
        self.resources.pop(native_id, None)

    def start_request(self, request: PendingRequest) -> None:
        self._record({"op": "request", **request.__dict__})
        self.requests[request.request_id] = request

    def poll_request(self, request_id: str) -> PendingRequest | None:
        """The request after one more poll; it is forgotten once it has no polls left."""
        request = self.requests.get(request_id)
        if request is None:
            return None
        request.polls_left -= 1
        self._record({"op": "poll", "request_id": request_id})
        if request.polls_left <= 0:
            del self.requests[request_id]
        return request

    def of_type(self, resource_type: str) -> list[CloudResource]:
        return [r for r in self.resources.values() if r.type == resource_type]

    def _apply_put(self, resource: CloudResource, token: str) -> None:
        self.resources[resource.native_id] = resource
        if token:
            self.tokens[token] = resource.native_id

    def _record(self, entry: dict[str, Any]) -> None:
        if self._journal is not None:
            self._journal.write(json.dumps(entry, separators=(",", ":")) + "\n")
            self._journal.flush()

    def _replay(self, journal: Path) -> None:
        if not journal.exists():
            return
        for line in journal.read_text(encoding="utf-8").splitlines():
            if line.strip():
                self._replay_entry(json.loads(line))

    def _replay_entry(self, entry: dict[str, Any]) -> None:
        match entry["op"]:
            case "put":
                resource = CloudResource(entry["type"], entry["id"], entry["properties"])
                self._apply_put(resource, entry["token"])
            case "remove":
                self.resources.pop(entry["id"], None)
            case "request":
                fields = {k: v for k, v in entry.items() if k != "op"}
                self.requests[entry["request_id"]] = PendingRequest(**fields)
            case "poll":
                request = self.requests.get(entry["request_id"])
                if request is not None:
                    request.polls_left -= 1
                    if request.polls_left <= 0:
                        del self.requests[entry["request_id"]]


def read_journal(journal: Path) -> dict[str, CloudResource]:
    """What a journaled cloud holds now: for tests and benchmarks that inspect the fake."""
    cloud = Cloud()
    cloud._replay(journal)
    return cloud.resources
