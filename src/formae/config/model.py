"""The configuration file's shape: every section and field, validated by pydantic, unknown ones refused.

A field left out is ``None`` (or an empty mapping): "not said in the file", so that the layering
(``layers.py``) can tell a value the operator wrote from a default and show where each came from.
Every field has the same meaning as the flag or environment variable of the same setting; the
validators call the readers of :mod:`formae.environment`, so ``api.address`` is refused in the file
for the same reason ``--api-address`` would be on the command line.

The same shape is written in Pkl in ``formae/schema/pkl/config.pkl``; a ``formae.pkl`` amends it
and is type-checked by ``pkl eval`` before this model sees it. ``test_config_pkl_module`` keeps the
two in step.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from formae.environment import parse_address, parse_url

__all__ = [
    "ApiSection",
    "ClusterSection",
    "CodeRetry",
    "ConfigFileModel",
    "DatastoreSection",
    "IntervalSection",
    "LogFileSection",
    "LoggingSection",
    "MetricsSection",
    "PluginEndpointSection",
    "PluginSection",
    "RestartSection",
    "RetrySection",
    "TracingSection",
    "parse_duration",
]

_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|min|m|h|d)?\s*$")


def parse_duration(raw: object) -> float:
    """Seconds from a number, or a string such as ``"30s"``, ``"5min"``, ``"500ms"``, ``"2h"``.

    Pkl durations (``5.min``) arrive here as seconds already: the module renders them so.
    """
    if isinstance(raw, bool):
        raise ValueError("is a number of seconds or a duration such as 30s, 5min, 2h, not a boolean")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str) and (match := _DURATION.match(raw)):
        value = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError("is a number of seconds or a duration such as 30s, 5min, 2h")
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be a finite number of seconds, 0 or more")
    return value


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("must be more than 0 seconds")
    return value


def _address(value: str) -> str:
    return parse_address("address", value, listen=True)


def _dial_address(value: str) -> str:
    return parse_address("address", value)


def _url(value: str) -> str:
    return parse_url("url", value)


Seconds = Annotated[float, BeforeValidator(parse_duration)]
"""0 or more seconds: an interval where 0 is off."""
PositiveSeconds = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_positive)]
ListenAddress = Annotated[str, AfterValidator(_address)]
DialAddress = Annotated[str, AfterValidator(_dial_address)]
Url = Annotated[str, AfterValidator(_url)]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]
ErrorCodeName = Literal[  # the wire's codes (formae's spelling) and the agent's own for a lost plugin
    "NotFound",
    "AlreadyExists",
    "Throttling",
    "NotStabilized",
    "InvalidRequest",
    "AccessDenied",
    "ServiceInternalError",
    "NetworkFailure",
    "ServiceLimitExceeded",
    "ResourceConflict",
    "InvalidCredentials",
    "GeneralServiceException",
    "UnsupportedType",
    "PluginError",
    "PluginUnavailable",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, str_strip_whitespace=True)


class ApiSection(_Section):
    """The REST API: where it listens, TLS, and the names clients reach it by."""

    address: ListenAddress | None = None
    tls: bool | None = None
    insecure: bool | None = None
    names: tuple[str, ...] | None = None


class PluginEndpointSection(_Section):
    """Where plugins connect, how they are told to reach it, and how their liveness is judged."""

    address: ListenAddress | None = None
    advertise: DialAddress | None = None
    tls: bool | None = None
    heartbeat_interval: PositiveSeconds | None = None
    heartbeat_timeout: PositiveSeconds | None = None
    certificate_validity: PositiveSeconds | None = None
    """How long a joined plugin's certificate is valid; renewed over its link when a third is left."""


class DatastoreSection(_Section):
    url: str | None = Field(default=None, pattern=r"^(sqlite|postgres(ql)?)://")


class IntervalSection(_Section):
    interval: Seconds | None = None
    """Seconds between runs; 0 is off."""


