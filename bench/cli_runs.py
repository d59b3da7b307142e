"""The ``formae`` CLI timed as a user sees it: a whole process, from exec to exit, with its peak RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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

    The child is reaped with ``wait4`` so that its own peak RSS is known, not the largest of all
    the children this process ever had.
    """
    env = {**os.environ, **agent.cli_env(), "NO_COLOR": "1"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen([str(FORMAE), *args], env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise RuntimeError(f"formae {' '.join(args)} exited {child.returncode}: {err.read()[-2000:]}")
        return CliRun(seconds, usage.ru_maxrss / 1024, out.read())
