"""Reloading the configuration while the agent runs (SIGHUP, ``POST /api/v1/agent/reload``).

A reload reads flags, environment and file again exactly as the start did (the flags are the
start's; the file may have changed, the environment cannot), compares the result with what runs,
and applies the live changes to the actors that use them:

- ``sync.interval``, ``discovery.interval``, ``policies.interval``: the schedules are retimed;
- ``logging.level``: the root logger's level;
- ``retry.*``: the policy of commands started from now on;
- ``plugins.*.rate_limit``: the namespaces' token buckets, at once;
- ``plugins.*.env|set|files|restart`` and ``plugin_restart.*``: the next spawn or restart of a plugin.

Every other change is reported (log line and API answer) as needing a restart and is not applied.
A file that no longer validates changes nothing: the agent keeps running as it was, and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from formae.agent.commands import CommandRunner
from formae.agent.config import AgentConfig, ConfigError
from formae.agent.plugin_env import GrantError
from formae.agent.plugin_sections import PluginSections
from formae.agent.process_manager import RestartPolicy
from formae.agent.rate_limiter import RateLimiter
from formae.agent.schedules import Schedule
from formae.agent.updater import CodeRule, RetryPolicy
from formae.config.changes import Changes, after_reload, running
from formae.logs import set_level

log = logging.getLogger("formae.agent.config")


def retry_policy(config: AgentConfig) -> RetryPolicy:
    """The updater's policy from the configuration (``retry`` section and its ``codes``)."""
    codes: dict[str, CodeRule] = {
        code: CodeRule(rule.retry, rule.max_attempts) for code, rule in config.file.retry.codes.items()
    }
    return RetryPolicy(
        max_attempts=config.retry_max_attempts,
        initial_delay=config.retry_initial_delay,
        max_delay=config.retry_max_delay,
        codes=codes,
    )


def restart_policy(config: AgentConfig) -> RestartPolicy:
    return RestartPolicy(
        initial_delay=config.plugin_restart_initial_delay,
        max_delay=config.plugin_restart_max_delay,
        stable_after=config.plugin_restart_stable_after,
    )


@dataclass
class LiveTargets:
    """What a reload acts on."""

    limiter: RateLimiter
    plugins: PluginSections
    runner: CommandRunner | None = None
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    """By the setting that times them (``sync.interval`` …)."""


class ReloadRefused(Exception):
    """The configuration read again is invalid; nothing was changed."""


class LiveConfig:
    def __init__(self, config: AgentConfig, reread: Callable[[], AgentConfig], targets: LiveTargets) -> None:
        self.started = config
        self.settings = config.settings
        """What runs: the start's settings, with the live ones as the last reload made them."""
        self._reread = reread
        self._targets = targets
        self._lock = asyncio.Lock()
        self._requested = asyncio.Event()

    def request(self) -> None:
        """Ask for a reload (a signal handler cannot await one): ``run`` does it."""
        self._requested.set()

    async def run(self) -> None:
        """Forever: reload when asked (SIGHUP); a refused reload is logged and the agent carries on."""
        while True:
            await self._requested.wait()
            self._requested.clear()
            with contextlib.suppress(ReloadRefused):  # reload() logged why
                await self.reload()

    async def reload(self) -> Changes:
        """Read the configuration again and apply what can change live; raise ReloadRefused if invalid."""
        async with self._lock:
            try:  # a Pkl file is evaluated by a subprocess: not on the event loop
                fresh = await asyncio.to_thread(self._reread)
                self._apply_plugins(fresh)
            except (ConfigError, GrantError) as error:
                log.error("configuration not reloaded, the agent runs on as it was: %s", error)
                raise ReloadRefused(str(error)) from None
            assert self.settings is not None
            assert self.started.settings is not None
            assert fresh.settings is not None
            changes = after_reload(self.settings, self.started.settings, fresh.settings)
            self._apply(fresh)
            self.settings = running(self.started.settings, fresh.settings)
            _log_changes(changes)
            return changes

    def _apply_plugins(self, fresh: AgentConfig) -> None:
        self._targets.plugins.replace(fresh.file.plugins, restart_policy(fresh))
        self._targets.limiter.refresh()

    def _apply(self, fresh: AgentConfig) -> None:
        set_level(fresh.log_level)
        if self._targets.runner is not None:
            self._targets.runner.policy = retry_policy(fresh)
        intervals = {
            "sync.interval": fresh.sync_interval,
            "discovery.interval": fresh.discovery_interval,
            "policies.interval": fresh.policy_interval,
        }
        for key, schedule in self._targets.schedules.items():
            schedule.retime(intervals[key])


def _log_changes(changes: Changes) -> None:
    applied = ",".join(changes.applied) or "-"
    waiting = ",".join(changes.needs_restart) or "-"
    log.info("configuration reloaded applied=%s needs_restart=%s", applied, waiting)
    if changes.needs_restart:
        log.warning(
            "configuration changes that take effect only after a restart of the agent: %s",
            ", ".join(changes.needs_restart),
        )
