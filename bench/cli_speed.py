"""The CLI's budgets: how fast ``formae`` starts, and what following a large apply costs it.

- Cold start: ``formae --help`` and ``formae status command`` (against a running agent), each a
  whole process timed from exec to exit, the median of ``runs``, with its CPU time beside it
  (the wall time is what the budget names; on a machine others load, the CPU time shows what is
  ours). Python's bytecode is compiled first, as ``pip install`` leaves it.
- ``formae apply --watch`` of ``size`` resources, with ``-o json`` (every update printed) and
  human (the live counts), each timed as a whole process with its peak RSS, divided by the
  agent's own apply of the same forma in the same run (REST submit to Success, no CLI).
"""

from __future__ import annotations

import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import formae
from bench import agent_runs, workload
from bench.budgets import Row, at_most
from bench.cli_runs import FORMAE, CliRun, run_cli
from formae.cli.client import AgentClient
from formae.testing import AgentProcess

FAKE_AWS = Path(sys.executable).parent / "fake-aws-plugin"
START_BUDGET_MS = 150.0
WATCH_BUDGET = 1.1
RSS_BUDGET_MB = 250.0


def rows(quick: bool) -> list[Row]:
    runs, size = (5, 50) if quick else (20, 100_000)
    compileall.compile_dir(Path(formae.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(prefix="formae-bench-") as home:
        agent = agent_runs.start_agent(Path(home), None, FAKE_AWS)
        try:
            watched = _watched(agent, size)
            starts = {what: _median_ms(agent, runs, *args) for what, args in STARTS.items()}
        finally:
            agent.stop()
            agent.cleanup()
    found = [
        at_most(f"{what} (median of {runs})", wall, START_BUDGET_MS, " ms", note=f"CPU {cpu:.0f} ms")
        for what, (wall, cpu) in starts.items()
    ]
    found += [row for how, (cli, agent_s) in watched.items() for row in _watch_rows(size, how, cli, agent_s)]
    return [_smoke(r) for r in found] if quick else found


def _smoke(row: Row) -> Row:
    """The CI smoke run's row: its small-N figure shown, without a verdict."""
    return replace(row, met=None, note="; ".join(filter(None, [row.note, "smoke run, no verdict"])))


STARTS = {
    "CLI cold start, `formae --help`": ("--help",),
    "CLI cold start, `formae status command` against a running agent": ("status", "command"),
}


def _watched(agent: AgentProcess, size: int) -> dict[str, tuple[CliRun, float]]:
    """Each way of following an apply of ``size``: the CLI's run and the agent's own apply time."""
    path = agent.home / "cli-forma.json"
    forma = workload.forma(size)
    path.write_text(json.dumps(forma), encoding="utf-8")
    found = {}
    for how, flags in (("-o json", ["-o", "json"]), ("human", [])):
        agent_seconds = _agent_apply(agent, forma)
        cli = run_cli(agent, "apply", "--watch", *flags, str(path))
        _destroy(agent)
        if how == "-o json" and len(json.loads(cli.stdout)["updates"]) != len(forma["resources"]):
            raise RuntimeError("formae apply --watch -o json did not print every update")
        found[how] = (cli, agent_seconds)
    return found


def _agent_apply(agent: AgentProcess, forma: dict[str, Any]) -> float:
    """The agent's own apply of ``forma`` (REST submit to Success), then its destroy (not timed)."""
    with agent_runs.client(agent) as api:
        started = time.perf_counter()
        _wait_final(api, api.apply(forma, "reconcile", False, False, "bench")["command_id"])
        seconds = time.perf_counter() - started
    _destroy(agent)
    return seconds


def _destroy(agent: AgentProcess) -> None:
    with agent_runs.client(agent) as api:
        _wait_final(api, api.destroy(None, "stack:bench", False, "bench")["command_id"])


def _wait_final(api: AgentClient, command_id: str) -> None:
    while api.command(command_id, updates=False, wait=60)["state"] not in ("Success", "Failed", "Canceled"):
        pass


def _watch_rows(size: int, how: str, cli: CliRun, agent_seconds: float) -> list[Row]:
    ratio = cli.seconds / agent_seconds
    note = f"CLI {cli.seconds:.1f} s, agent {agent_seconds:.1f} s"
    what = f"CLI `apply --watch` {how} of {size:,}"
    return [
        at_most(f"{what}: wall ÷ the agent's own apply", ratio, WATCH_BUDGET, "×", digits=2, note=note),
        at_most(f"{what}: CLI peak RSS", cli.peak_rss_mb, RSS_BUDGET_MB, " MB"),
    ]


def _median_ms(agent: AgentProcess, runs: int, *args: str) -> tuple[float, float]:
    """The median wall time of ``formae ARGS`` as a whole process, and its median CPU time (ms)."""
    env = {**os.environ, **agent.cli_env(), "NO_COLOR": "1"}
    walls, cpus = [], []
    for _ in range(runs):
        started = time.perf_counter()
        child = subprocess.Popen([str(FORMAE), *args], env=env, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((usage.ru_utime + usage.ru_stime) * 1000)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"formae {' '.join(args)} failed")
    return statistics.median(walls), statistics.median(cpus)
