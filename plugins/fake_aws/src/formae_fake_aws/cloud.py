"""The pretend cloud: one interface, kept in this process or in a SQLite file shared by replicas.

A real cloud is one system however many plugin processes talk to it: it keeps what it created when
a plugin dies, every replica sees the same resources, and a create retried on another replica with
the same idempotency token finds the first one, and a request it answered keeps its final status
(polled again by an agent that took a command over, it answers the same, as AWS Cloud Control's
request tokens do). ``SqliteCloud`` gives the fake those properties
(each operation is one transaction on a file every replica opens); ``MemoryCloud`` is the cheap
default for tests and benchmarks that run a single process and do not care about crashes.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported where used at run time: a plugin without a state file (the benchmark's) starts
    # without loading SQLite, which costs a few milliseconds of every spawn.
    import sqlite3

BUSY_TIMEOUT_S = 10.0
"""How long an operation waits for another replica's transaction before it gives up."""


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


class NativeIdTaken(Exception):
    """A create named a resource that already exists (a bucket name is unique, like in S3)."""

    def __init__(self, resource: CloudResource) -> None:
        super().__init__(f"{resource.type} {resource.native_id!r} already exists")


class Cloud(ABC):
    """What the plugin needs from a cloud; every method is atomic with respect to every replica."""

    @abstractmethod
    def get(self, native_id: str) -> CloudResource | None: ...

    @abstractmethod
    def of_type(self, resource_type: str) -> list[CloudResource]: ...

    @abstractmethod
    def referrers(self, resource_type: str, prop: str, value: str) -> list[str]:
        """Ids of the resources of ``resource_type`` whose ``prop`` is ``value`` (a VPC's subnets)."""

    @abstractmethod
    def token_owner(self, token: str) -> str | None:
        """The native id an idempotency token created, if a create with it already succeeded."""

    @abstractmethod
    def create(self, resource: CloudResource, token: str, pending: PendingRequest | None) -> str:
        """Store a new resource (and its pending request); the native id the token now names.

        When ``token`` already names a resource, nothing is stored and that resource's id is the
        answer: the create happens once however many replicas were asked. Raises
        ``NativeIdTaken`` when the id is in use.
        """

    @abstractmethod
    def update(self, resource: CloudResource, pending: PendingRequest | None) -> bool:
        """Replace an existing resource's properties; False when it no longer exists."""

    @abstractmethod
    def remove(self, native_id: str, pending: PendingRequest | None) -> bool:
        """Delete a resource; False when it was already gone."""

    @abstractmethod
    def pending_for(self, native_id: str) -> PendingRequest | None:
        """The unfinished request on a resource, for a create retried while the first still runs."""

    @abstractmethod
    def poll_request(self, request_id: str) -> PendingRequest | None:
        """The request after one more poll; it is forgotten once it has no polls left."""

    @abstractmethod
    def count_attempt(self, key: str) -> int:
        """Count one more attempt of an operation (injected failures fail the first N); the count."""

    @property
    @abstractmethod
    def resources(self) -> Mapping[str, CloudResource]:
        """Every resource by native id: for tests and benchmarks that inspect the fake."""

    @property
    @abstractmethod
    def requests(self) -> Mapping[str, PendingRequest]:
        """Every unfinished request by id: for tests."""

    def close(self) -> None:
        """Release what the cloud holds open; the state itself stays where it lives."""


class MemoryCloud(Cloud):
    """The cloud as dicts in this process: no SQL on the benchmark's hot path, lost with the process."""

    def __init__(self) -> None:
        self._resources: dict[str, CloudResource] = {}
        self._by_type: dict[str, dict[str, CloudResource]] = {}
        self._tokens: dict[str, str] = {}
        self._requests: dict[str, PendingRequest] = {}
        self._attempts: Counter[str] = Counter()

    @property
    def resources(self) -> dict[str, CloudResource]:
        return self._resources

    @property
    def requests(self) -> dict[str, PendingRequest]:
        return self._requests

    def get(self, native_id: str) -> CloudResource | None:
        return self._resources.get(native_id)

    def of_type(self, resource_type: str) -> list[CloudResource]:
        return list(self._by_type.get(resource_type, {}).values())

    def referrers(self, resource_type: str, prop: str, value: str) -> list[str]:
        of_type = self._by_type.get(resource_type, {})
        return [r.native_id for r in of_type.values() if r.properties.get(prop) == value]

    def token_owner(self, token: str) -> str | None:
        return self._tokens.get(token)

    def create(self, resource: CloudResource, token: str, pending: PendingRequest | None) -> str:
        owner = self._tokens.get(token) if token else None
        if owner is not None:
            return owner
        native_id = resource.native_id
        if native_id in self._resources:
            raise NativeIdTaken(resource)
        self._store(resource)
        if token:
            self._tokens[token] = native_id
        self._start(pending)
        return native_id

    def update(self, resource: CloudResource, pending: PendingRequest | None) -> bool:
        if resource.native_id not in self._resources:
            return False
        self._store(resource)
        self._start(pending)
        return True

    def remove(self, native_id: str, pending: PendingRequest | None) -> bool:
        resource = self._resources.pop(native_id, None)
        if resource is None:
            return False
        del self._by_type[resource.type][native_id]
        self._start(pending)
        return True

    def pending_for(self, native_id: str) -> PendingRequest | None:
        return next(
            (p for p in self._requests.values() if p.native_id == native_id and p.polls_left > 0), None
        )

    def poll_request(self, request_id: str) -> PendingRequest | None:
        request = self._requests.get(request_id)
        if request is None:
            return None
        request.polls_left = max(request.polls_left - 1, 0)  # a finished request keeps answering
        return request

    def count_attempt(self, key: str) -> int:
        self._attempts[key] += 1
        return self._attempts[key]

    def _store(self, resource: CloudResource) -> None:
        self._resources[resource.native_id] = resource
        self._by_type.setdefault(resource.type, {})[resource.native_id] = resource

    def _start(self, pending: PendingRequest | None) -> None:
        if pending is not None:
            self._requests[pending.request_id] = pending


