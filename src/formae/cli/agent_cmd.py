"""``formae agent start|stop|status``: the agent in the foreground, or as a background daemon."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from formae.agent.config import AgentConfig
from formae.agent.file_modes import make_private_by_default
from formae.agent.logs import configure_logging
from formae.cli.client import AgentClient, AgentUnreachable, runtime_info

START_TIMEOUT = 30.0
EXIT_HOME_LOCKED = 3
"""A second agent on a home is refused, like any command the agent side refuses."""
STOP_TIMEOUT = 15.0


def run_foreground(config: AgentConfig, log_file: Path | None = None) -> int:
    make_private_by_default()
    configure_logging(os.environ.get("FORMAE_LOG_LEVEL", "INFO"), log_file)
    return asyncio.run(_serve(config))


async def _serve(config: AgentConfig) -> int:
    # Imported here, not at the top: the agent pulls in gRPC, FastAPI and the datastore drivers
    # (~0.4 s), and every other formae command only needs an HTTP client.
    from formae.agent.leases import HomeLocked
    from formae.agent_process import Agent

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await Agent(config).run(stop)
    except HomeLocked as locked:
        print(f"error: {locked}", file=sys.stderr)
        return EXIT_HOME_LOCKED
    return 0


def start_background(config: AgentConfig, argv: list[str]) -> dict[str, object]:
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
            env={**os.environ, "FORMAE_STORE_URL": config.store_url},
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
