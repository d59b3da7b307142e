"""A real agent process for tests and benchmarks: ``python -m formae agent start`` in its own home.

Ports are picked by the kernel on 127.0.0.1 and read back from the agent's runtime file; the log
goes to a file a test can wait on. ``cleanup`` kills the agent and every plugin it spawned, so no
process outlives the test that started it.

    agent = AgentProcess(tmp_path / "home").start()
    try:
        agent.wait_for_log(r"Plugin registered namespace=MyCloud")
        command = agent.apply_and_wait(forma)
    finally:
        agent.cleanup()
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from formae.cli.client import AgentClient

FINAL = ("Success", "Failed", "Canceled")


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited; only its parent has not reaped it yet
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@dataclass
class AgentProcess:
    home: Path
    env: dict[str, str] = field(default_factory=dict)
    store_url: str | None = None
    plugin_address: str = "127.0.0.1:0"
    """Where plugins dial in; a test network's address (say a veth in a network namespace) or port 0."""
    plugin_tls: bool = True
    api_address: str = "127.0.0.1:0"
    """Where the REST API listens; beyond loopback it speaks TLS unless ``extra_args`` say otherwise."""
    grant_env: tuple[str, ...] = (
        "FAKE_AWS_*",
        "AWS_*",
        "PG*",
        "PYTHON*",
        "NODE_*",
        "VIRTUAL_ENV",
        "COVERAGE_*",
    )
    """What each installed plugin is granted of the agent's environment, beyond the variables in ``env``
    (written to ``{home}/grants/{name}.json`` at start, unless the test wrote one itself)."""
    extra_args: list[str] = field(default_factory=list)
    """More ``formae agent start`` flags, e.g. ``--insecure-api``."""
    launcher: list[str] = field(default_factory=list)
    """A command line the agent's own is appended to (``unshare … sh -c '… exec "$@"'``); it must exec."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.home / "agent-test.log"

    @property
    def runtime(self) -> dict[str, Any]:
        return dict(json.loads((self.home / "run" / "agent.json").read_text()))

    @property
    def cookie(self) -> str:
        return (self.home / "network.cookie").read_text().strip()

    def start(self, timeout: float = 20.0) -> Self:
        self.home.mkdir(parents=True, exist_ok=True)
        self._grant_plugins()
        (self.home / "run" / "agent.json").unlink(missing_ok=True)
        env = {
            **os.environ,
            "FORMAE_HOME": str(self.home),
            "FORMAE_LOG_LEVEL": "INFO",
            **self.env,
        }
        if "FORMAE_NETWORK_COOKIE" not in self.env:  # the agent's own cookie file, not the caller's
            env.pop("FORMAE_NETWORK_COOKIE", None)
        args = [
            *self.launcher,
            sys.executable,
            "-m",
            "formae",
            "agent",
            "start",
            f"--home={self.home}",
            f"--api-address={self.api_address}",
            f"--plugin-address={self.plugin_address}",
            "--plugin-tls" if self.plugin_tls else "--no-plugin-tls",
            *self.extra_args,
        ]
        if self.store_url:
            args.append(f"--store-url={self.store_url}")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._started, timeout, f"the agent to start (log: {self.log_path})")
        return self

    def _grant_plugins(self) -> None:
        """Spawned plugins get only what they are granted: here, what the test meant them to have."""
        plugins = self.home / "plugins"
        names = (
            {"fake-aws", *(p.name for p in plugins.iterdir() if p.is_dir())}
            if plugins.is_dir()
            else {"fake-aws"}
        )
        granted = sorted({*self.grant_env, *(k for k in self.env if not k.startswith("FORMAE_"))})
        for name in names:
            path = self.home / "grants" / f"{name}.json"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                path.write_text(json.dumps({"env": granted}))
                path.chmod(0o600)

    def _started(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"agent exited with {self.process.returncode}:\n{self.log()}")
        try:
            return bool(self.runtime.get("pid") == self.process.pid)
        except (OSError, ValueError):
            return False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def api_token(self) -> str:
        """The agent's own admin token, which every client of this harness sends."""
        return (self.home / "run" / "api.token").read_text().strip()

    @property
    def api_ca(self) -> Path:
        return self.home / "pki" / "ca.crt"

    def cli_env(self) -> dict[str, str]:
        """What a ``formae`` command run by a test needs to reach this agent: its home (token, CA)."""
        return {"FORMAE_HOME": str(self.home), "FORMAE_API_URL": self.runtime["api_url"]}

    def client(self) -> AgentClient:
        return AgentClient(self.runtime["api_url"], token=self.api_token, ca=self.api_ca)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log()))

    def wait_for_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> str:
        wait_until(
            lambda: self.log_count(pattern) >= count, timeout, f"{pattern!r} x{count} in the agent log"
        )
        return re.findall(pattern, self.log())[count - 1]  # type: ignore[no-any-return]

    def plugin_pids(self) -> list[int]:
        return [
            int(pid)
            for pid in re.findall(r"Plugin process started name=\S+ version=\S+ pid=(\d+)", self.log())
        ]

    def plugins(self) -> list[dict[str, Any]]:
        with self.client() as client:
            return client.plugins()

    def apply(self, forma: dict[str, Any], mode: str = "reconcile", force: bool = False) -> dict[str, Any]:
        with self.client() as client:
            return client.apply(forma, mode, False, force, "test-forma")

    def wait_command(self, command_id: str, timeout: float = 30.0) -> dict[str, Any]:
        with self.client() as client:
            return dict(
                wait_until(lambda: _final(client.command(command_id)), timeout, f"command {command_id}")
            )

    def apply_and_wait(
        self, forma: dict[str, Any], mode: str = "reconcile", timeout: float = 30.0
    ) -> dict[str, Any]:
        return self.wait_command(self.apply(forma, mode)["command_id"], timeout)

    def plan(self, forma: dict[str, Any], mode: str = "reconcile") -> dict[str, Any]:
        """What applying ``forma`` would change now (a simulated apply): ``changes`` and ``summary``."""
        with self.client() as client:
            return client.apply(forma, mode, True, False, "test-forma")

    def apply_converged(self, forma: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """Apply ``forma`` through the plugins, then check that planning the same forma changes nothing.

        The planner-in-the-loop check: a plugin that reports properties other than the ones it was
        given (a default filled in, a value normalised, a property dropped) makes every later apply
        update the resource again. Raises AssertionError naming the changes; returns the command.
        """
        command = self.apply_and_wait(forma, timeout=timeout)
        if command["state"] != "Success":
            failed = [
                f"{u['label']}: {u['error_code']} {u['error']}" for u in command["updates"] if u["error"]
            ]
            raise AssertionError(f"apply ended {command['state']}: {'; '.join(failed) or command['message']}")
        changes = self.plan(forma)["changes"]
        if changes:
            said = "; ".join(
                f"{c['operation']} {c['type']} {c['label']} {c.get('patch') or ''}" for c in changes
            )
            raise AssertionError(
                f"not converged: planning the same forma again would {said}. The plugin reports properties "
                "that differ from the desired ones; report the resource as it was asked for (docs/plugins.md)"
            )
        return command

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def cleanup(self) -> None:
        """Kill the agent and every plugin it ever spawned; never raises."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for pid in self.plugin_pids():
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def _final(command: dict[str, Any]) -> dict[str, Any] | None:
    return command if command["state"] in FINAL else None
