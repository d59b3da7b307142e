"""The agent's own hub and registry, in the benchmark's process, with or without plugin TLS.

Spawn timing and the transport limit both need the agent's plugin endpoint without the rest of
the agent; this builds it exactly as the agent does, so the figures measure the same path.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from formae.agent.hub import PluginHub
from formae.agent.pki import CertificateAuthority, LocalPluginCredentials
from formae.agent.registry import Location, PluginRegistry
from formae.wire.transport import ServerTls, start_hub_server


@dataclass(frozen=True)
class Hub:
    port: int
    child_env: dict[str, str]
    """What a spawned fake-aws needs to reach this hub, as the process manager would give it."""


@asynccontextmanager
async def running_hub(registry: PluginRegistry, node: str, *, tls: bool) -> AsyncIterator[Hub]:
    cookie = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="formae-bench-pki-") as pki:
        server_tls, credentials = _tls(Path(pki)) if tls else (None, {})
        hub = PluginHub(registry, cookie, "bench-agent", lambda n, p: Location.LOCAL, require_certificate=tls)
        server, port = await start_hub_server("127.0.0.1:0", hub.handle, tls=server_tls)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FORMAE_", "FAKE_AWS_STATE"))},
            "FORMAE_AGENT_NODE": f"127.0.0.1:{port}",
            "FORMAE_PLUGIN_NODE": node,
            "FORMAE_NETWORK_COOKIE": cookie,
            "FORMAE_LOG_LEVEL": "WARNING",
            "FAKE_AWS_STATE_FILE": ":memory:",  # the transport limit, not SQLite, is what is measured
            **credentials,
        }
        try:
            yield Hub(port, env)
        finally:
            await server.stop(grace=None)


def _tls(directory: Path) -> tuple[ServerTls, dict[str, str]]:
    authority = CertificateAuthority.load_or_create(directory)
    server = authority.server_keypair([])
    credentials = LocalPluginCredentials(authority, directory / "local").environment("fake-aws")
    return ServerTls(server.certificate_pem, server.key_pem, authority.certificate_pem), credentials
