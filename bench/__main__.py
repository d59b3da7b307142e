"""``python -m bench``: every figure of the performance budget, measured in one run.

Prints a table and writes docs/benchmarks.md with a plot (docs/benchmarks.png). ``--quick`` is
the CI smoke run (N = 50, SQLite only, 5 spawns) that keeps the harness from rotting.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import signal
import statistics
import sys
import tempfile
from pathlib import Path

from bench import agent_runs, cli_speed, peer, report, spawn, sync_runs, takeover, transport, workload
from bench.budgets import RowSource
from bench.report import Figures, SizeFigures

FAKE_AWS = Path(sys.executable).parent / "fake-aws-plugin"

ROW_SOURCES: list[RowSource] = [cli_speed.rows, takeover.rows]
"""The other bench modules' budgets: each ``rows(quick)`` returns its rows (``bench/budgets.py``)."""


def main() -> None:
    args = _parse()
    logging.disable(logging.WARNING)  # the in-process hubs' own chatter; the agents log to their files
    figures = Figures(machine=_machine(), smoke=args.quick)
    if args.only_sync:
        figures.sync = _measure_sync(args.sync_size, args.latency_runs)
        print(report.sync_lines(figures.sync), flush=True)
        return
    used: list[float] = []
    spawns = asyncio.run(spawn.spawn_to_registered(args.spawns, cpu=used))
    figures.spawn = spawn.summary(spawns)
    figures.spawn["cpu_median_ms"] = statistics.median(used) * 1000
    for backend in args.backends:
        for size in args.sizes:
            figures.sizes.append(_measure_size(backend, size))
            print(report.row(figures.sizes[-1]), flush=True)
    for tls in (True, False):  # what mutual TLS costs, same size, same run
        figures.mtls.append(_measure_size("sqlite", args.mtls_size, tls=tls))
        print(report.row(figures.mtls[-1]), flush=True)
    _liveness_and_small_apply(figures, args.spawns)
    figures.sync = _measure_sync(args.sync_size, args.latency_runs)
    figures.peer = peer.measure(args.peer_sizes, install=not args.quick)
    for source in ROW_SOURCES:
        figures.extra.extend(source(args.quick))
    figures.machine += f"; load average {_load()} at the end"
    print(report.table(figures))
    if args.write:
        report.write(figures, Path("docs/benchmarks.md"), Path("docs/benchmarks.png"))


def _measure_size(backend: str, size: int, *, tls: bool = True) -> SizeFigures:
    """The agent's apply and destroy of ``size`` resources, and the transport limit over the same wire."""
    forma = workload.forma(size)
    limit_create, limit_delete = asyncio.run(transport.transport_limit(forma, tls=tls))
    with tempfile.TemporaryDirectory(prefix="formae-bench-") as home, _store(backend) as url:
        agent = agent_runs.start_agent(Path(home), url, FAKE_AWS, plugin_tls=tls)
        try:
            run = agent_runs.apply_and_destroy(agent, forma)
        finally:
            agent.stop()
            agent.cleanup()
    return SizeFigures(backend if tls else f"{backend}, no TLS", run, limit_create, limit_delete)


def _measure_sync(size: int, latency_runs: int) -> sync_runs.SyncFigures:
    """A sync of ``size`` managed resources against the same reads over the wire (SQLite)."""
    with tempfile.TemporaryDirectory(prefix="formae-bench-") as home:
        return sync_runs.measure(size, FAKE_AWS, Path(home), None, latency_runs=latency_runs)


def _store(backend: str) -> report.StoreContext:
    return report.StoreContext(backend)


def _liveness_and_small_apply(figures: Figures, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="formae-bench-") as home:
        agent = agent_runs.start_agent(Path(home), None, FAKE_AWS)
        try:
            figures.small_apply = spawn.summary(agent_runs.small_apply_seconds(agent, runs))
            figures.liveness = {
                "local SIGKILL": agent_runs.time_to_notice_local_death(agent),
                "remote SIGKILL": agent_runs.time_to_notice_remote_death(agent, FAKE_AWS, signal.SIGKILL),
                "remote silent (SIGSTOP)": agent_runs.time_to_notice_remote_death(
                    agent, FAKE_AWS, signal.SIGSTOP
                ),
            }
        finally:
            agent.stop()
            agent.cleanup()


def _machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    system = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu})"
    return f"{system}, Python {platform.python_version()}; load average {_load()} at the start"


def _load() -> str:
    """The 1-, 5- and 15-minute load averages: others share this machine, and the figures show it."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="CI smoke run: N=50 on SQLite, 5 spawns, no file written"
    )
    parser.add_argument("--sizes", default="100,1000,10000,100000", help="resource counts, comma separated")
    parser.add_argument(
        "--peer-sizes", default="1000,10000", help="resource counts applied by our CLI and by Terraform"
    )
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite and/or postgres")
    parser.add_argument("--spawns", type=int, default=20)
    parser.add_argument(
        "--mtls-size", type=int, default=1000, help="resources for the with/without mTLS runs"
    )
    parser.add_argument("--no-write", dest="write", action="store_false", help="print only")
    parser.add_argument("--sync-size", type=int, default=10000, help="managed resources the sync reads")
    parser.add_argument("--latency-runs", type=int, default=3, help="100-resource applies timed, each way")
    parser.add_argument(
        "--only-sync", action="store_true", help="only the sync figures (printed, nothing written)"
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.backends, args.spawns, args.write, args.mtls_size = "50", "sqlite", 5, False, 50
        args.sync_size, args.latency_runs, args.peer_sizes = 50, 1, "50"
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.peer_sizes = [int(s) for s in args.peer_sizes.split(",") if s]
    args.backends = args.backends.split(",")
    return args


if __name__ == "__main__":
    main()
