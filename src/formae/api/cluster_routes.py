"""``GET /api/v1/agents``: every agent sharing the store, the leader, and the commands each runs.

Read from the store, not from this agent's memory, so every agent answers the same: each agent's
row (alive while its lease is renewed), who holds the leader lease of the schedules, and for each
unfinished command the agent holding its lease and until when.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from formae.agent.leadership import SCHEDULES
from formae.store import AgentRecord, Command, Datastore


class LeaseView(BaseModel):
    command_id: str
    state: str
    expires_at: datetime | None


class AgentView(BaseModel):
    id: str = Field(description="The home's stable id ({home}/agent.id)")
    owner: str = Field(description="This run of the agent: what its leases name")
    host: str
    pid: int
    version: str
    api_url: str
    plugin_address: str = Field(description="Where plugins on other hosts reach it")
    started_at: datetime
    renewed_at: datetime
    expires_at: datetime
    alive: bool
    leader: bool = Field(description="Holds the leader lease: runs sync, discovery and stack policies")
    commands: list[LeaseView] = Field(description="Unfinished commands whose lease it holds")


class ClusterView(BaseModel):
    agents: list[AgentView]
    unleased: list[LeaseView] = Field(description="Unfinished commands nobody holds: about to be taken over")


def cluster_routes(store: Datastore) -> APIRouter:
    router = APIRouter()

    @router.get("/agents")
    async def agents() -> ClusterView:
        now = store.now()
        leader, _, until = await store.leader(SCHEDULES)
        leading = leader if until is not None and until > now else None
        commands = await store.list_incomplete_commands()
        views = [
            _agent_view(
                agent, now, agent.owner == leading, [c for c in commands if c.lease_owner == agent.owner]
            )
            for agent in await store.list_agents()
        ]
        unleased = [_lease(c) for c in commands if not _held(c, now)]
        return ClusterView(agents=views, unleased=unleased)

    return router


def _agent_view(agent: AgentRecord, now: datetime, leader: bool, leased: list[Command]) -> AgentView:
    return AgentView(
        id=agent.id,
        owner=agent.owner,
        host=agent.host,
        pid=agent.pid,
        version=agent.version,
        api_url=agent.api_url,
        plugin_address=agent.plugin_address,
        started_at=agent.started_at,
        renewed_at=agent.renewed_at,
        expires_at=agent.expires_at,
        alive=agent.alive(now),
        leader=leader,
        commands=[_lease(c) for c in leased if _held(c, now)],
    )


def _held(command: Command, now: datetime) -> bool:
    return command.lease_owner is not None and (command.lease_expires_at or now) > now


def _lease(command: Command) -> LeaseView:
    return LeaseView(command_id=command.id, state=command.state.value, expires_at=command.lease_expires_at)
