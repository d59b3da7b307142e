"""How a plugin process learns where its agent is and how to prove itself: the environment.

Three ways in, from most to least set up:

- ``FORMAE_PLUGIN_CERT``/``FORMAE_PLUGIN_KEY``/``FORMAE_AGENT_CA``: files of a certificate the agent
  issued (it gives them to the plugins it spawns);
- ``FORMAE_JOIN_TOKEN``: a one-time token to trade for a certificate (a plugin on another host);
  the result is kept in ``FORMAE_PLUGIN_STATE_DIR`` so a restart does not need a new token;
- neither: plain gRPC with the cookie alone, for an agent running without TLS.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from formae.environment import (
    SettingError,
    parse_address,
    parse_headers,
    parse_ratio,
    parse_url,
    read_flag,
    read_seconds,
)
from formae.telemetry.tracing import TracingSettings
from formae.wire.join import JoinToken, JoinTokenError
from formae.wire.tls import ClientCredentials

AGENT_NODE = "FORMAE_AGENT_NODE"
PLUGIN_NODE = "FORMAE_PLUGIN_NODE"
NETWORK_COOKIE = "FORMAE_NETWORK_COOKIE"
HEARTBEAT_INTERVAL = "FORMAE_HEARTBEAT_INTERVAL"
RECONNECT = "FORMAE_PLUGIN_RECONNECT"
PARENT_PID = "FORMAE_PARENT_PID"
JOIN_TOKEN = "FORMAE_JOIN_TOKEN"
PLUGIN_CERT = "FORMAE_PLUGIN_CERT"
PLUGIN_KEY = "FORMAE_PLUGIN_KEY"
AGENT_CA = "FORMAE_AGENT_CA"
STATE_DIR = "FORMAE_PLUGIN_STATE_DIR"
TRACING = "FORMAE_TRACING"
TRACING_SAMPLE_RATIO = "FORMAE_TRACING_SAMPLE_RATIO"


class SettingsError(Exception):
    """The environment does not say enough to reach an agent."""


@dataclass(frozen=True, slots=True)
class PluginSettings:
    agent_address: str
    node: str
    cookie: str
    heartbeat_interval: float = 0.5
    reconnect: bool = False
    parent_pid: int | None = None
    join_token: JoinToken | None = None
    credentials: ClientCredentials | None = None
    state_dir: Path | None = None
    tracing: TracingSettings | None = None
    """Where to export this plugin's spans (``FORMAE_TRACING`` on), or None: no tracing."""

    def __repr__(self) -> str:  # the cookie must never reach a log line
        return f"PluginSettings(agent_address={self.agent_address!r}, node={self.node!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str], default_node: str) -> PluginSettings:
        try:
            return cls._read(env, default_node)
        except SettingError as error:
            raise SettingsError(str(error)) from None

    @classmethod
    def _read(cls, env: Mapping[str, str], default_node: str) -> PluginSettings:
        credentials = _credential_files(env)
        token = _join_token(env) if credentials is None else None  # certificate files win: no join
        address = env.get(AGENT_NODE, "").strip() or (token.agent_address if token else "")
        cookie = env.get(NETWORK_COOKIE, "")
        missing = [AGENT_NODE] if not address else []
        if not cookie and token is None:
            missing.append(NETWORK_COOKIE)
        if missing:
            raise SettingsError(f"set {' and '.join(missing)} to reach the formae agent")
        return cls(
            agent_address=_address(address),
            node=env.get(PLUGIN_NODE) or f"{default_node}-{os.getpid()}@{socket.gethostname()}",
            cookie=cookie,
            heartbeat_interval=read_seconds(env, HEARTBEAT_INTERVAL, default=0.5),
            reconnect=_reconnect(env),
            parent_pid=_parent_pid(env),
            join_token=token,
            credentials=credentials,
            state_dir=Path(env[STATE_DIR])
            if env.get(STATE_DIR)
            else Path.home() / ".pel" / "formae-plugin" / default_node,
            tracing=_tracing(env, default_node),
        )


def _tracing(env: Mapping[str, str], name: str) -> TracingSettings | None:
    """OpenTelemetry's own variables, which the agent sets for the plugins it spawns when it traces."""
    if not read_flag(env, TRACING, default=False):
        return None
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    ratio = env.get(TRACING_SAMPLE_RATIO, "")
    return TracingSettings(
        service_name=env.get("OTEL_SERVICE_NAME", "").strip() or f"formae-plugin-{name}",
        endpoint=parse_url("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint) if endpoint.strip() else "",
        headers=parse_headers("OTEL_EXPORTER_OTLP_HEADERS", env.get("OTEL_EXPORTER_OTLP_HEADERS", "")),
        sample_ratio=parse_ratio(TRACING_SAMPLE_RATIO, ratio) if ratio.strip() else 1.0,
    )


def _join_token(env: Mapping[str, str]) -> JoinToken | None:
    raw = env.get(JOIN_TOKEN, "").strip()
    if not raw:
        return None
    try:
        return JoinToken.decode(raw)
    except JoinTokenError as error:
        raise SettingsError(f"{JOIN_TOKEN}: {error}") from None


def _credential_files(env: Mapping[str, str]) -> ClientCredentials | None:
    names = (PLUGIN_CERT, PLUGIN_KEY, AGENT_CA)
    given = [name for name in names if env.get(name)]
    if not given:
        return None
    if len(given) < len(names):
        missing = [name for name in names if name not in given]
        raise SettingsError(f"{', '.join(given)} given without {', '.join(missing)}")
    try:
        return ClientCredentials.from_files(*(Path(env[name]) for name in names))
    except OSError as error:
        raise SettingsError(f"cannot read the plugin's credentials: {error}") from None


def _reconnect(env: Mapping[str, str]) -> bool:
    """Whether to dial again when the agent goes away.

    A plugin the agent spawned exits with it (the agent will spawn a new one); a plugin started
    by hand, as on another host, has nobody to restart it, so by default it waits for the agent
    to come back. FORMAE_PLUGIN_RECONNECT (on/off, as every flag) decides either way.
    """
    return read_flag(env, RECONNECT, default=not env.get(PARENT_PID))


def _address(node: str) -> str:
    """Accept ``host:port`` or formae's ``name@host:port`` node spelling."""
    return parse_address(AGENT_NODE, node.rsplit("@", 1)[-1])


def _is_decimal(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²', which int() refuses."""
    return text.isascii() and text.isdigit()


def _parent_pid(env: Mapping[str, str]) -> int | None:
    raw = env.get(PARENT_PID, "")
    return int(raw) if _is_decimal(raw) else None