_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    native_id  TEXT PRIMARY KEY,  -- the key that makes bucket names unique across replicas
    type       TEXT NOT NULL,
    properties TEXT NOT NULL      -- JSON
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS resources_by_type ON resources (type);
CREATE TABLE IF NOT EXISTS tokens (
    token     TEXT PRIMARY KEY,   -- the key that makes a create happen once across replicas
    native_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    operation  TEXT NOT NULL,
    type       TEXT NOT NULL,
    native_id  TEXT NOT NULL,
    polls_left INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_by_native_id ON requests (native_id);
CREATE TABLE IF NOT EXISTS attempts (
    key   TEXT PRIMARY KEY,
    count INTEGER NOT NULL
) WITHOUT ROWID;
"""
_REQUEST_COLUMNS = "request_id, operation, type, native_id, polls_left"


class SqliteCloud(Cloud):
    """The cloud in a SQLite file that every replica opens: one connection, one transaction per call.

    WAL lets readers run beside the one writer, the busy timeout makes writers queue instead of
    failing, and ``synchronous = NORMAL`` keeps a commit durable across a SIGKILL of the process
    (only a power cut may lose the last ones), which is the crash the fake has to survive.
    Writes start with ``BEGIN IMMEDIATE`` so a transaction never has to upgrade a read lock, the
    case in which SQLite answers "database is locked" without waiting.
    """

    def __init__(self, path: Path) -> None:
        import sqlite3

        # check_same_thread=False: the SDK may close the plugin from another thread than it ran on;
        # calls never interleave, since each is synchronous and opens and ends its transaction.
        self._db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            _enable_wal(self._db)
            self._db.execute("PRAGMA synchronous = NORMAL")
            with self._write() as db:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    @property
    def resources(self) -> dict[str, CloudResource]:
        rows = self._db.execute("SELECT type, native_id, properties FROM resources").fetchall()
        return {row[1]: _resource(row) for row in rows}

    @property
    def requests(self) -> dict[str, PendingRequest]:
        rows = self._db.execute(f"SELECT {_REQUEST_COLUMNS} FROM requests").fetchall()
        return {row[0]: PendingRequest(*row) for row in rows}

    def get(self, native_id: str) -> CloudResource | None:
        row = self._db.execute(
            "SELECT type, native_id, properties FROM resources WHERE native_id = ?", (native_id,)
        ).fetchone()
        return None if row is None else _resource(row)

    def of_type(self, resource_type: str) -> list[CloudResource]:
        rows = self._db.execute(
            "SELECT type, native_id, properties FROM resources WHERE type = ?", (resource_type,)
        ).fetchall()
        return [_resource(row) for row in rows]

    def referrers(self, resource_type: str, prop: str, value: str) -> list[str]:
        rows = self._db.execute(
            "SELECT native_id FROM resources WHERE type = ? AND json_extract(properties, ?) = ?",
            (resource_type, _json_path(prop), value),
        ).fetchall()
        return [row[0] for row in rows]

    def token_owner(self, token: str) -> str | None:
        row = self._db.execute("SELECT native_id FROM tokens WHERE token = ?", (token,)).fetchone()
        return None if row is None else str(row[0])

    def create(self, resource: CloudResource, token: str, pending: PendingRequest | None) -> str:
        import sqlite3

        with self._write() as db:
            if token and not _claim(db, token, resource.native_id):
                return str(db.execute("SELECT native_id FROM tokens WHERE token = ?", (token,)).fetchone()[0])
            try:
                db.execute(
                    "INSERT INTO resources (native_id, type, properties) VALUES (?, ?, ?)",
                    (resource.native_id, resource.type, _dumps(resource.properties)),
                )
            except sqlite3.IntegrityError as taken:
                raise NativeIdTaken(resource) from taken
            _insert_request(db, pending)
        return resource.native_id

    def update(self, resource: CloudResource, pending: PendingRequest | None) -> bool:
        with self._write() as db:
            updated = db.execute(
                "UPDATE resources SET properties = ? WHERE native_id = ?",
                (_dumps(resource.properties), resource.native_id),
            ).rowcount
            if updated:
                _insert_request(db, pending)
        return updated > 0

    def remove(self, native_id: str, pending: PendingRequest | None) -> bool:
        with self._write() as db:
            removed = db.execute("DELETE FROM resources WHERE native_id = ?", (native_id,)).rowcount
            if removed:
                _insert_request(db, pending)
        return removed > 0

    def pending_for(self, native_id: str) -> PendingRequest | None:
        row = self._db.execute(
            f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE native_id = ? AND polls_left > 0 LIMIT 1",
            (native_id,),
        ).fetchone()
        return None if row is None else PendingRequest(*row)

    def poll_request(self, request_id: str) -> PendingRequest | None:
        with self._write() as db:
            rows = db.execute(
                f"UPDATE requests SET polls_left = MAX(polls_left - 1, 0) WHERE request_id = ? "
                f"RETURNING {_REQUEST_COLUMNS}",
                (request_id,),
            ).fetchall()
            if not rows:
                return None
        return PendingRequest(*rows[0])  # a finished request keeps answering, as a cloud's do

    def count_attempt(self, key: str) -> int:
        with self._write() as db:
            rows = db.execute(
                "INSERT INTO attempts (key, count) VALUES (?, 1) "
                "ON CONFLICT (key) DO UPDATE SET count = count + 1 RETURNING count",
                (key,),
            ).fetchall()
        return int(rows[0][0])

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back when it raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def _enable_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL, retrying while another replica opening the same new file holds the lock.

    Changing the journal mode takes an exclusive lock for which SQLite does not always call the
    busy handler, so replicas started together would otherwise see "database is locked".
    """
    import sqlite3

    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"SQLite refused WAL mode (journal_mode is {mode!r})")


