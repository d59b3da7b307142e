"""Which value of each setting wins, and where it came from: flags > environment > file > defaults.

Every scalar setting of the agent is one row of :data:`SETTINGS`: its place in the file, its flag,
its environment variable, its default, how a flag's or a variable's text is read, and whether it
can change while the agent runs. :func:`resolve` walks the table once; the answer keeps the origin
of each value (``flag --sync-interval``, ``env FORMAE_SYNC_INTERVAL``, ``file /etc/formae.pkl:12``,
``default``), which is what ``formae agent config show`` prints and what a reload compares.

The structured parts of the file (retry per error code, per-plugin sections) have no flag or
variable; they come from the file or not at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from formae.config.reading import ConfigFile
from formae.environment import (
    SettingError,
    parse_address,
    parse_flag,
    parse_headers,
    parse_ratio,
    parse_url,
)

__all__ = ["BY_ATTRIBUTE", "BY_KEY", "SETTINGS", "Resolved", "Setting", "Value", "home_defaults", "resolve"]

DEFAULT = "default"


@dataclass(frozen=True)
class Value:
    value: Any
    origin: str
    """``flag --NAME``, ``env NAME``, ``file PATH[:LINE]`` or ``default``."""


@dataclass(frozen=True)
class Setting:
    key: str
    """Its dotted place in the file, e.g. ``sync.interval``: also its name everywhere else."""
    attribute: str
    """The field of ``AgentConfig`` it fills."""
    default: Any
    parse: Callable[[str, str], Any]
    """Reads a flag's or a variable's text: ``parse(name_to_blame, raw)``."""
    env: str | None = None
    flag: str | None = None
    live: bool = False
    """Applied by a reload (SIGHUP, ``formae agent reload``); anything else needs a restart."""
    secret: bool = False

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.key.split("."))


@dataclass(frozen=True)
class Resolved:
    """Every setting's winning value with its origin, and the file they were resolved against."""

    values: Mapping[str, Value]
    file: ConfigFile

    def __getitem__(self, key: str) -> Any:
        return self.values[key].value

    def origin(self, key: str) -> str:
        return self.values[key].origin


def resolve(
    flags: Mapping[str, str | None],
    env: Mapping[str, str],
    file: ConfigFile,
    defaults: Mapping[str, Any] | None = None,
) -> Resolved:
    """Each setting of :data:`SETTINGS` from the first layer that has it.

    ``flags`` are keyed by setting key (``api.address``) with the flag's text; ``defaults`` replace
    the table's where they depend on the home (the datastore's path). A value that means nothing
    raises :class:`SettingError` naming the flag or variable.
    """
    values = {}
    for setting in SETTINGS:
        values[setting.key] = _one(setting, flags, env, file, defaults or {})
    return Resolved(values, file)


def _one(
    setting: Setting,
    flags: Mapping[str, str | None],
    env: Mapping[str, str],
    file: ConfigFile,
    defaults: Mapping[str, Any],
) -> Value:
    raw = flags.get(setting.key)
    if raw is not None and setting.flag:
        return Value(setting.parse(setting.flag, raw), f"flag {setting.flag}")
    if setting.env and env.get(setting.env, "").strip():
        return Value(setting.parse(setting.env, env[setting.env]), f"env {setting.env}")
    if file.says(setting.path):
        return Value(_from_model(file, setting.path), f"file {file.where(setting.path)}")
    return Value(defaults.get(setting.key, setting.default), DEFAULT)


def _from_model(file: ConfigFile, path: tuple[str, ...]) -> Any:
    value: Any = file.model
    for part in path:
        value = getattr(value, part)
    return value


# ---------------------------------------------------------------- readers of flag and variable text


def _listen(name: str, raw: str) -> str:
    return parse_address(name, raw, listen=True)


def _interval(name: str, raw: str) -> float:
    """Seconds between runs: a finite number ≥ 0, where 0 means off."""
    value = _number(name, raw)
    if value < 0:
        raise SettingError(name, raw, "must be 0 (off) or a positive number of seconds")
    return value


def _seconds(name: str, raw: str) -> float:
    value = _number(name, raw)
    if value <= 0:
        raise SettingError(name, raw, "must be positive and finite (seconds)")
    return value


def _number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(name, raw, "is not a number of seconds") from None
    if not math.isfinite(value):
        raise SettingError(name, raw, "must be finite")
    return value


