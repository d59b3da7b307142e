"""Where and as whom the plugin calls AWS: a target's config turned into boto3 clients.

A target's ``config`` may say ``region``, ``endpoint_url``, ``profile`` and ``role_arn`` (with
``external_id`` and ``role_session_name``); anything it does not say comes from boto3's standard
chain (environment, shared config and credentials files, container and instance metadata). Clients
are built once per (target config, service) and shared by the worker threads, as boto3 allows for
clients but not for sessions; credentials from an assumed role are renewed before they expire.

Nothing here logs or keeps credentials beyond the boto3 objects that need them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

RENEW_BEFORE = 300.0
"""Seconds before an assumed role's credentials expire at which new ones are fetched."""

_SETTINGS = ("region", "endpoint_url", "profile", "role_arn", "external_id", "role_session_name")


class ConfigError(ValueError):
    """The target's config cannot describe an AWS account and region."""


@dataclass(frozen=True, slots=True)
class TargetSettings:
    """The parts of a target's config the plugin understands."""

    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    role_session_name: str = "formae"
    max_attempts: int = 1
    """botocore's own attempts per call; 1 leaves every retry to the agent, which honours retry-after."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TargetSettings:
        values: dict[str, Any] = {}
        for name in _SETTINGS:
            value = config.get(name)
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                raise ConfigError(f"target config {name} must be a string, not {type(value).__name__}")
            values[name] = value
        attempts = config.get("max_attempts", 1)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            raise ConfigError(f"target config max_attempts must be a positive integer, not {attempts!r}")
        return cls(**values, max_attempts=attempts)

    @property
    def key(self) -> str:
        return json.dumps([getattr(self, name) for name in (*_SETTINGS, "max_attempts")])


SessionFactory = Callable[..., Any]


class Clients:
    """boto3 clients per target and service, safe to use from many threads."""

    def __init__(
        self,
        session_factory: SessionFactory = boto3.session.Session,
        clock: Callable[[], float] = time.time,
        pool_size: int = 16,
    ) -> None:
        self._new_session = session_factory
        self._pool_size = pool_size  # one connection per worker thread: none discarded
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[Any, float]] = {}
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, settings: TargetSettings, service: str) -> Any:
        with self._lock:
            session = self._session(settings)
            key = (settings.key, service)
            client = self._clients.get(key)
            if client is None:
                client = session.client(
                    service,
                    endpoint_url=settings.endpoint_url,
                    config=Config(
                        retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
                        connect_timeout=10,
                        max_pool_connections=self._pool_size,
                        read_timeout=60,
                    ),
                )
                self._clients[key] = client
            return client

    def _session(self, settings: TargetSettings) -> Any:
        """The target's session; a new one, and new clients, when assumed-role credentials near expiry."""
        cached = self._sessions.get(settings.key)
        if cached is not None and cached[1] - self._clock() > RENEW_BEFORE:
            return cached[0]
        base = self._new_session(profile_name=settings.profile, region_name=settings.region)
        if settings.role_arn is None:
            session, expires = base, float("inf")
        else:
            session, expires = self._assume(base, settings)
        self._sessions[settings.key] = (session, expires)
        for key in [key for key in self._clients if key[0] == settings.key]:
            del self._clients[key]
        return session

    def _assume(self, base: Any, settings: TargetSettings) -> tuple[Any, float]:
        sts = base.client("sts", endpoint_url=settings.endpoint_url)
        arguments: dict[str, Any] = {
            "RoleArn": settings.role_arn,
            "RoleSessionName": settings.role_session_name,
        }
        if settings.external_id:
            arguments["ExternalId"] = settings.external_id
        credentials = sts.assume_role(**arguments)["Credentials"]
        session = self._new_session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=base.region_name,
        )
        return session, credentials["Expiration"].timestamp()
