"""How a plugin process learns where its agent is: the environment, checked once at start."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

AGENT_NODE = "FORMAE_AGENT_NODE"
PLUGIN_NODE = "FORMAE_PLUGIN_NODE"
NETWORK_COOKIE = "FORMAE_NETWORK_COOKIE"
HEARTBEAT_INTERVAL = "FORMAE_HEARTBEAT_INTERVAL"
RECONNECT = "FORMAE_PLUGIN_RECONNECT"
PARENT_PID = "FORMAE_PARENT_PID"


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

    def __repr__(self) -> str:  # the cookie must never reach a log line
        return f"PluginSettings(agent_address={self.agent_address!r}, node={self.node!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str], default_node: str) -> PluginSettings:
        address = env.get(AGENT_NODE, "").strip()
        cookie = env.get(NETWORK_COOKIE, "")
        missing = [name for name, value in ((AGENT_NODE, address), (NETWORK_COOKIE, cookie)) if not value]
        if missing:
            raise SettingsError(f"set {' and '.join(missing)} to reach the formae agent")
        return cls(
            agent_address=_address(address),
            node=env.get(PLUGIN_NODE) or f"{default_node}-{os.getpid()}@{socket.gethostname()}",
            cookie=cookie,
            heartbeat_interval=_positive_float(env, HEARTBEAT_INTERVAL, 0.5),
            reconnect=_reconnect(env),
            parent_pid=int(env[PARENT_PID]) if env.get(PARENT_PID, "").isdigit() else None,
        )


def _reconnect(env: Mapping[str, str]) -> bool:
    """Whether to dial again when the agent goes away.

    A plugin the agent spawned exits with it (the agent will spawn a new one); a plugin started
    by hand, as on another host, has nobody to restart it, so by default it waits for the agent
    to come back. FORMAE_PLUGIN_RECONNECT=1/0 decides either way.
    """
    explicit = env.get(RECONNECT, "").strip().lower()
    if explicit:
        return explicit in {"1", "true", "yes"}
    return not env.get(PARENT_PID)


def _address(node: str) -> str:
    """Accept ``host:port`` or formae's ``name@host:port`` node spelling."""
    address = node.rsplit("@", 1)[-1]
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise SettingsError(f"{AGENT_NODE}={node!r} is not host:port")
    return address


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {raw}")
    return value


def current_env() -> Mapping[str, str]:
    return os.environ
