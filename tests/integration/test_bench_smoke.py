"""The benchmark harness runs end to end (N = 50), so that it cannot rot between measurements.

Its figures are not asserted here: they are measured by `python -m bench`, never by a timed test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]


def test_bench_quick_run_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "| sqlite | 50 |" in done.stdout
    assert "spawn → Plugin registered: median" in done.stdout
    for what in ("local SIGKILL", "remote SIGKILL", "remote silent (SIGSTOP)"):
        assert f"dead plugin noticed, {what}:" in done.stdout
    assert "| 0 |" in done.stdout  # no failed operation
    assert "| figure | measured | budget | |" in done.stdout  # every budget, with its verdict
    assert "| plugin spawn → `Plugin registered` (median) |" in done.stdout
    assert "| CLI cold start, `formae status command` against a running agent (median of 5) |" in done.stdout
    assert "| CLI `apply --watch` -o json of 50: CLI peak RSS |" in done.stdout
    # the peer: a figure where Terraform is installed (bench's own setup), else the reason it was not run
    assert "50 resources, ours ÷ Terraform's (null provider)" in done.stdout
