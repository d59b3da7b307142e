"""REST routes of the inventory: resources (queried, paged), stacks and targets, as the store has them."""

from __future__ import annotations

import bisect
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from formae.api.paging import (
    DEFAULT_PAGE,
    MAX_PAGE,
    NEXT_HEADER,
    LargeReads,
    encode_cursor,
    in_slices,
    json_list,
)
from formae.api.schemas import QUERY_TERMS, KeyView, ResourceView, StackView, TargetView
from formae.model import find_references
from formae.model.query import Query as ResourceQuery
from formae.model.query import QueryError
from formae.store import Datastore, ResourceRecord, VersionOrigin

_NOT_SHOWN = frozenset({"deleted", "desired_properties", "origin"})


def inventory_routes(store: Datastore, large_reads: LargeReads) -> APIRouter:
    router = APIRouter()

    @router.get("/resources", response_model=list[ResourceView])
    async def resources(
        query: Annotated[
            str, Query(pattern=QUERY_TERMS, description="e.g. 'stack:net type:FakeAWS::*'")
        ] = "",
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Resources per page")] = DEFAULT_PAGE,
        after: Annotated[
            str | None, Query(description=f"The {NEXT_HEADER} header of the previous page")
        ] = None,
    ) -> Response:
        try:
            selected = ResourceQuery.parse(query)
        except QueryError as error:
            raise HTTPException(400, str(error)) from None
        start = after
        async with large_reads.turn():
            found = await store.current_resources()
            page, next_key = await _resource_page(found, selected, start, limit)
            headers = {NEXT_HEADER: encode_cursor(next_key)} if next_key is not None else {}
            return await json_list(await in_slices(page, _resource_view), **headers)

    @router.get("/stacks")
    async def stacks() -> list[StackView]:
        return [
            StackView(
                label=s.label,
                description=s.description,
                policies=s.policies,
                expires_at=s.expires_at,
                reconciled_at=s.reconciled_at,
            )
            for s in await store.list_stacks()
        ]

    @router.get("/targets")
    async def targets() -> list[TargetView]:
        return [
            TargetView(label=t.label, namespace=t.namespace, config=t.config)
            for t in await store.list_targets()
        ]

    return router


async def _resource_page(
    found: list[ResourceRecord], selected: ResourceQuery, after: str | None, limit: int
) -> tuple[list[ResourceRecord], str | None]:
    """The ``limit`` resources matching ``selected`` after the key ``after``; the last key if more follow."""
    chosen = await in_slices(found, lambda r: selected.matches(r.key, r.target, r.managed))
    matching = sorted((r for r, ok in zip(found, chosen, strict=True) if ok), key=_resource_cursor)
    start = 0 if after is None else bisect.bisect_right([_resource_cursor(r) for r in matching], after)
    page = matching[start : start + limit]
    return page, (_resource_cursor(page[-1]) if start + limit < len(matching) else None)


def _resource_cursor(r: ResourceRecord) -> str:
    """Stack, type, label and target joined by tabs: sorts as the tuple does (labels hold no control
    characters), and any string is a valid ``after``, so no schema-valid cursor is ever refused."""
    return "\t".join((r.key.stack, r.key.type, r.key.label, r.target))


def _resource_view(r: ResourceRecord) -> ResourceView:
    return ResourceView(
        **{k: v for k, v in asdict(r).items() if k not in _NOT_SHOWN},
        drift="changed in the cloud" if r.origin is VersionOrigin.SYNC else None,
        refers_to=_refers_to(r),
    )


def _refers_to(r: ResourceRecord) -> list[KeyView]:
    keys = sorted({ref.target_key for _, ref in find_references(r.desired_properties)})
    return [KeyView(stack=s, type=t, label=label) for s, t, label in keys]