def _is_busy(error: sqlite3.Error) -> bool:
    import sqlite3

    code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # extended codes keep the primary in the low byte
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _claim(db: sqlite3.Connection, token: str, native_id: str) -> bool:
    """Whether ``token`` was free and now names ``native_id`` (False: an earlier create has it)."""
    inserted = db.execute(
        "INSERT INTO tokens (token, native_id) VALUES (?, ?) ON CONFLICT (token) DO NOTHING",
        (token, native_id),
    ).rowcount
    return inserted > 0


def _insert_request(db: sqlite3.Connection, pending: PendingRequest | None) -> None:
    if pending is not None:
        db.execute(
            f"INSERT INTO requests ({_REQUEST_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (pending.request_id, pending.operation, pending.type, pending.native_id, pending.polls_left),
        )


def _resource(row: tuple[str, str, str]) -> CloudResource:
    return CloudResource(row[0], row[1], json.loads(row[2]))


def _dumps(properties: Mapping[str, Any]) -> str:
    return json.dumps(properties, separators=(",", ":"))


def _json_path(prop: str) -> str:
    """A JSON path naming one top-level key, quoted so that dots in the name stay in the name."""
    return '$."' + prop.replace('"', '\\"') + '"'


IN_MEMORY = ":memory:"
"""``FAKE_AWS_STATE_FILE=:memory:``: a cloud that lives and dies with the plugin process (benchmarks)."""


def state_file(env: Mapping[str, str]) -> Path | None:
    """Where the cloud is kept: ``FAKE_AWS_STATE_FILE``, else ``cloud.db`` in the plugin's state directory.

    A real cloud outlives the plugin process that talks to it, and a test or a demo changes it
    behind the agent's back with ``fake-aws-cloud``; so the default is a file, under
    ``FORMAE_PLUGIN_STATE_DIR`` (default ``~/.pel/formae-plugin/fake-aws``). None means in memory.
    """
    explicit = env.get("FAKE_AWS_STATE_FILE", "")
    if explicit == IN_MEMORY:
        return None
    if explicit:
        return Path(explicit)
    directory = env.get("FORMAE_PLUGIN_STATE_DIR") or str(Path.home() / ".pel" / "formae-plugin" / "fake-aws")
    return Path(directory) / "cloud.db"


def open_cloud(path: Path | None) -> Cloud:
    """The cloud a plugin process serves: shared through ``path`` when there is one."""
    if path is None:
        return MemoryCloud()
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteCloud(path)


def read_cloud(path: Path) -> dict[str, CloudResource]:
    """What the cloud in ``path`` holds now (empty if no replica made it yet): for tests and benchmarks."""
    if not path.exists():
        return {}
    cloud = SqliteCloud(path)
    try:
        return cloud.resources
    finally:
        cloud.close()
