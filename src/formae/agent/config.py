"""Where the agent lives and listens, read once from the environment (and CLI flags) at start."""

from __future__ import annotations

import math
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_API_ADDRESS = "127.0.0.1:49684"
DEFAULT_PLUGIN_ADDRESS = "127.0.0.1:49685"


class ConfigError(Exception):
    pass


def default_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("FORMAE_HOME") or Path.home() / ".pel" / "formae")


@dataclass(frozen=True)
class AgentConfig:
    home: Path
    api_address: str = DEFAULT_API_ADDRESS
    plugin_address: str = DEFAULT_PLUGIN_ADDRESS
    store_url: str = ""
    cookie: str = field(default="", repr=False)
    heartbeat_interval: float = 0.5
    heartbeat_timeout: float = 2.5
    plugin_tls: bool = True
    """Mutual TLS with plugins (certificates from the agent's CA) on top of the cookie handshake."""
    advertised_plugin_address: str = ""
    """How plugins on other hosts reach the agent, put in join tokens; the listen address if empty."""
    node: str = field(default_factory=lambda: f"agent@{socket.gethostname()}")

    @property
    def plugins_dir(self) -> Path:
        return self.home / "plugins"

    @property
    def pki_dir(self) -> Path:
        return self.home / "pki"

    @property
    def runtime_file(self) -> Path:
        return self.home / "run" / "agent.json"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "agent.log"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str | None) -> AgentConfig:
        env = os.environ if env is None else env
        home = Path(overrides.get("home") or default_home(env))
        return cls(
            home=home,
            api_address=_address(
                overrides.get("api_address") or env.get("FORMAE_API_ADDRESS") or DEFAULT_API_ADDRESS
            ),
            plugin_address=_address(
                overrides.get("plugin_address") or env.get("FORMAE_PLUGIN_ADDRESS") or DEFAULT_PLUGIN_ADDRESS
            ),
            store_url=overrides.get("store_url")
            or env.get("FORMAE_STORE_URL")
            or f"sqlite:///{home / 'data' / 'formae.db'}",
            cookie=env.get("FORMAE_NETWORK_COOKIE") or load_or_create_cookie(home),
            heartbeat_interval=_seconds(env, "FORMAE_HEARTBEAT_INTERVAL", 0.5),
            heartbeat_timeout=_seconds(env, "FORMAE_HEARTBEAT_TIMEOUT", 2.5),
            plugin_tls=_flag(overrides.get("plugin_tls") or env.get("FORMAE_PLUGIN_TLS"), default=True),
            advertised_plugin_address=overrides.get("advertised_plugin_address")
            or env.get("FORMAE_PLUGIN_ADVERTISE", ""),
        )


def load_or_create_cookie(home: Path) -> str:
    """The agent's network cookie, kept in ``{home}/network.cookie`` (mode 0600) like Erlang's."""
    path = home / "network.cookie"
    if path.exists():
        cookie = path.read_text(encoding="utf-8").strip()
        if not cookie:  # an empty secret would let anyone in
            raise ConfigError(f"the network cookie file {path} is empty; delete it to have a new one made")
        return cookie
    path.parent.mkdir(parents=True, exist_ok=True)
    cookie = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(cookie + "\n")
    return cookie


def _flag(value: str | None, *, default: bool) -> bool:
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{value!r} is not on or off")


def _address(value: str) -> str:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"address {value!r} is not host:port")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds")
    return value