def _count(low: int) -> Callable[[str, str], int]:
    def read(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingError(name, raw, "is not a whole number") from None
        if value < low:
            raise SettingError(name, raw, f"must be {low} or more")
        return value

    return read


def _choice(*words: str) -> Callable[[str, str], str]:
    def read(name: str, raw: str) -> str:
        word = raw.strip().lower()
        if word not in words:
            raise SettingError(name, raw, f"is not one of {', '.join(words)}")
        return word

    return read


def _names(_: str, raw: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in raw.split(",") if n.strip())


def _text(_: str, raw: str) -> str:
    return raw.strip()


def _optional_flag(name: str, raw: str) -> bool | None:
    return parse_flag(name, raw)


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

SETTINGS: tuple[Setting, ...] = (
    Setting("api.address", "api_address", "127.0.0.1:49684", _listen, "FORMAE_API_ADDRESS", "--api-address"),
    Setting("api.tls", "api_tls", None, _optional_flag, "FORMAE_API_TLS", "--api-tls"),
    Setting("api.insecure", "insecure_api", False, parse_flag, "FORMAE_INSECURE_API", "--insecure-api"),
    Setting("api.names", "api_names", (), _names, "FORMAE_API_NAMES", "--api-name"),
    Setting(
        "plugin_endpoint.address",
        "plugin_address",
        "127.0.0.1:49685",
        _listen,
        "FORMAE_PLUGIN_ADDRESS",
        "--plugin-address",
    ),
    Setting(
        "plugin_endpoint.advertise",
        "advertised_plugin_address",
        "",
        parse_address,
        "FORMAE_PLUGIN_ADVERTISE",
        "--advertise",
    ),
    Setting("plugin_endpoint.tls", "plugin_tls", True, parse_flag, "FORMAE_PLUGIN_TLS", "--plugin-tls"),
    Setting(
        "plugin_endpoint.heartbeat_interval",
        "heartbeat_interval",
        0.5,
        _seconds,
        "FORMAE_HEARTBEAT_INTERVAL",
    ),
    Setting(
        "plugin_endpoint.heartbeat_timeout", "heartbeat_timeout", 2.5, _seconds, "FORMAE_HEARTBEAT_TIMEOUT"
    ),
    Setting(
        "plugin_endpoint.certificate_validity",
        "plugin_certificate_validity",
        90 * 86400.0,
        _seconds,
        "FORMAE_PLUGIN_CERT_VALIDITY",
    ),
    Setting("datastore.url", "store_url", "", _text, "FORMAE_STORE_URL", "--store-url", secret=True),
    Setting(
        "sync.interval",
        "sync_interval",
        300.0,
        _interval,
        "FORMAE_SYNC_INTERVAL",
        "--sync-interval",
        live=True,
    ),
    Setting(
        "discovery.interval",
        "discovery_interval",
        0.0,
        _interval,
        "FORMAE_DISCOVERY_INTERVAL",
        "--discovery-interval",
        live=True,
    ),
    Setting(
        "policies.interval",
        "policy_interval",
        5.0,
        _interval,
        "FORMAE_POLICY_INTERVAL",
        "--policy-interval",
        live=True,
    ),
    Setting("retry.max_attempts", "retry_max_attempts", 8, _count(1), "FORMAE_RETRY_MAX_ATTEMPTS", live=True),
    Setting(
        "retry.initial_delay", "retry_initial_delay", 0.05, _seconds, "FORMAE_RETRY_INITIAL_DELAY", live=True
    ),
    Setting("retry.max_delay", "retry_max_delay", 5.0, _seconds, "FORMAE_RETRY_MAX_DELAY", live=True),
    Setting(
        "logging.level",
        "log_level",
        "info",
        _choice(*LOG_LEVELS),
        "FORMAE_LOG_LEVEL",
        "--log-level",
        live=True,
    ),
    Setting(
        "logging.format", "log_format", "text", _choice("text", "json"), "FORMAE_LOG_FORMAT", "--log-format"
    ),
    Setting("logging.file.max_bytes", "log_max_bytes", 10 * 2**20, _count(4096), "FORMAE_LOG_MAX_BYTES"),
    Setting("logging.file.backups", "log_backups", 5, _count(0), "FORMAE_LOG_BACKUPS"),
    Setting("metrics.enabled", "metrics_enabled", True, parse_flag, "FORMAE_METRICS", "--metrics"),
    Setting("tracing.enabled", "tracing_enabled", False, parse_flag, "FORMAE_TRACING", "--tracing"),
    Setting(
        "tracing.endpoint",
        "tracing_endpoint",
        "",
        parse_url,
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "--tracing-endpoint",
    ),
    Setting(
        "tracing.headers",
        "tracing_headers",
        {},
        parse_headers,
        "OTEL_EXPORTER_OTLP_HEADERS",
        secret=True,
    ),
    Setting("tracing.service_name", "tracing_service_name", "formae-agent", _text, "OTEL_SERVICE_NAME"),
    Setting("tracing.sample_ratio", "tracing_sample_ratio", 1.0, parse_ratio, "FORMAE_TRACING_SAMPLE_RATIO"),
    Setting("cluster.node", "node", "", _text, "FORMAE_NODE_NAME"),
    Setting("cluster.command_lease", "command_lease", 6.0, _seconds, "FORMAE_COMMAND_LEASE"),
    Setting(
        "cluster.lease_renew_interval", "lease_renew_interval", 2.0, _seconds, "FORMAE_LEASE_RENEW_INTERVAL"
    ),
    Setting(
        "plugin_restart.initial_delay",
        "plugin_restart_initial_delay",
        0.1,
        _seconds,
        "FORMAE_PLUGIN_RESTART_INITIAL_DELAY",
        live=True,
    ),
    Setting(
        "plugin_restart.max_delay",
        "plugin_restart_max_delay",
        60.0,
        _seconds,
        "FORMAE_PLUGIN_RESTART_MAX_DELAY",
        live=True,
    ),
    Setting(
        "plugin_restart.stable_after",
        "plugin_restart_stable_after",
        30.0,
        _seconds,
        "FORMAE_PLUGIN_RESTART_STABLE_AFTER",
        live=True,
    ),
)
"""Every scalar setting. ``docs/operations.md`` lists them; ``test_config_layers`` keeps it in step."""

BY_KEY = {setting.key: setting for setting in SETTINGS}


def home_defaults(home: Path) -> dict[str, Any]:
    """The defaults that depend on the home."""
    return {"datastore.url": f"sqlite:///{home / 'data' / 'formae.db'}"}


BY_ATTRIBUTE = {setting.attribute: setting.key for setting in SETTINGS}
"""``AgentConfig`` attribute → setting key: how the CLI's flags are handed in."""
