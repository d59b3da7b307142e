"""Looking for secrets everywhere they must not be: under an agent's home, in outputs, on command lines.

Shared by the secret tests of formae (fake-aws) and of the real plugins. A test runs the CLI
through ``Cli``, which keeps every output and a snapshot of every command line on the host taken
while it ran; ``assert_nowhere`` then searches each secret, byte for byte, in all of it, in every
file under the home, and in whatever else the test collected (API answers, extracted formas).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from formae.testing import AgentProcess

FORMAE = Path(sys.executable).parent / "formae"


def secret(tag: str) -> str:
    """A value no test could have typed by chance, searched for later."""
    return f"{tag}-{secrets.token_hex(12)}"


def opaque(value: str, **extra: str) -> dict[str, str]:
    """A secret given inline, as ``formae.secret(…)`` writes it in Pkl."""
    return {"$value": value, "$visibility": "Opaque", **extra}


class Cli:
    """The ``formae`` CLI against one agent, every output and the host's command lines kept."""

    def __init__(self, agent: AgentProcess) -> None:
        self.agent = agent
        self.outputs: list[str] = []
        self.command_lines: list[str] = []

    def __call__(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(FORMAE), *args],
            env={**os.environ, **self.agent.cli_env(), "COLUMNS": "250"},
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        self.outputs += [done.stdout, done.stderr]
        self.snapshot()
        if expect is not None:
            assert done.returncode == expect, f"formae {' '.join(args)}: {done.stderr}{done.stdout}"
        return done

    def snapshot(self) -> None:
        """Every command line on the host now (the agent's, its plugins', the CLI's own)."""
        self.command_lines.append(
            subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        )


def files_holding(root: Path, value: str) -> list[str]:
    needle = value.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def assert_nowhere(values: dict[str, str], home: Path, cli: Cli, *collected: str) -> None:
    """No secret in ``cli``'s outputs or in ``collected``, under ``home``, or on a command line."""
    everything = "\n".join([*cli.outputs, *collected])
    for name, value in values.items():
        assert value not in everything, f"the {name} secret is in an output"
        assert files_holding(home, value) == [], f"the {name} secret is stored under the home"
        assert not any(value in lines for lines in cli.command_lines), (
            f"the {name} secret is on a command line"
        )
