"""The agent process: every actor wired together and supervised under one TaskGroup.

Start order matters: the datastore first (commands must be resumable before anything runs), the
plugin hub next (so spawned plugins have somewhere to announce), then the children, the command
runner and the REST API. Stop runs the other way round and leaves no child process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import quote

import uvicorn
from prometheus_client import CollectorRegistry

from formae import __version__
from formae.agent.audit import AuditLog
from formae.agent.commands import CommandRunner
from formae.agent.config import AgentConfig
from formae.agent.conflicts import Claims
from formae.agent.discovery import Discovery
from formae.agent.file_modes import secure_home
from formae.agent.hub import PluginHub
from formae.agent.joining import JoinService
from formae.agent.leadership import LeaderLease
from formae.agent.leases import AgentIdentity, CommandLeases, HomeLock
from formae.agent.live_config import LiveConfig, LiveTargets, restart_policy, retry_policy
from formae.agent.membership import Membership
from formae.agent.pki import CertificateAuthority, LocalPluginCredentials
from formae.agent.plugin_env import GrantFiles
from formae.agent.plugin_manager import discover_plugins
from formae.agent.plugin_overview import PluginOverview
from formae.agent.plugin_secrets import SecretGate
from formae.agent.plugin_sections import PluginSections
from formae.agent.plugin_watch import PluginWatcher
from formae.agent.policies import StackPolicies
from formae.agent.process_manager import PluginEnvironment, PluginProcessManager
from formae.agent.rate_limiter import InFlightLimits, RateLimiter
from formae.agent.registry import Location, PluginRegistry
from formae.agent.renewal import CertificateRenewer
from formae.agent.schedules import Schedule
from formae.agent.secret_intake import SecretIntake
from formae.agent.synchronizer import Synchronizer
from formae.api import AgentServices, build_app
from formae.api.exposure import ApiExposure
from formae.console import PREFIX as CONSOLE_PREFIX
from formae.console import ConsoleServices, SessionBook, mount_console
from formae.console.figures import AgentFigures, FigureHistory
from formae.secrets import RedactingFilter, Redactor, SecretKeyring
from formae.store import Datastore, open_store
from formae.telemetry.hooks import Telemetry
from formae.telemetry.loop_lag import LoopLag
from formae.telemetry.metrics import AgentMetrics, PluginHealth, PrometheusMetrics, RunProgress, Views
from formae.telemetry.stats import summarize
from formae.telemetry.tracing import Tracing, TracingSettings, tracer_provider
from formae.wire.transport import ServerTls, start_hub_server

log = logging.getLogger("formae.agent")


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the agent owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Agent:
    def __init__(self, config: AgentConfig, reread: Callable[[], AgentConfig] | None = None) -> None:
        self.config = config
        self._reread = reread or (lambda: config)
        """Reads the configuration again as the start did: what a reload (SIGHUP) applies."""
        self._live: LiveConfig | None = None

    def reload_soon(self) -> None:
        """SIGHUP: reload the configuration (ignored until the agent has started its actors)."""
        if self._live is not None:
            self._live.request()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; raises if an actor dies, after stopping the others.

        Raises ``HomeLocked`` before touching anything when another agent runs on this home, and
        ``StoreTaken`` before running anything when another agent uses its SQLite store.
        """
        config = self.config
        with HomeLock(config.home):
            secure_home(config.home)
            store = await open_store(config.store_url)
            try:
                identity = AgentIdentity.of_home(config.home)
                lease, every = config.command_lease, config.lease_renew_interval
                membership = Membership(store, identity, version=__version__, duration=lease, every=every)
                await membership.join()
                await self._run_with_store(store, membership, stop)
            finally:
                await store.close()

    async def _run_with_store(self, store: Datastore, membership: Membership, stop: asyncio.Event) -> None:
        telemetry, metrics = _telemetry(self.config)
        store.instrument(telemetry)
        try:
            await self._run_instrumented(store, membership, stop, telemetry, metrics)
        finally:
            await asyncio.to_thread(telemetry.tracing.shutdown)  # exports the last spans

    async def _run_instrumented(
        self,
        store: Datastore,
        membership: Membership,
        stop: asyncio.Event,
        telemetry: Telemetry,
        metrics: PrometheusMetrics | None,
    ) -> None:
        config = self.config
        identity = membership.identity
        lease, every = config.command_lease, config.lease_renew_interval
        registry: PluginRegistry | None = None
        sections = PluginSections(
            config.file.plugins,
            restart_policy(config),
            GrantFiles(config.home / "grants"),
            announced=lambda: [(p.name, p.namespace) for p in registry.plugins()] if registry else [],
        )
        limiter = RateLimiter(override=sections.rate_limit)
        processes: PluginProcessManager | None = None

        def locate(node: str, pid: int) -> Location:
            return processes.locate(node, pid) if processes else Location.REMOTE

        def spawned_here(node: str) -> bool:
            return processes.spawns(node) if processes else False

        registry = PluginRegistry(
            limiter,
            heartbeat_timeout=config.heartbeat_timeout,
            spawned_here=spawned_here,
            metrics=telemetry.metrics,
        )

        security = _PluginSecurity.of(config)
        keyring, redactor = SecretKeyring.load_or_create(config.secrets_key_file), Redactor()
        _redact_logs(redactor)
        hub = PluginHub(
            registry,
            config.cookie,
            config.node,
            locate,
            require_certificate=security.tls is not None,
            gate=SecretGate(keyring, redactor),
            renewer=security.renewer(config),
        )
        joins = security.join_service(store, config)
        server, port = await start_hub_server(
            config.plugin_address, hub.handle, tls=security.tls, join=joins.join if joins else None
        )
        host = config.plugin_address.rpartition(":")[0]
        plugin_address = f"{host}:{port}"
        if joins is not None:
            joins.agent_address = (
                config.advertised_plugin_address or f"{_reachable(host, public=True)}:{port}"
            )
        environment = PluginEnvironment(
            f"{_reachable(host, public=False)}:{port}",
            config.cookie,
            config.heartbeat_interval,
            _plugin_tracing(config),
            credentials=security.local.environment if security.local else None,
            grants=sections,
        )
        processes = PluginProcessManager(
            discover_plugins(config.plugins_dir),
            environment,
            stay_open=True,
            policy_for=sections.restart_policy,
            metrics=telemetry.metrics,
        )
        overview = PluginOverview(registry, processes)
        claims = Claims()
        await membership.join(plugin_address=joins.agent_address if joins else plugin_address)
        leases = CommandLeases(store, identity, duration=lease, renew_every=every)
        runner = CommandRunner(
            store,
            registry,
            limiter,
            retry_policy(config),
            InFlightLimits(override=sections.max_in_flight),
            plugins=overview,
            claims=claims,
            leases=leases,
            telemetry=telemetry,
        )
        synchronizer = Synchronizer(
            store,
            registry,
            limiter,
            claims,
            commands_running=runner.busy,
            telemetry=telemetry,
            owner=identity.owner,
        )
        discovery = Discovery(store, registry, limiter, claims, telemetry=telemetry)
        if metrics is not None:
            metrics.watch(_views(registry, synchronizer, discovery))
        policies = StackPolicies(store, runner, synchronizer)
        leader = LeaderLease(
            store, identity, duration=lease, every=every, while_leading=synchronizer.continue_orphans
        )
        schedules = {
            "sync.interval": Schedule("sync", config.sync_interval, synchronizer.sync),
            "discovery.interval": Schedule("discovery", config.discovery_interval, discovery.discover),
            "policies.interval": Schedule("stack policies", config.policy_interval, policies.check),
        }
        self._live = live = LiveConfig(
            config, self._reread, LiveTargets(limiter, sections, runner, schedules)
        )
        services = AgentServices(
            runner,
            store,
            registry,
            joins,
            synchronizer=synchronizer,
            discovery=discovery,
            overview=overview,
            secrets=SecretIntake(keyring, redactor, store),
            live_config=live,
            metrics=metrics,
        )
        exposure = ApiExposure.prepare(config, store, AuditLog(config.audit_file))
        access = replace(exposure.access, self_guarded=(CONSOLE_PREFIX,))
        app = build_app(services, access)
        sessions = SessionBook(access.verifier)
        stats = None if metrics is None else partial(summarize, metrics.registry)
        figures = FigureHistory(AgentFigures(registry, store, stats).read)
        console = ConsoleServices(
            store,
            runner,
            overview,
            sessions,
            access.audit,
            redact=redactor.redact,
            figures=figures,
            stats=stats,
        )
        mount_console(app, console, access.verifier)
        api = _ApiServer(_api_config(app, config.api_address, exposure))
        try:
            async with asyncio.TaskGroup() as actors:
                actors.create_task(registry.watch_heartbeats(), name="registry heartbeats")
                actors.create_task(LoopLag(telemetry.metrics).run(), name="event loop lag")
                actors.create_task(processes.run(), name="plugin processes")
                watcher = PluginWatcher(config.plugins_dir, processes, registry)
                actors.create_task(watcher.run(), name="plugin directory watcher")
                actors.create_task(runner.run(), name="command runner")
                actors.create_task(membership.run(), name="membership")
                actors.create_task(leader.run(), name="leader lease")
                actors.create_task(synchronizer.run(), name="synchronizer")
                actors.create_task(discovery.run(), name="discovery")
                actors.create_task(figures.run(), name="console figures")
                for schedule in schedules.values():
                    actors.create_task(schedule.run(leader), name=schedule.name)
                actors.create_task(live.run(), name="configuration reloads")
                serving = actors.create_task(api.serve(), name="api")
                await _wait_started(api, serving)
                api_url = self._write_runtime_file(
                    plugin_address, _bound_address(api, config.api_address), exposure
                )
                await membership.join(api_url=api_url)
                log.info(
                    "agent started version=%s api=%s plugins=%s",
                    __version__,
                    _bound_address(api, config.api_address),
                    plugin_address,
                )
                stopping = actors.create_task(stop.wait(), name="stop")
                await asyncio.wait({stopping, serving}, return_when=asyncio.FIRST_COMPLETED)
                log.info("agent stopping")
                await processes.stop()
                api.should_exit = True
                await serving
                raise _Stop
        except* _Stop:
            pass
        finally:
            await processes.stop()
            api.should_exit = True
            await leader.release()
            await membership.leave()
            await server.stop(grace=0.5)
            self.config.runtime_file.unlink(missing_ok=True)

    def _write_runtime_file(self, plugin_address: str, api_address: str, exposure: ApiExposure) -> str:
        """``{home}/run/agent.json``, which the CLI finds the agent by; returns the API's URL."""
        path = self.config.runtime_file
        path.parent.mkdir(parents=True, exist_ok=True)
        host, _, port = api_address.rpartition(":")
        info = {
            "pid": os.getpid(),
            "api_url": f"{exposure.scheme}://{_reachable(host, public=False)}:{port}",
            "api_ca": str(exposure.ca) if exposure.ca else None,
            "plugin_address": plugin_address,
            "started_at": datetime.now(UTC).isoformat(),
            "version": __version__,
        }
        path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        return str(info["api_url"])


