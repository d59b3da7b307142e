"""A stand-in agent inside the kit's process: the agent's own hub, registry and CA on loopback.

Using the agent's ``PluginHub`` means the announcement is judged exactly as a real agent judges it
(the cookie proof, protocol versions, namespace, types, the client certificate), and calls go
through the same ``PluginLink`` the engine uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from pathlib import Path
from types import TracebackType

import grpc.aio

from formae.agent.hub import PluginHub
from formae.agent.pki import CertificateAuthority, LocalPluginCredentials
from formae.agent.plugin_link import PluginLink
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import Location, PluginRegistry, RegisteredPlugin
from formae.wire.transport import ServerTls, start_hub_server
from formae.wire.types import OperationRequest, OperationResult

HEARTBEAT_INTERVAL = 0.5


class AgentEndpoint:
    def __init__(self, directory: Path, heartbeat_timeout: float = 2.5) -> None:
        self._directory = directory
        self.cookie = secrets.token_urlsafe(24)
        self.registry = PluginRegistry(RateLimiter(), heartbeat_timeout=heartbeat_timeout)
        self.children: set[int] = set()
        """Pids of the plugin processes the kit started: they register as local."""
        self._server: grpc.aio.Server | None = None
        self._watch: asyncio.Task[None] | None = None
        self.address = ""
        self._credentials: LocalPluginCredentials | None = None

    async def __aenter__(self) -> AgentEndpoint:
        authority = CertificateAuthority.load_or_create(self._directory / "pki")
        server = authority.server_keypair([])
        tls = ServerTls(server.certificate_pem, server.key_pem, authority.certificate_pem)
        self._credentials = LocalPluginCredentials(authority, self._directory / "pki" / "local")
        hub = PluginHub(
            self.registry, self.cookie, "conformance-agent@localhost", self._locate, require_certificate=True
        )
        self._server, port = await start_hub_server("127.0.0.1:0", hub.handle, tls=tls)
        self.address = f"127.0.0.1:{port}"
        self._watch = asyncio.create_task(self.registry.watch_heartbeats(), name="conformance heartbeats")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._server is not None:
            await self._server.stop(grace=None)

    def _locate(self, node: str, pid: int) -> Location:
        return Location.LOCAL if pid in self.children else Location.REMOTE

    def environment(self, name: str) -> dict[str, str]:
        """What the agent tells a plugin it spawns (docs/protocol.md §4), FORMAE_PARENT_PID aside."""
        assert self._credentials is not None, "use the endpoint as `async with`"
        return {
            **self._credentials.environment(name or "plugin"),
            "FORMAE_AGENT_NODE": self.address,
            "FORMAE_NETWORK_COOKIE": self.cookie,
            "FORMAE_HEARTBEAT_INTERVAL": str(HEARTBEAT_INTERVAL),
        }

    async def registered(self, namespace: str, timeout: float) -> RegisteredPlugin:
        """The plugin of ``namespace`` once it has announced itself and been accepted."""
        link = await self.registry.wait_for(namespace, timeout)
        return next(p for p in self.registry.plugins() if p.link is link)

    def link(self, namespace: str) -> PluginLink:
        return self.registry.lookup(namespace)

    async def call(self, namespace: str, request: OperationRequest, timeout: float = 30.0) -> OperationResult:
        return await self.link(namespace).call(request, timeout)

    def drop(self, plugin: RegisteredPlugin) -> None:
        """End the plugin's stream, as an agent does when it drops a plugin."""
        self.registry.disconnected(plugin.link, "dropped by the conformance kit")
