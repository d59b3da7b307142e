"""Figures, their budgets, and how they are printed, written to docs/benchmarks.md and plotted."""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import asyncpg

from bench import budgets
from bench.agent_runs import ApplyRun
from bench.budgets import Row, at_most, skipped
from bench.peer import PeerFigures
from bench.sync_runs import SyncFigures

POSTGRES_URL = os.environ.get("FORMAE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BUDGET_RATIO = 2.0
BUDGET_SPAWN_MS = 100.0
BUDGET_LOCAL_DEATH_S = 0.1
BUDGET_REMOTE_DEATH_S = 3.0
BUDGET_RSS_MB = 200.0
"""At 10,000 resources; at 100,000 it is ``BUDGET_RSS_MB_100K``."""
BUDGET_RSS_MB_100K = 600.0
BUDGET_SIMULATE_S = {10_000: 0.6, 100_000: 5.0}
"""A no-op ``--simulate`` of N resources against an inventory of the same N, end to end."""
BUDGET_PEER_RATIO = 0.1
"""Our CLI apply (and destroy) of 1,000 resources ÷ Terraform's of 1,000 null resources."""
BUDGET_SYNC_RATIO = 2.0
BUDGET_LATENCY_RATIO = 1.5


@dataclass
class SizeFigures:
    backend: str
    run: ApplyRun
    limit_create: float
    limit_delete: float

    @property
    def apply_ratio(self) -> float:
        return self.run.apply_seconds / self.limit_create

    @property
    def destroy_ratio(self) -> float:
        return self.run.destroy_seconds / self.limit_delete


@dataclass
class Figures:
    machine: str
    spawn: dict[str, float] = field(default_factory=dict)
    sizes: list[SizeFigures] = field(default_factory=list)
    mtls: list[SizeFigures] = field(default_factory=list)
    """The same apply with plugin mTLS on, then off."""
    liveness: dict[str, float] = field(default_factory=dict)
    small_apply: dict[str, float] = field(default_factory=dict)
    """The seed's three-resource apply, submit to Success, in the same units as ``spawn``."""
    sync: SyncFigures | None = None
    peer: list[PeerFigures] = field(default_factory=list)
    smoke: bool = False
    """``--quick``: the CI smoke run, whose rows carry no verdict."""
    extra: list[Row] = field(default_factory=list)
    """Rows of the other bench modules (``bench.__main__.ROW_SOURCES``)."""


class StoreContext:
    """None for SQLite (the agent's default); for PostgreSQL a fresh schema, dropped afterwards."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._schema = f"formae_bench_{secrets.token_hex(4)}"

    def __enter__(self) -> str | None:
        if self.backend == "sqlite":
            return None
        asyncio.run(self._execute(f'CREATE SCHEMA "{self._schema}"'))
        return f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}search_path={self._schema}"

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.backend != "sqlite":
            asyncio.run(self._execute(f'DROP SCHEMA "{self._schema}" CASCADE'))

    async def _execute(self, sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_URL)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()


INTRO = """\
Each apply creates N fake-aws resources (per ten: a VPC, four subnets referring to it, five
buckets) through a real agent with persistence on, an out-of-process plugin and no rate limit,
then destroys them. **limit** is the same plugin operations sent straight over the same gRPC
stream with the same concurrency (256 in flight) and the same dependency waves, without the
agent: no planner, DAG or datastore. The ratio is agent time ÷ limit, measured in the same run."""

BOUNDS = """\
## What bounds these figures

- **Apply and destroy** cost the agent about 0.3 ms of event-loop time per operation beyond the
  transport: two persisted steps per resource update (group-committed, a few hundred per
  transaction), the executor's bookkeeping, and, for an apply, the submission itself (≈ 1 s of a
  10,000-resource apply: parsing and validating the 2 MB forma, planning, writing 10,000 update
  rows). Everything runs on one Python event loop; the database's own work is on its thread.
  What would move it: a compiled JSON and validation path (msgspec or orjson) for submission, or
  the datastore writes in a process of their own so that they stop sharing the loop's core.
- **The transport limit** itself is Python gRPC: about 0.2 ms of CPU per message at each end.
- **Spawn → registered** is mostly CPython starting and importing asyncio, gRPC and protobuf
  (≈ 120 ms on a quiet machine); the TLS handshake, the cookie proof and the announcement take about
  10 ms. Since the one-vocabulary change the SDK also imported pydantic through `formae.model` (a
  third of the time); `formae.model` now loads its pydantic models only when asked for. What would
  move it further: importing less at plugin start (protobuf
  descriptors built lazily), or a plugin in a compiled language, which the protocol allows.
  `scripts/bootstrap` byte-compiles formae so a plugin start never recompiles it.
