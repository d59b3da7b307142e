"""The agent's settings as one typed value, resolved at start from flags, environment, file and defaults.

Which layer wins and where each value came from is :mod:`formae.config`'s business; this is the
agent's view of the answer, with the paths derived from its home.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from formae.config import (
    BY_ATTRIBUTE,
    SETTINGS,
    ConfigFileError,
    ConfigFileModel,
    Resolved,
    home_defaults,
    locate,
    read_config,
    resolve,
)
from formae.environment import SettingError
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
    command_lease: float = 6.0
    """Seconds a lease lasts unless renewed — a command's, the leader's, the agent's row: an agent
    that dies has its commands taken over by another within about this long (issue 16)."""
    lease_renew_interval: float = 2.0
    """Seconds between renewals of every lease this agent holds, and looks for commands to take over."""
    plugin_certificate_validity: float = 90 * 86400.0
    """Seconds a joined plugin's certificate is valid; renewed over its link when a third is left."""
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
    retry_max_attempts: int = 8
    retry_initial_delay: float = 0.05
    retry_max_delay: float = 5.0
    log_level: str = "info"
    log_format: str = "text"
    """``text`` (``key=value`` lines) or ``json`` (one object per line)."""
    log_max_bytes: int = 10 * 2**20
    """The background agent's ``logs/agent.log`` is rotated beyond this size."""
    log_backups: int = 5
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
    plugin_restart_initial_delay: float = 0.1
    plugin_restart_stable_after: float = 30.0
    settings: Resolved | None = field(default=None, repr=False, compare=False)
    """Every setting with where its value came from, and the file's structured sections."""

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
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, config: str | None = None, **overrides: str | None
    ) -> AgentConfig:
        """Flags (``overrides``, by attribute) win over the environment, the file, then the defaults.

        ``config`` is ``--config FILE``; without it ``$FORMAE_CONFIG`` or ``{home}/formae.pkl`` (see
        :mod:`formae.config`). The home itself comes from ``--home`` or ``FORMAE_HOME`` only.
        """
        home = overrides.pop("home", None)
        return cls.load(os.environ if env is None else env, home, config, overrides)

    @classmethod
    def load(
        cls,
        env: Mapping[str, str],
        home: str | None,
        config: str | None,
        flags: Mapping[str, str | None],
        *,
        make_cookie: bool = True,
    ) -> AgentConfig:
        """``from_env`` with the flags (by attribute) as a mapping: what ``agent start`` hands in.

        Without ``make_cookie`` nothing is written to the home (``agent config show``).
        """
        where = Path(home or default_home(env))
        try:
            file = read_config(locate(where, config, env))
            given = {BY_ATTRIBUTE[name]: raw for name, raw in flags.items() if raw is not None}
            return cls.of(where, resolve(given, env, file, home_defaults(where)), env, make_cookie)
        except (SettingError, ConfigFileError) as error:
            raise ConfigError(str(error)) from None

    @classmethod
    def of(
        cls, home: Path, settings: Resolved, env: Mapping[str, str], make_cookie: bool = True
    ) -> AgentConfig:
        values = {setting.attribute: settings[setting.key] for setting in SETTINGS}
        node = values.pop("node") or f"agent@{socket.gethostname()}"
        cookie = env.get("FORMAE_NETWORK_COOKIE") or (load_or_create_cookie(home) if make_cookie else "")
        config = cls(
            home=home,
            cookie=cookie,
            node=node,
            settings=settings,
            **values,
        )
        config.check()
        return config

    @property
    def file(self) -> ConfigFileModel:
        """The configuration file's sections (empty ones when there is no file)."""
        return self.settings.file.model if self.settings else ConfigFileModel()

    def check(self) -> None:
        """Refuse a combination that would expose the API in clear to the network by accident,
        or leases that lapse between two renewals."""
        if self.lease_renew_interval * 2 > self.command_lease:
            raise ConfigError(
                f"FORMAE_LEASE_RENEW_INTERVAL={self.lease_renew_interval:g} must be at most half of "
                f"FORMAE_COMMAND_LEASE={self.command_lease:g}: a lease must survive a missed renewal"
            )
        if not self.api_on_loopback and not self.api_uses_tls and not self.insecure_api:
            raise ConfigError(
                f"the REST API would listen on {self.api_address}, beyond loopback, without TLS; "
                "drop --no-api-tls, or pass --insecure-api to accept that tokens cross the network in clear"
            )


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
