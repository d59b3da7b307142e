"""The plugin under test as a process, started as the agent starts one, under a parent the kit can kill.

The parent stands in for the agent: it spawns the plugin with ``FORMAE_PARENT_PID`` set to its own
pid, waits for it and exits with its code. Killing the parent with SIGKILL is how the kit checks
that a plugin dies with its agent (docs/protocol.md §10).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_PARENT = """
import os, subprocess, sys
env = dict(os.environ, FORMAE_PARENT_PID=str(os.getpid()))
child = subprocess.Popen(
    sys.argv[1:], env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr, start_new_session=True
)
print(child.pid, flush=True)
code = child.wait()
sys.exit(code if code >= 0 else 128 - code)
"""


class PluginProcess:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self._log = log.open("ab")
        self.parent = subprocess.Popen(
            [sys.executable, "-c", _PARENT, *argv],
            env={**_without_formae(os.environ), **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.parent.stdout is not None
        line = self.parent.stdout.readline().strip()
        self.pid = int(line) if line.isdigit() else 0
        self.parent.stdout.close()

    def alive(self) -> bool:
        return self.pid > 0 and _alive(self.pid)

    def signal(self, signum: int) -> None:
        if self.alive():
            os.kill(self.pid, signum)

    def kill_parent(self) -> None:
        self.parent.kill()
        self.parent.wait()

    def wait_exit(self, timeout: float) -> int | None:
        """The plugin's exit code (through its parent); None if still running after ``timeout``."""
        try:
            return self.parent.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        """Kill whatever is left; never raises."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        if self.parent.poll() is None:
            self.parent.kill()
        self.parent.wait()
        self._log.close()


def _without_formae(env: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The caller's environment minus its FORMAE_* settings: the plugin hears only the kit's."""
    return {k: v for k, v in env.items() if not k.startswith("FORMAE_") or k == "FORMAE_LOG_LEVEL"}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")