- **100,000 resources** (issue 15). What the profiles (py-spy `--gil` on the agent, cProfile and
  tracemalloc of the submission path in-process) showed and what was done:
  - plan-time JSON Schema validation was 41 µs of CPU per resource in python-jsonschema; each schema is
    now compiled once per agent and also by jsonschema-rs, which answers *valid* for the common case
    (no marker, or a top-level reference replaced by a provable stand-in): 10,000 resources 409 → 65 ms;
  - a forma was parsed three times per submission (once off the loop, twice on it) and the inventory
    read twice; now once each. `check_shape` and the API's NaN walk no longer build a path per value
    (10,000: 80 → 39 ms); ASCII names and values are checked in C;
  - the executor started every ready update as a task at once: at 100,000 that is 60,000 suspended
    tasks (hundreds of MB) and one loop turn of several seconds, long enough for the agent to miss its
    own plugin's heartbeats and restart it (a crash loop that failed the apply). Tasks are now bounded
    per namespace (4 × the in-flight bound), and a heartbeat check that wakes late judges nobody;
  - every request and result crossed the secret gate as a full copy, with a JSON dump per string of
    every result: a tenth of the agent's CPU at 100,000; untouched now when there is no secret.
  What is left, by tracemalloc at 20,000 scaled to 100,000: the forma as parsed JSON ≈ 60 MB (kept by
  the command for its life), as pydantic models ≈ 113 MB, the changeset ≈ 52 MB, the stored update
  records ≈ 30 MB, the DAG ≈ 15 MB; a simulation of the same forma while they live adds its own parse,
  plan and a read of the 100,000-row inventory. CPU per resource at submission is ≈ 20 µs to parse
  and validate, ≈ 25 µs to plan, plus decoding the inventory's rows: a 100,000 `--simulate` is bounded
  by those Python walks, and on this shared machine by whatever CPU the others leave.
- **A dead remote plugin** is noticed by the closed connection when its process dies (≈ 30 ms),
  and by missing heartbeats when its host goes silent: 2.5 s, `FORMAE_HEARTBEAT_TIMEOUT`
  (heartbeats every 0.5 s). A dead local plugin is also noticed by its connection closing."""

HEADER = (
    "| backend | N | apply s | limit s | apply ratio | destroy s | limit s | destroy ratio"
    " | peak RSS MB | failed |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def row(s: SizeFigures) -> str:
    r = s.run
    return (
        f"| {s.backend} | {r.resources} "
        f"| {r.apply_seconds:.2f} | {s.limit_create:.2f} | {s.apply_ratio:.2f}× "
        f"| {r.destroy_seconds:.2f} | {s.limit_delete:.2f} | {s.destroy_ratio:.2f}× "
        f"| {r.peak_rss_mb:.0f} | {r.failed} |"
    )


def table(f: Figures) -> str:
    lines = [f"machine: {f.machine}", "", HEADER, *(row(s) for s in f.sizes), *(row(s) for s in f.mtls), ""]
    if len(f.mtls) == 2:
        lines.append(_mtls_cost(f.mtls))
    lines.append(
        f"spawn → Plugin registered: median {f.spawn['median_ms']:.0f} ms, p95 {f.spawn['p95_ms']:.0f} ms "
        f"(budget ≤ {BUDGET_SPAWN_MS:.0f} ms)"
    )
    for what, seconds in f.liveness.items():
        lines.append(f"dead plugin noticed, {what}: {seconds * 1000:.0f} ms")
    if f.small_apply:
        lines.append(_small_apply(f))
    if f.sync is not None:
        lines.append(sync_lines(f.sync))
    lines += ["", budgets.table(budget_rows(f))]
    return "\n".join(lines)


def sync_lines(s: SyncFigures) -> str:
    running = "" if s.sync_still_running else " (the sync ended before the last apply did)"
    return (
        f"sync of {s.resources} managed resources: {s.sync_seconds:.2f} s, limit {s.limit_seconds:.2f} s,"
        f" {s.sync_ratio:.2f}× (budget ≤ {BUDGET_SYNC_RATIO:.0f}×)\n"
        f"{LATENCY_DESCRIPTION}: {s.apply_alone_seconds:.2f} s alone, {s.apply_during_sync_seconds:.2f} s"
        f" during the sync, {s.latency_ratio:.2f}× (budget ≤ {BUDGET_LATENCY_RATIO}×){running}"
    )


LATENCY_DESCRIPTION = "100-resource apply, submit to Success (median)"


def sync_section(s: SyncFigures) -> list[str]:
    """The synchronizer's part of docs/benchmarks.md."""
    return [
        "## Sync",
        "",
        "A real agent (SQLite) that applied N resources reads every one back through fake-aws"
        " (`POST /api/v1/sync` to its end); **limit** is the same N reads sent straight over the same"
        " gRPC stream with the synchronizer's concurrency (64 in flight), measured in the same run."
        " Then a 100-resource apply in another stack is timed alone and while that sync runs.",
        "",
        "| figure | measured | limit or baseline | ratio | budget | |",
        "|---|---:|---:|---:|---|---|",
        f"| sync of {s.resources} managed resources | {s.sync_seconds:.2f} s | {s.limit_seconds:.2f} s"
        f" | {s.sync_ratio:.2f}× | ≤ {BUDGET_SYNC_RATIO:.0f}× | {_met(s.sync_ratio <= BUDGET_SYNC_RATIO)} |",
        f"| {LATENCY_DESCRIPTION} while the sync runs | {s.apply_during_sync_seconds:.2f} s"
        f" | {s.apply_alone_seconds:.2f} s | {s.latency_ratio:.2f}× | ≤ {BUDGET_LATENCY_RATIO}×"
        f" | {_met(s.latency_ratio <= BUDGET_LATENCY_RATIO)} |",
        "",
    ]


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _small_apply(f: Figures) -> str:
    s = f.small_apply
    return (
        f"three-resource apply (VPC, subnet, bucket), submit to Success: median {s['median_ms']:.0f} ms, "
        f"p95 {s['p95_ms']:.0f} ms over {s['runs']:.0f} runs"
    )


