"""Discovery: finds what exists in the cloud that no stack manages, so it can be seen and adopted.

For every known target and every type its namespace's plugin serves, a discovery run calls the
plugin's ``list``, page after page, through the registry and the namespace's rate limit, retrying
recoverable errors and lost plugins. A resource whose native id no inventory entry of that type
holds enters the inventory as **unmanaged**: stack ``$unmanaged``, its native id as label, its
properties as the cloud has them (``formae inventory resources --query managed:false``). An
unmanaged resource no longer listed leaves it; one listed with other properties gets a new version.
``formae extract`` turns them into a forma; applying it adopts them.

Never a duplicate (issue 9.1's rules): a type with a create in flight in any command is left for
the next run (the create's resource may already be listed, and the command is about to store it
as managed); the write re-checks that under a DISCOVERY claim on the keys it adds, and is a
compare-and-append. Should a create still finish after discovery took its resource, the
command's version retires the unmanaged one in the same transaction (``Datastore.record_update``).

A plugin that cannot list answers an empty list (the SDK's default) or ``UnsupportedType`` /
``InvalidRequest``: that type is skipped without failing the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass, field, replace
from typing import Any

from formae.agent.conflicts import Claimant, Claims, ConflictError, Scope
from formae.agent.plugin_calls import call_plugin
from formae.agent.plugin_link import PluginUnavailable
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import NoPluginError, PluginRegistry
from formae.agent.run_queue import BackgroundRun, RunQueue, RunState
from formae.logs import bound
from formae.model import Operation, ResourceKey
from formae.store import (
    UNMANAGED_STACK,
    Datastore,
    Observation,
    ResourceRecord,
    TargetRecord,
    VersionOrigin,
    new_id,
    utc_now,
)
from formae.telemetry.hooks import Telemetry
from formae.wire.types import ErrorCode, ListedResource, ListRequest, ListResult, ProgressResult, TargetInfo

log = logging.getLogger("formae.agent.discovery")

PAGE_SIZE = 500
MAX_PAGES = 10_000
ATTEMPTS = 5
CANNOT_LIST = frozenset({ErrorCode.UNSUPPORTED_TYPE, ErrorCode.INVALID_REQUEST})


@dataclass
class DiscoveryRun(BackgroundRun):
    """One discovery; Failed: some lists failed, what the others found was kept."""

    target: str | None = None
    type: str | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("listed", "new", "changed", "removed", "skipped_types"), 0)
    )


class _ListFailed(Exception):
    pass


class _CannotList(Exception):
    pass


class Discovery:
    def __init__(
        self,
        store: Datastore,
        registry: PluginRegistry,
        limiter: RateLimiter,
        claims: Claims,
        *,
        page_size: int = PAGE_SIZE,
        keep: int = 20,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._telemetry = telemetry or Telemetry.off()
        self._store = store
        self._registry = registry
        self._limiter = limiter
        self._claims = claims
        self._page_size = page_size
        self._runs: RunQueue[DiscoveryRun] = RunQueue(
            "discovery", self._execute, keep=keep, ended=self._telemetry.metrics.background_run_ended
        )

    def start(self, target: str | None = None, resource_type: str | None = None) -> DiscoveryRun:
        return self._runs.enqueue(DiscoveryRun(new_id(), target=target or None, type=resource_type or None))

    def latest(self) -> DiscoveryRun | None:
        """The run in progress, or else the latest one: what the metrics show as progress."""
        return self._runs.latest()

    def get(self, run_id: str) -> DiscoveryRun | None:
        return self._runs.get(run_id)

    async def discover(self) -> DiscoveryRun:
        """Discover everything and wait: what the schedule calls."""
        run = self.start()
        await run.finished.wait()
        return run

    async def run(self) -> None:
        """Serve queued runs, one at a time, for as long as the agent runs."""
        await self._runs.serve()

    # ------------------------------------------------------------ one run

    async def _execute(self, run: DiscoveryRun) -> None:
        run.move(RunState.RUNNING)
        for target, resource_type in await self._work(run):
            await self._discover_type(run, target, resource_type)
        run.move(RunState.FAILED if run.errors else RunState.SUCCESS)
        counts = ", ".join(f"{n} {what}" for what, n in run.counts.items() if n)
        log.info("discovery %s finished %s: %s", run.id, run.state, counts or "nothing found")

    async def _work(self, run: DiscoveryRun) -> list[tuple[TargetRecord, str]]:
        """Every (target, type) to list: the targets the agent knows, the types their plugin serves."""
        work: list[tuple[TargetRecord, str]] = []
        for target in await self._store.list_targets():
            if run.target and target.label != run.target:
                continue
            types = {
                s.type for p in self._registry.plugins() if p.namespace == target.namespace for s in p.schemas
            }
            work.extend((target, t) for t in sorted(types) if not run.type or t == run.type)
        return work

    async def _discover_type(self, run: DiscoveryRun, target: TargetRecord, resource_type: str) -> None:
        if await self._create_in_flight(resource_type):
            run.counts["skipped_types"] += 1
            return
        try:
            listed = await self._list_all(target, resource_type)
        except _CannotList:
            run.counts["skipped_types"] += 1
            return
        except _ListFailed as error:
            run.errors.append(f"{resource_type} on target {target.label}: {error}")
            return
        run.counts["listed"] += len(listed)
        await self._absorb(run, target, resource_type, listed)

    async def _create_in_flight(self, resource_type: str) -> bool:
        changing = await self._store.keys_being_changed()
        return any(key.type == resource_type and Operation.CREATE in ops for key, ops in changing.items())

    # ------------------------------------------------------------ listing

    async def _list_all(self, target: TargetRecord, resource_type: str) -> list[ListedResource]:
        info = TargetInfo(target.label, target.namespace, dict(target.config))
        found: list[ListedResource] = []
        token = ""
        for _ in range(MAX_PAGES):
            page = await self._page(
                ListRequest(resource_type, info, token, self._page_size), target.namespace
            )
            found.extend(page.resources)
            token = page.next_page_token
            if not token:
                return found
        raise _ListFailed(f"more than {MAX_PAGES} pages")

    async def _page(self, request: ListRequest, namespace: str) -> ListResult:
        """One page, retried like any operation: recoverable errors and lost plugins, with backoff."""
        problem = "no answer"
        for attempt in range(1, ATTEMPTS + 1):
            try:
                link = self._registry.lookup(namespace)
                with bound(namespace=namespace, node=link.node):
                    result = await call_plugin(
                        link, request, 60.0, limiter=self._limiter, telemetry=self._telemetry
                    )
            except NoPluginError as error:
                raise _ListFailed(str(error)) from None
            except PluginUnavailable as error:
                problem = str(error)
            else:
                if isinstance(result, ListResult):
                    return result
                problem = _refusal(result)
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.75, 1.25))
        raise _ListFailed(f"{problem} (gave up after {ATTEMPTS} attempts)")

    # ------------------------------------------------------------ what was found

    async def _absorb(
        self, run: DiscoveryRun, target: TargetRecord, resource_type: str, listed: list[ListedResource]
    ) -> None:
        """Store what the list found, under a claim, reading the inventory only after the last check.

        The list was taken before the check that no create of the type is in flight, so a create
        that made a listed resource has either not finished (the type is left for the next run) or
        stored its managed version, which the inventory read after the check then holds.
        """
        keys = [unmanaged_key(resource_type, item.native_id) for item in listed]
        try:
            claim = self._claims.try_claim(Claimant.discovery(run.id), Scope.of(resources=keys))
        except ConflictError:
            return  # something is changing these right now: the next run sees them
        with claim:
            if await self._create_in_flight(resource_type):
                run.counts["skipped_types"] += 1
                return
            current = await self._store.current_resources(type_pattern=resource_type)
            observations = _observations(run, target, resource_type, listed, current)
            written = await self._store.observe(observations) if observations else []
        for observation, ok in zip(observations, written, strict=True):
            if ok:
                run.counts[_counted(observation)] += 1


def _observations(
    run: DiscoveryRun,
    target: TargetRecord,
    resource_type: str,
    listed: list[ListedResource],
    current: list[ResourceRecord],
) -> list[Observation]:
    """New or changed unmanaged resources, and tombstones for those gone or managed meanwhile.

    An unmanaged entry whose native id a managed resource also holds (an adoption resumed after a
    crash retires it late) is retired here too: one cloud resource is in the inventory once.
    """
    managed = {r.native_id: r for r in current if r.managed}
    known = {r.native_id: r for r in current if not r.managed} | managed  # managed wins
    seen = {item.native_id for item in listed}
    found = (_observation(run, target, resource_type, item, known) for item in listed)
    observations = [observation for observation in found if observation is not None]
    observations += [
        _removal(run, record)
        for record in current
        if not record.managed
        and record.target == target.label
        and (record.native_id not in seen or record.native_id in managed)
    ]
    return observations


def _observation(
    run: DiscoveryRun,
    target: TargetRecord,
    resource_type: str,
    item: ListedResource,
    known: dict[str | None, ResourceRecord],
) -> Observation | None:
    existing = known.get(item.native_id)
    if existing is not None and (existing.managed or _same(existing.properties, item.properties)):
        return None  # managed (the synchronizer's business), or unmanaged and unchanged
    record = ResourceRecord(
        stack=UNMANAGED_STACK,
        type=resource_type,
        label=item.native_id,
        target=target.label,
        native_id=item.native_id,
        properties=dict(item.properties),
        desired_properties=dict(item.properties),
        version=0,
        deleted=False,
        command_id=f"discovery {run.id}",
        created_at=utc_now(),
        managed=False,
        origin=VersionOrigin.DISCOVERY,
    )
    return Observation(existing.version if existing else None, record)


def _removal(run: DiscoveryRun, record: ResourceRecord) -> Observation:
    """An unmanaged resource the cloud no longer lists: its tombstone."""
    gone = replace(record, deleted=True, command_id=f"discovery {run.id}", origin=VersionOrigin.DISCOVERY)
    return Observation(record.version, gone)


def _counted(observation: Observation) -> str:
    if observation.record.deleted:
        return "removed"
    return "new" if observation.expected_version is None else "changed"


def _refusal(result: ProgressResult) -> str:
    code = result.error_code
    if code in CANNOT_LIST:
        raise _CannotList(result.message)
    if code is not None and not code.recoverable:
        raise _ListFailed(f"{code.wire_name}: {result.message}")
    return f"{code.wire_name if code else 'failure'}: {result.message}"


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def unmanaged_key(resource_type: str, native_id: str) -> ResourceKey:
    """Where discovery keeps an unmanaged resource: what ``formae extract`` starts from."""
    return ResourceKey(UNMANAGED_STACK, resource_type, native_id)