@dataclass(frozen=True)
class _PluginSecurity:
    """With TLS on: the agent's server certificate, its CA, and credentials for spawned plugins."""

    tls: ServerTls | None = None
    authority: CertificateAuthority | None = None
    local: LocalPluginCredentials | None = None

    @classmethod
    def of(cls, config: AgentConfig) -> _PluginSecurity:
        if not config.plugin_tls:
            log.warning("plugin TLS is off: plugins authenticate with the network cookie alone")
            return cls()
        authority = CertificateAuthority.load_or_create(config.pki_dir)
        host = config.plugin_address.rpartition(":")[0].strip("[]")
        names = [
            n for n in (host, config.advertised_plugin_address.rpartition(":")[0]) if n and n not in _ANY_HOST
        ]
        server = authority.server_keypair(names)
        tls = ServerTls(server.certificate_pem, server.key_pem, authority.certificate_pem)
        return cls(tls, authority, LocalPluginCredentials(authority, config.pki_dir / "local"))

    def join_service(self, store: Datastore, config: AgentConfig) -> JoinService | None:
        if self.authority is None:
            return None
        return JoinService(
            store,
            self.authority,
            config.cookie,
            config.plugin_address,
            AuditLog(config.audit_file),
            timedelta(seconds=config.plugin_certificate_validity),
        )

    def renewer(self, config: AgentConfig) -> CertificateRenewer | None:
        if self.authority is None:
            return None
        return CertificateRenewer(self.authority, timedelta(seconds=config.plugin_certificate_validity))


