"""``formae agent start|stop|status``: the agent in the foreground, or as a background daemon."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from formae.agent.config import AgentConfig
from formae.agent.file_modes import make_private_by_default
from formae.cli.client import AgentClient, AgentUnreachable, runtime_info
from formae.config import BY_ATTRIBUTE, BY_KEY
from formae.logs import configure_logging

START_TIMEOUT = 30.0
EXIT_HOME_LOCKED = 3
"""A second agent on a home is refused, like any command the agent side refuses."""
STOP_TIMEOUT = 15.0


def run_foreground(
    config: AgentConfig, log_file: Path | None = None, reread: Callable[[], AgentConfig] | None = None
) -> int:
    """Serve until SIGTERM/SIGINT; SIGHUP reloads the configuration through ``reread``."""
    make_private_by_default()
    configure_logging(
        config.log_level,
        log_file,
        format=config.log_format,
        max_bytes=config.log_max_bytes,
        backups=config.log_backups,
        follow_stdio=log_file is not None,  # only the background agent is given its log file
    )
    return asyncio.run(_serve(config, reread or (lambda: config)))


def passed_on(config: AgentConfig, config_file: Path | None, flags: Mapping[str, str | None]) -> list[str]:
    """The flags a background agent is started with: the ones the user gave, nothing the file said.

    Passing the resolved values instead would turn every file value into a flag in the child, and a
    reload could never change them. The store URL travels in the environment (see start_background).
    """
    argv = [f"--home={config.home}"]
    if config_file is not None:
        argv.append(f"--config={config_file.resolve()}")
    for attribute, raw in flags.items():
        if raw is None or attribute == "store_url":
            continue
        flag = str(BY_KEY[BY_ATTRIBUTE[attribute]].flag)
        if attribute in ("plugin_tls", "api_tls", "metrics_enabled", "tracing_enabled"):
            argv.append(flag if raw == "True" else f"--no-{flag.removeprefix('--')}")
        elif attribute == "insecure_api":
            argv.append(str(flag))
        elif attribute == "api_names":
            argv.extend(f"{flag}={name}" for name in raw.split(","))
        else:
            argv.append(f"{flag}={raw}")
    return argv


async def _serve(config: AgentConfig, reread: Callable[[], AgentConfig]) -> int:
    # Imported here, not at the top: the agent pulls in gRPC, FastAPI and the datastore drivers
    # (~0.4 s), and every other formae command only needs an HTTP client.
    from formae.agent.leases import HomeLocked
    from formae.agent.membership import StoreTaken
    from formae.agent_process import Agent

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    agent = Agent(config, reread)
    loop.add_signal_handler(signal.SIGHUP, agent.reload_soon)
    try:
        await agent.run(stop)
    except (HomeLocked, StoreTaken) as locked:
        print(f"error: {locked}", file=sys.stderr)
        return EXIT_HOME_LOCKED
    return 0


def start_background(config: AgentConfig, argv: list[str], store_url: str | None = None) -> dict[str, object]:
    """Start ``formae agent start`` detached, logging to the agent's log file; its runtime info once up.

    The store URL travels in the child's environment, never on its command line: a PostgreSQL
    URL may hold a password, and every user of the host can read every command line (``ps``).
    """
    running = alive_agent(config.home)
    if running is not None:
        raise RuntimeError(f"an agent is already running (pid {running['pid']}, {running['api_url']})")
    config.log_file.parent.mkdir(parents=True, exist_ok=True)
    with config.log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "formae", "agent", "start", *argv, "--log-file", str(config.log_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **({"FORMAE_STORE_URL": store_url} if store_url else {})},
        )
    return _wait_until_up(config, process)


def _wait_until_up(config: AgentConfig, process: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the agent exited with code {process.returncode}; see {config.log_file}")
        info = runtime_info(config.home)
        if info is not None and info.get("pid") == process.pid:
            return info
        time.sleep(0.05)
    process.terminate()
    raise RuntimeError(f"the agent did not start within {START_TIMEOUT:.0f}s; see {config.log_file}")


def alive_agent(home: Path) -> dict[str, object] | None:
    info = runtime_info(home)
    if info is None or not _pid_alive(int(info.get("pid", 0))):
        return None
    return info


def stop_agent(home: Path) -> int | None:
    """SIGTERM the running agent and wait for it to exit; its pid, or None if none was running."""
    info = alive_agent(home)
    if info is None:
        return None
    pid = int(str(info["pid"]))
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    return pid


def agent_health(api_url: str, ca: Path | None = None) -> dict[str, object] | None:
    try:
        with AgentClient(api_url, timeout=5, ca=ca) as client:
            return client.health()
    except AgentUnreachable:
        return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
