"""Where the agent lives and listens, read once from the environment (and CLI flags) at start."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formae.agent.schedules import parse_interval
from formae.environment import (
    SettingError,
    parse_address,
    parse_flag,
    parse_headers,
    parse_ratio,
    parse_url,
    read_seconds,
)
from formae.home import default_home as default_home  # re-exported: the agent imports it from here

DEFAULT_API_ADDRESS = "127.0.0.1:49684"
DEFAULT_PLUGIN_ADDRESS = "127.0.0.1:49685"


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class AgentConfig:
    home: Path
    api_address: str = DEFAULT_API_ADDRESS
    plugin_address: str = DEFAULT_PLUGIN_ADDRESS
    store_url: str = ""
    cookie: str = field(default="", repr=False)
    heartbeat_interval: float = 0.5
    heartbeat_timeout: float = 2.5
    plugin_restart_max_delay: float = 60.0
    """The cap of the backoff between restarts of a crashing local plugin (it is restarted forever)."""
    command_lease: float = 30.0
    plugin_certificate_validity: float = 90 * 86400.0
    """Seconds a joined plugin's certificate is valid; renewed over its link when a third is left."""
    """Seconds a command's execution lease lasts unless renewed (every third of it) by its agent."""
    plugin_tls: bool = True
    """Mutual TLS with plugins (certificates from the agent's CA) on top of the cookie handshake."""
    advertised_plugin_address: str = ""
    """How plugins on other hosts reach the agent, put in join tokens; the listen address if empty."""
    node: str = field(default_factory=lambda: f"agent@{socket.gethostname()}")
    sync_interval: float = 300.0
    """Seconds between syncs of every managed resource; 0 is off."""
    discovery_interval: float = 0.0
    """Seconds between discoveries of unmanaged resources; 0 (the default) is off."""
    policy_interval: float = 5.0
    """Seconds between checks of the stacks' TTL and auto-reconcile policies; 0 is off."""
    api_tls: bool | None = None
    """TLS on the REST API; None: on exactly when it listens beyond loopback."""
    insecure_api: bool = False
    """Serve plain HTTP beyond loopback (warned about at every start)."""
    api_names: tuple[str, ...] = ()
    """Names the REST API is reached by: accepted Host headers, and names in its TLS certificate."""
    metrics_enabled: bool = True
    """Prometheus ``GET /metrics`` and ``GET /api/v1/stats`` (``formae.telemetry``); off: both 404."""
    tracing_enabled: bool = False
    """OpenTelemetry traces, exported over OTLP/HTTP to ``tracing_endpoint``; off: nothing exported."""
    tracing_endpoint: str = ""
    """The OTLP/HTTP base URL (``/v1/traces`` is appended); empty: ``http://localhost:4318``."""
    tracing_service_name: str = "formae-agent"
    tracing_sample_ratio: float = 1.0
    """The share of commands traced (0 to 1); a plugin follows the agent's decision for each call."""
    tracing_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Sent with every export (an API key): a secret, never shown or logged."""

    @property
    def api_on_loopback(self) -> bool:
        return is_loopback(self.api_address.rpartition(":")[0])

    @property
    def api_uses_tls(self) -> bool:
        if self.api_tls is not None:
            return self.api_tls
        return not self.api_on_loopback and not self.insecure_api

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

    @property
    def secrets_key_file(self) -> Path:
        return self.home / "secrets.key"

    @property
    def audit_file(self) -> Path:
        return self.home / "logs" / "audit.log"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str | None) -> AgentConfig:
        """Flags (``overrides``) win over the environment, which wins over the defaults."""
        env = os.environ if env is None else env
        try:
            return cls._read(env, overrides)
        except SettingError as error:
            raise ConfigError(str(error)) from None

    @classmethod
    def _read(cls, env: Mapping[str, str], overrides: Mapping[str, str | None]) -> AgentConfig:
        def setting(key: str, variable: str) -> tuple[str, str] | None:
            """The winning raw value and the name to blame for it."""
            if overrides.get(key):
                return f"--{key.replace('_', '-')}", str(overrides[key])
            if env.get(variable, "").strip():
                return variable, env[variable]
            return None

        home = Path(overrides.get("home") or default_home(env))
        api = setting("api_address", "FORMAE_API_ADDRESS")
        plugin = setting("plugin_address", "FORMAE_PLUGIN_ADDRESS")
        tls = setting("plugin_tls", "FORMAE_PLUGIN_TLS")
        advertised = setting("advertised_plugin_address", "FORMAE_PLUGIN_ADVERTISE")
        sync = setting("sync_interval", "FORMAE_SYNC_INTERVAL")
        discovery = setting("discovery_interval", "FORMAE_DISCOVERY_INTERVAL")
        policies = setting("policy_interval", "FORMAE_POLICY_INTERVAL")
        config = cls(
            home=home,
            api_address=parse_address(*api, listen=True) if api else DEFAULT_API_ADDRESS,
            plugin_address=parse_address(*plugin, listen=True) if plugin else DEFAULT_PLUGIN_ADDRESS,
            store_url=overrides.get("store_url")
            or env.get("FORMAE_STORE_URL")
            or f"sqlite:///{home / 'data' / 'formae.db'}",
            cookie=env.get("FORMAE_NETWORK_COOKIE") or load_or_create_cookie(home),
            heartbeat_interval=read_seconds(env, "FORMAE_HEARTBEAT_INTERVAL", default=0.5),
            heartbeat_timeout=read_seconds(env, "FORMAE_HEARTBEAT_TIMEOUT", default=2.5),
            plugin_restart_max_delay=read_seconds(env, "FORMAE_PLUGIN_RESTART_MAX_DELAY", default=60.0),
            command_lease=read_seconds(env, "FORMAE_COMMAND_LEASE", default=30.0),
            plugin_certificate_validity=read_seconds(
                env, "FORMAE_PLUGIN_CERT_VALIDITY", default=90 * 86400.0
            ),
            plugin_tls=parse_flag(*tls) if tls else True,
            advertised_plugin_address=parse_address(*advertised) if advertised else "",
            sync_interval=parse_interval(*sync) if sync else 300.0,
            discovery_interval=parse_interval(*discovery) if discovery else 0.0,
            policy_interval=parse_interval(*policies) if policies else 5.0,
            **_api_security(setting),
            **_telemetry(setting, env),
        )
        config.check()
        return config

    def check(self) -> None:
        """Refuse a combination that would expose the API in clear to the network by accident."""
        if not self.api_on_loopback and not self.api_uses_tls and not self.insecure_api:
            raise ConfigError(
                f"the REST API would listen on {self.api_address}, beyond loopback, without TLS; "
                "drop --no-api-tls, or pass --insecure-api to accept that tokens cross the network in clear"
            )


def _api_security(setting: Callable[[str, str], tuple[str, str] | None]) -> dict[str, Any]:
    tls = setting("api_tls", "FORMAE_API_TLS")
    insecure = setting("insecure_api", "FORMAE_INSECURE_API")
    names = setting("api_names", "FORMAE_API_NAMES")
    return {
        "api_tls": parse_flag(*tls) if tls else None,
        "insecure_api": parse_flag(*insecure) if insecure else False,
        "api_names": tuple(n.strip() for n in names[1].split(",") if n.strip()) if names else (),
    }


_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"


def _telemetry(
    setting: Callable[[str, str], tuple[str, str] | None], env: Mapping[str, str]
) -> dict[str, Any]:
    """Metrics and tracing; the tracing variables are OpenTelemetry's own where it has one."""
    metrics = setting("metrics_enabled", "FORMAE_METRICS")
    tracing = setting("tracing_enabled", "FORMAE_TRACING")
    endpoint = setting("tracing_endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT")
    ratio = setting("tracing_sample_ratio", "FORMAE_TRACING_SAMPLE_RATIO")
    return {
        "metrics_enabled": parse_flag(*metrics) if metrics else True,
        "tracing_enabled": parse_flag(*tracing) if tracing else False,
        "tracing_endpoint": parse_url(*endpoint) if endpoint else "",
        "tracing_service_name": env.get("OTEL_SERVICE_NAME", "").strip() or "formae-agent",
        "tracing_sample_ratio": parse_ratio(*ratio) if ratio else 1.0,
        "tracing_headers": parse_headers(
            "OTEL_EXPORTER_OTLP_HEADERS", env.get("OTEL_EXPORTER_OTLP_HEADERS", "")
        ),
    }


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
