"""The ``formae`` CLI timed as a user sees it: a whole process, from exec to exit, with its peak RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from formae.testing import AgentProcess

FORMAE = Path(sys.executable).parent / "formae"


@dataclass(frozen=True)
class CliRun:
    seconds: float
    peak_rss_mb: float
    stdout: str


def run_cli(agent: AgentProcess, *args: str) -> CliRun:
    """``formae ARGS`` against ``agent``, its output piped (plain lines, as in a script); fails loudly.

    Its peak RSS is read from its own ``/proc/PID/status`` (``VmHWM``) while it runs, not from
    ``wait4``: Linux counts in a child's ``ru_maxrss`` the copy of this process it was forked
    from, before ``exec`` (a 400 MB bench made a 40 MB CLI read 410 MB).
    """
    env = {**os.environ, **agent.cli_env(), "NO_COLOR": "1"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen([str(FORMAE), *args], env=env, stdout=out, stderr=err)
        peak = _HighWater(child.pid)
        _, status, _ = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        peak.stop()
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise RuntimeError(f"formae {' '.join(args)} exited {child.returncode}: {err.read()[-2000:]}")
        return CliRun(seconds, peak.mb, out.read())


class _HighWater:
    """The largest ``VmHWM`` of process ``pid`` once it runs ``formae``, sampled every 10 ms."""

    def __init__(self, pid: int) -> None:
        self.mb = 0.0
        self._pid = pid
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            try:
                if str(FORMAE).encode() not in Path(f"/proc/{self._pid}/cmdline").read_bytes():
                    continue  # still the fork of this process, before exec
                status = Path(f"/proc/{self._pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.mb = max(self.mb, int(line.split()[1]) / 1024)