_ANY_HOST = frozenset({"0.0.0.0", "::", ""})


def _reachable(host: str, *, public: bool) -> str:
    """An address to dial for a listen host: loopback for this host's children, the host name for others."""
    if host.strip("[]") not in _ANY_HOST:
        return host
    return socket.gethostname() if public else "127.0.0.1"


def _redact_logs(redactor: Redactor) -> None:
    """Every handler of the agent's log scrubs the secrets the agent has come to know."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter(redactor))


def _telemetry(config: AgentConfig) -> tuple[Telemetry, PrometheusMetrics | None]:
    """The agent's own metrics registry and tracer provider (never the global ones), or neither."""
    metrics = PrometheusMetrics(CollectorRegistry(), version=__version__) if config.metrics_enabled else None
    tracing = Tracing()
    if config.tracing_enabled:
        settings = TracingSettings(
            config.tracing_service_name,
            config.tracing_endpoint,
            config.tracing_headers,
            config.tracing_sample_ratio,
            {"service.version": __version__, "formae.node": config.node},
        )
        tracing = Tracing(tracer_provider(settings), scope="formae.agent")
        log.info("tracing on: spans go to %s", settings.traces_url)
    return Telemetry(metrics or AgentMetrics(), tracing), metrics


def _plugin_tracing(config: AgentConfig) -> dict[str, str]:
    """What a spawned plugin needs to export its spans where the agent's go (protocol.md)."""
    if not config.tracing_enabled:
        return {}
    passed = {"FORMAE_TRACING": "1", "FORMAE_TRACING_SAMPLE_RATIO": f"{config.tracing_sample_ratio:g}"}
    if config.tracing_endpoint:
        passed["OTEL_EXPORTER_OTLP_ENDPOINT"] = config.tracing_endpoint
    if config.tracing_headers:
        passed["OTEL_EXPORTER_OTLP_HEADERS"] = ",".join(
            f"{key}={quote(value)}" for key, value in config.tracing_headers.items()
        )
    if os.environ.get("OTEL_BSP_SCHEDULE_DELAY"):
        passed["OTEL_BSP_SCHEDULE_DELAY"] = os.environ["OTEL_BSP_SCHEDULE_DELAY"]
    return passed