def _mtls_cost(runs: list[SizeFigures]) -> str:
    with_tls, without = runs
    extra = with_tls.run.apply_seconds / without.run.apply_seconds - 1
    return (
        f"mTLS cost, {with_tls.run.resources}-resource apply: {with_tls.run.apply_seconds:.2f} s with, "
        f"{without.run.apply_seconds:.2f} s without ({extra:+.0%})"
    )


def budget_rows(f: Figures) -> list[Row]:
    """Every budget this harness measures, then those of the modules in ``Figures.extra``."""
    rows = [*_size_rows(f), *_simulate_rows(f)]
    cpu = f"the plugin's own CPU {f.spawn['cpu_median_ms']:.0f} ms" if "cpu_median_ms" in f.spawn else ""
    rows.append(
        at_most(
            "plugin spawn → `Plugin registered` (median)",
            f.spawn["median_ms"],
            BUDGET_SPAWN_MS,
            " ms",
            note=cpu,
        )
    )
    rows.extend(_liveness_rows(f))
    rows.extend(_peer_rows(f))
    if f.smoke:  # small N: the figures show the harness ran, and judge nothing
        rows = [
            replace(r, met=None, note="; ".join(filter(None, [r.note, "smoke run, no verdict"])))
            for r in rows
        ]
    return rows + f.extra


def _size_rows(f: Figures) -> list[Row]:
    rows = []
    for s in _largest(f.sizes):
        n, where = s.run.resources, f"{s.run.resources:,} on {s.backend}"
        rows.append(
            at_most(
                f"{n:,}-resource apply ÷ transport limit, {s.backend}", s.apply_ratio, BUDGET_RATIO, "×", 2
            )
        )
        rss_budget = BUDGET_RSS_MB_100K if n >= 100_000 else BUDGET_RSS_MB
        rows.append(at_most(f"agent peak RSS, {where}", s.run.peak_rss_mb, rss_budget, " MB"))
        rows.append(Row(f"failed operations, {where}", str(s.run.failed), "0", s.run.failed == 0))
    return rows


def _largest(sizes: list[SizeFigures]) -> list[SizeFigures]:
    """The largest run of each backend (TLS on), and the 10,000 run beside a larger one."""
    chosen: list[SizeFigures] = []
    for backend in dict.fromkeys(s.backend for s in sizes):
        runs = sorted((s for s in sizes if s.backend == backend), key=lambda s: s.run.resources)
        chosen.extend(s for s in runs if s.run.resources == 10_000 and runs[-1] is not s)
        chosen.append(runs[-1])
    return chosen


