"""``formae doctor``: the checks for what newcomers trip on, each with what to do about it.

Every check is a small function of a :class:`Situation` (the home, the agent it can reach and
what that agent said) returning findings; a finding that is not ``ok`` carries the next command
to run. The agent is asked once (``/health`` and ``/plugins``), with a short timeout, so the
doctor answers quickly even when the agent is the problem.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from formae.agent.config import DEFAULT_API_ADDRESS, DEFAULT_PLUGIN_ADDRESS
from formae.agent.plugin_manager import discover_plugins
from formae.cli.client import AgentClient, AgentUnreachable, Rejected, api_ca, api_token, runtime_info

TIMEOUT = 3.0
MIN_PYTHON = (3, 11)
SKEW_TOLERATED = 5.0
"""Seconds of clock difference above which certificates and token expiry start to misbehave."""
PRIVATE_FILES = ("network.cookie", "pki/ca.key", "run/api.token", "secrets.key", "data/formae.db")


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""


@dataclass
class Situation:
    """What the checks look at, gathered once."""

    home: Path
    api_url: str | None
    agent_pid: int | None = None
    health: dict[str, Any] | None = None
    plugins: list[dict[str, Any]] = field(default_factory=list)
    unreachable: str = ""

    @classmethod
    def look(cls, home: Path, explicit_url: str | None) -> Situation:
        info = runtime_info(home) or {}
        url = explicit_url or os.environ.get("FORMAE_API_URL") or info.get("api_url")
        found = cls(home, str(url) if url else None, agent_pid=_alive(info.get("pid")))
        if found.api_url:
            found._ask_agent()
        return found

    def _ask_agent(self) -> None:
        assert self.api_url is not None
        try:
            token, ca = api_token(self.home), api_ca(self.home)
            with AgentClient(self.api_url, timeout=TIMEOUT, token=token, ca=ca) as client:
                self.health = client.health()
                self.plugins = client.plugins()
        except (AgentUnreachable, Rejected) as error:
            self.unreachable = str(error)


def _alive(pid: object) -> int | None:
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


Check = Callable[[Situation], list[Finding]]


def python_version(_: Situation) -> list[Finding]:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] >= MIN_PYTHON:
        return [Finding("python", Status.OK, f"Python {version}")]
    needed = ".".join(map(str, MIN_PYTHON))
    return [
        Finding(
            "python",
            Status.FAIL,
            f"Python {version}; formae needs {needed} or newer",
            f"install Python {needed}+",
        )
    ]


def pkl_on_path(_: Situation) -> list[Finding]:
    found = shutil.which("pkl")
    if found:
        return [Finding("pkl", Status.OK, f"pkl at {found}")]
    fix = "install it (bash .ci/install-pkl ~/.local/bin from the formae repository, or https://pkl-lang.org)"
    return [
        Finding(
            "pkl", Status.WARN, "pkl is not on PATH: .pkl formas cannot be read (.json and .yaml can)", fix
        )
    ]


def configuration(situation: Situation) -> list[Finding]:
    """The configuration file an agent start would read: found, and valid (or what is wrong, where)."""
    from formae.agent.config import AgentConfig, ConfigError

    try:
        config = AgentConfig.load(os.environ, str(situation.home), None, {}, make_cookie=False)
    except ConfigError as error:
        fix = "fix the file (docs/operations.md lists every field), then `formae agent config show`"
        return [Finding("config", Status.FAIL, str(error), fix)]
    path = config.settings.file.path if config.settings else None
    detail = f"{path} is valid" if path else f"no configuration file in {situation.home}: defaults apply"
    return [Finding("config", Status.OK, detail)]


def home_permissions(situation: Situation) -> list[Finding]:
    home = situation.home
    if not home.exists():
        return [Finding("home", Status.WARN, f"{home} does not exist yet", "formae agent start --background")]
    findings = []
    if home.stat().st_mode & 0o077:
        mode = oct(stat.S_IMODE(home.stat().st_mode))
        findings.append(
            Finding(
                "home", Status.WARN, f"{home} is {mode}: other users can look inside", f"chmod 700 {home}"
            )
        )
    for name in PRIVATE_FILES:
        path = home / name
        if path.exists() and path.stat().st_mode & 0o077:
            mode = oct(stat.S_IMODE(path.stat().st_mode))
            findings.append(
                Finding("home", Status.FAIL, f"{path} is {mode}: readable by others", f"chmod 600 {path}")
            )
    return findings or [Finding("home", Status.OK, f"{home} and its secrets are private")]


def agent_answers(situation: Situation) -> list[Finding]:
    if situation.api_url is None:
        detail = f"no agent runs under {situation.home} and no --api-url or FORMAE_API_URL is given"
        return [Finding("agent", Status.WARN, detail, "formae agent start --background")]
    if situation.health is None:
        detail = f"the agent at {situation.api_url} does not answer: {situation.unreachable}"
        fix = (
            "formae agent start --background"
            if situation.agent_pid is None
            else "formae agent stop; formae agent start --background"
        )
        return [Finding("agent", Status.FAIL, detail, fix)]
    reasons = situation.health.get("reasons") or []
    if situation.health.get("status") != "ok":
        return [
            Finding(
                "agent",
                Status.WARN,
                f"the agent at {situation.api_url} is degraded: {'; '.join(reasons)}",
                "formae plugin list",
            )
        ]
    return [
        Finding(
            "agent", Status.OK, f"agent {situation.health.get('version', '')} answers at {situation.api_url}"
        )
    ]


def ports_free(situation: Situation) -> list[Finding]:
    """With no agent of ours running, the default ports must be free for one to start."""
    if situation.health is not None or situation.agent_pid is not None:
        return []
    findings = []
    for what, address, flag in (
        ("API", DEFAULT_API_ADDRESS, "--api-address"),
        ("plugin", DEFAULT_PLUGIN_ADDRESS, "--plugin-address"),
    ):
        host, _, port = address.rpartition(":")
        if _in_use(host, int(port)):
            detail = f"{address} ({what} port) is in use by another program"
            findings.append(Finding("ports", Status.FAIL, detail, f"formae agent start {flag} {host}:PORT"))
    return findings or [
        Finding("ports", Status.OK, f"{DEFAULT_API_ADDRESS} and {DEFAULT_PLUGIN_ADDRESS} are free")
    ]


def _in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def plugins_installed(situation: Situation) -> list[Finding]:
    installed = discover_plugins(situation.home / "plugins")
    if not installed:
        fix = 'formae plugin install "$(command -v fake-aws-plugin)"'
        return [
            Finding("plugins", Status.WARN, f"no plugin is installed under {situation.home / 'plugins'}", fix)
        ]
    if situation.health is None:
        names = ", ".join(f"{p.name} {p.version}" for p in installed)
        return [Finding("plugins", Status.OK, f"installed: {names}")]
    registered = {(p["name"], p["version"]) for p in situation.plugins if p.get("registered_at")}
    missing = [p for p in installed if (p.name, str(p.version)) not in registered]
    if missing:
        names = ", ".join(f"{p.name} {p.version}" for p in missing)
        return [
            Finding("plugins", Status.WARN, f"installed but not registered: {names}", "formae plugin list")
        ]
    return [Finding("plugins", Status.OK, f"{len(installed)} installed, all registered")]


def crash_looping(situation: Situation) -> list[Finding]:
    findings = []
    for plugin in situation.plugins:
        process = plugin.get("process") or {}
        if process.get("crash_looping"):
            tail = " | ".join((process.get("stderr_tail") or [])[-2:])
            detail = (
                f"{plugin['node']} keeps crashing: {process.get('restarts')} restarts, "
                f"last exit code {process.get('last_exit_code')}" + (f"; stderr: {tail}" if tail else "")
            )
            findings.append(
                Finding("crash-loop", Status.FAIL, detail, "formae plugin list  (its stderr says why)")
            )
    return findings


def clock_skew(situation: Situation) -> list[Finding]:
    findings = []
    for plugin in situation.plugins:
        skew = plugin.get("clock_skew_seconds")
        if skew is not None and abs(skew) > SKEW_TOLERATED:
            side = "ahead of" if skew > 0 else "behind"
            detail = f"{plugin['node']}'s clock is {abs(skew):.0f}s {side} the agent's: certificates may fail"
            findings.append(
                Finding("clock", Status.WARN, detail, "synchronise both hosts' clocks (NTP, chrony)")
            )
    return findings


CHECKS: tuple[Check, ...] = (
    python_version,
    pkl_on_path,
    configuration,
    home_permissions,
    agent_answers,
    ports_free,
    plugins_installed,
    crash_looping,
    clock_skew,
)


def examine(home: Path, api_url: str | None) -> list[Finding]:
    situation = Situation.look(home, api_url)
    return [finding for check in CHECKS for finding in check(situation)]