class CodeRetry(_Section):
    """How one error code is treated: retried or not, and how many attempts it may take."""

    retry: bool | None = None
    max_attempts: Annotated[int, Field(ge=1)] | None = None


class RetrySection(_Section):
    max_attempts: Annotated[int, Field(ge=1)] | None = None
    initial_delay: PositiveSeconds | None = None
    max_delay: PositiveSeconds | None = None
    codes: dict[ErrorCodeName, CodeRetry] = Field(default_factory=dict)


class LogFileSection(_Section):
    """Rotation of the background agent's ``logs/agent.log``."""

    max_bytes: Annotated[int, Field(ge=4096)] | None = None
    backups: Annotated[int, Field(ge=0, le=100)] | None = None


class LoggingSection(_Section):
    level: LogLevel | None = None
    format: Literal["text", "json"] | None = None
    file: LogFileSection = Field(default_factory=LogFileSection)


class MetricsSection(_Section):
    """Prometheus ``/metrics`` (issue 13 item 2); the fields are the settings of ``formae.metrics``."""

    enabled: bool | None = None


class TracingSection(_Section):
    """OpenTelemetry traces (issue 13 item 4): off, or exported over OTLP to ``endpoint``."""

    enabled: bool | None = None
    endpoint: Url | None = None
    """The OTLP/HTTP base URL (``/v1/traces`` is appended)."""
    headers: dict[str, str] | None = None
    """Sent with every export (an API key, say): masked wherever the configuration is shown."""
    service_name: str | None = None
    sample_ratio: Annotated[float, Field(ge=0, le=1)] | None = None


class ClusterSection(_Section):
    """This agent among others sharing one PostgreSQL (issue 16): its identity and its leases."""

    node: str | None = Field(default=None, min_length=1)
    command_lease: PositiveSeconds | None = None
    """Seconds a lease (a command's, the leader's, the agent's row) lasts unless renewed."""
    lease_renew_interval: PositiveSeconds | None = None
    """Seconds between renewals of every lease and looks for commands to take over; at most half the lease."""


class RestartSection(_Section):
    initial_delay: PositiveSeconds | None = None
    max_delay: PositiveSeconds | None = None
    stable_after: PositiveSeconds | None = None


class PluginSection(_Section):
    """One plugin, by its installed name (``fake-aws``) or its namespace (``FakeAWS``).

    ``env``, ``set`` and ``files`` are a grant (``{home}/grants/NAME.json`` has the same three) and
    apply by name, at each spawn; ``rate_limit`` and ``max_in_flight`` apply to the namespace.
    """

    env: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    set: dict[str, str] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)
    rate_limit: Annotated[float, Field(ge=0)] | None = None
    """Operations per second, replacing what the plugin announced; 0 is unlimited."""
    max_in_flight: Annotated[int, Field(ge=1)] | None = None
    restart: RestartSection = Field(default_factory=RestartSection)


class ConfigFileModel(_Section):
    api: ApiSection = Field(default_factory=ApiSection)
    plugin_endpoint: PluginEndpointSection = Field(default_factory=PluginEndpointSection)
    datastore: DatastoreSection = Field(default_factory=DatastoreSection)
    sync: IntervalSection = Field(default_factory=IntervalSection)
    discovery: IntervalSection = Field(default_factory=IntervalSection)
    policies: IntervalSection = Field(default_factory=IntervalSection)
    retry: RetrySection = Field(default_factory=RetrySection)
    logging: LoggingSection = Field(default_factory=LoggingSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    tracing: TracingSection = Field(default_factory=TracingSection)
    cluster: ClusterSection = Field(default_factory=ClusterSection)
    plugin_restart: RestartSection = Field(default_factory=RestartSection)
    """How every local plugin is restarted after a crash, unless its own ``plugins`` entry says otherwise."""
    plugins: dict[Annotated[str, Field(min_length=1)], PluginSection] = Field(default_factory=dict)