def _simulate_rows(f: Figures) -> list[Row]:
    rows = []
    for s in f.sizes:
        budget = BUDGET_SIMULATE_S.get(s.run.resources)
        if budget is None or s.backend != "sqlite":
            continue
        what = f"`--simulate` of {s.run.resources:,} against {s.run.resources:,} managed (no-op), end to end"
        api = f"agent alone {s.run.simulate_api_seconds:.2f} s"
        rows.append(at_most(what, s.run.simulate_cli_seconds, budget, " s", 2, api))
    return rows


def _liveness_rows(f: Figures) -> list[Row]:
    local = f.liveness.get("local SIGKILL", float("nan"))
    remote = max(v for k, v in f.liveness.items() if k.startswith("remote")) if f.liveness else float("nan")
    return [
        at_most("dead local plugin noticed", local * 1000, BUDGET_LOCAL_DEATH_S * 1000, " ms"),
        at_most("dead remote plugin noticed (worst case)", remote, BUDGET_REMOTE_DEATH_S, " s", 2),
    ]


def _peer_rows(f: Figures) -> list[Row]:
    rows = []
    for p in f.peer:
        what = f"{p.resources:,} resources, ours ÷ Terraform's (null provider)"
        budget = BUDGET_PEER_RATIO if p.resources == 1000 else None
        if p.peer is None:
            rows.append(skipped(what, f"≤ {budget}×" if budget else "", p.skipped))
            continue
        for verb, ours, theirs, ratio in (
            ("apply", p.apply_seconds, p.peer.apply_seconds, p.apply_ratio),
            ("destroy", p.destroy_seconds, p.peer.destroy_seconds, p.destroy_ratio),
        ):
            note = f"{ours:.2f} s ÷ {theirs:.2f} s"
            if budget is None:
                rows.append(Row(f"{verb}, {what}", f"{ratio:.3f}×", "", None, note))
            else:
                rows.append(at_most(f"{verb}, {what}", ratio, budget, "×", 3, note))
    return rows


def write(f: Figures, markdown: Path, plot: Path) -> None:
    _plot(f, plot)
    body = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {f.machine}, with `python -m bench` (see the README).",
        "",
        INTRO,
        "",
        HEADER,
        *(row(s) for s in f.sizes),
        "",
        f"![apply and destroy time against resource count]({plot.name})",
        "",
        "The cost of mutual TLS between agent and plugins (the same apply, with and without):",
        "",
        HEADER,
        *(row(s) for s in f.mtls),
        "",
        _mtls_cost(f.mtls) if len(f.mtls) == 2 else "",
        "",
        budgets.table(budget_rows(f)),
        "",
        f"Plugin spawn → `Plugin registered` over {f.spawn['runs']:.0f} runs: "
        f"median {f.spawn['median_ms']:.0f} ms, "
        f"p95 {f.spawn['p95_ms']:.0f} ms, min {f.spawn['min_ms']:.0f} ms, max {f.spawn['max_ms']:.0f} ms.",
        "",
        f"The seed's first apply (a VPC, a subnet referring to it, a bucket): {_small_apply(f)}."
        if f.small_apply
        else "",
        "",
        "Time for the agent to mark a dead plugin unhealthy (from the signal to the REST API saying so):",
        "",
        *(f"- {what}: {seconds * 1000:.0f} ms" for what, seconds in f.liveness.items()),
        "",
        *(sync_section(f.sync) if f.sync is not None else []),
        BOUNDS,
        "",
    ]
    markdown.write_text("\n".join(body), encoding="utf-8")


def _plot(f: Figures, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for backend in sorted({s.backend for s in f.sizes}):
        runs = sorted((s for s in f.sizes if s.backend == backend), key=lambda s: s.run.resources)
        counts = [s.run.resources for s in runs]
        axis.plot(counts, [s.run.apply_seconds for s in runs], marker="o", label=f"apply ({backend})")
        axis.plot(
            counts,
            [s.run.destroy_seconds for s in runs],
            marker="s",
            linestyle="--",
            label=f"destroy ({backend})",
        )
        axis.plot(
            counts,
            [s.limit_create for s in runs],
            marker="^",
            linestyle=":",
            label=f"transport limit ({backend} run)",
        )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("resources")
    axis.set_ylabel("seconds")
    axis.set_title("formae: apply / destroy wall time against the transport limit")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