def _views(registry: PluginRegistry, synchronizer: Synchronizer, discovery: Discovery) -> Views:
    def plugins() -> list[PluginHealth]:
        return [
            PluginHealth(
                p.namespace, p.node, "draining" if p.draining else "healthy" if p.healthy else "unhealthy"
            )
            for p in registry.plugins()
        ]

    def runs() -> list[RunProgress]:
        found = []
        if (sync := synchronizer.latest()) is not None:
            found.append(
                RunProgress("sync", sync.state, {str(k): v for k, v in sync.counts.items()}, sync.total)
            )
        if (listing := discovery.latest()) is not None:
            found.append(RunProgress("discovery", listing.state, dict(listing.counts)))
        return found

    return Views(plugins, runs)


class _Stop(Exception):
    """Raised inside the TaskGroup to cancel every actor once the agent is told to stop."""


def _api_config(app: object, address: str, exposure: ApiExposure) -> uvicorn.Config:
    host, _, port = address.rpartition(":")
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host.strip("[]"),
        port=int(port),
        log_config=None,
        access_log=False,
        lifespan="off",
        ssl_certfile=exposure.certificate,
        ssl_keyfile=exposure.key,
        timeout_graceful_shutdown=2,  # an open console event stream must not hold the agent's stop
    )


async def _wait_started(api: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    while not api.started:
        if serving.done():
            serving.result()
            raise OSError("the REST API stopped before it started")
        await asyncio.sleep(0.01)


def _bound_address(api: uvicorn.Server, configured: str) -> str:
    for server in api.servers:
        for sock in server.sockets:
            host, port = sock.getsockname()[:2]
            return f"{host}:{port}"
    return configured
