"""The peer, in the same run: our CLI-driven apply and destroy beside Terraform's of the same count.

Both are timed as a user sees them, whole processes from exec to exit: ``formae apply FILE
--watch`` and ``formae destroy FILE --watch`` of fake-aws resources against a running agent
(SQLite), and ``terraform apply -auto-approve`` / ``terraform destroy -auto-approve`` of null
resources in the same shape (``bench.terraform``). Where Terraform cannot be installed the row
says why instead of a figure.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import agent_runs, terraform, workload
from bench.cli_runs import run_cli

FAKE_AWS = Path(sys.executable).parent / "fake-aws-plugin"


@dataclass(frozen=True)
class PeerFigures:
    resources: int
    apply_seconds: float
    destroy_seconds: float
    peer: terraform.PeerRun | None
    """None when Terraform could not be run; ``skipped`` says why."""
    skipped: str = ""

    @property
    def apply_ratio(self) -> float:
        """Ours ÷ Terraform's."""
        return self.apply_seconds / self.peer.apply_seconds if self.peer else float("nan")

    @property
    def destroy_ratio(self) -> float:
        return self.destroy_seconds / self.peer.destroy_seconds if self.peer else float("nan")


def measure(sizes: list[int], *, install: bool = True) -> list[PeerFigures]:
    """Ours and Terraform's at each size; ``install`` False uses Terraform only if already cached."""
    try:
        tf: terraform.Terraform | None = terraform.install(download=install)
        skipped = ""
    except terraform.Unavailable as error:
        tf, skipped = None, f"Terraform not run: {error}"
        print(skipped, file=sys.stderr, flush=True)
    figures = []
    for size in sizes:
        apply, destroy = _ours(size)
        peer = terraform.apply_and_destroy(tf, size) if tf is not None else None
        figures.append(PeerFigures(len(workload.forma(size)["resources"]), apply, destroy, peer, skipped))
    return figures


def _ours(size: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="formae-bench-") as home:
        agent = agent_runs.start_agent(Path(home), None, FAKE_AWS)
        try:
            path = Path(home) / "forma.json"
            path.write_text(json.dumps(workload.forma(size)), encoding="utf-8")
            applied = run_cli(agent, "apply", str(path), "--watch")
            destroyed = run_cli(agent, "destroy", str(path), "--watch")
        finally:
            agent.stop()
            agent.cleanup()
    return applied.seconds, destroyed.seconds
