"""``formae plugin init``: what it generates passes its own tests and the conformance kit, in both languages.

The Python project's tests include a real agent (the ``formae_agent`` fixture) and the planner-in-the-
loop check; the TypeScript project is installed with npm from this checkout's SDK.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.typescript import node

pytestmark = pytest.mark.timeout(300)


def formae(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "formae", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )


def conformance(executable: Path, project: Path, namespace: str) -> dict[str, Any]:
    done = formae(
        "plugin",
        "conformance",
        str(executable),
        "--type",
        f"{namespace}::Example::Item",
        "--properties",
        "conformance/item.json",
        "--update-properties",
        "conformance/item-update.json",
        "--output",
        "json",
        cwd=project,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == 0, [c for c in report["checks"] if c["outcome"] == "fail"]
    return report


def test_a_python_project_passes_its_tests_and_the_conformance_kit(tmp_path: Path) -> None:
    assert formae("plugin", "init", "acme-store", "--language", "python", cwd=tmp_path).returncode == 0
    project = tmp_path / "acme-store"
    env = {**os.environ, "PYTHONPATH": str(project / "src")}

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout

    executable = tmp_path / "acme-store-plugin"
    executable.write_text(
        f'#!/bin/sh\nPYTHONPATH={project / "src"} exec {sys.executable} -m acme_store "$@"\n'
    )
    executable.chmod(0o755)
    assert conformance(executable, project, "AcmeStore")["counts"]["fail"] == 0


def test_a_typescript_project_installs_passes_its_tests_and_the_conformance_kit(tmp_path: Path) -> None:
    node()  # skips (fails under CI) without node and the SDK's build
    assert (
        formae("plugin", "init", "acme-store", "-l", "typescript", "-d", "ts", cwd=tmp_path).returncode == 0
    )
    project = tmp_path / "ts"

    def npm(*args: str) -> str:
        done = subprocess.run(
            ["npm", *args], cwd=project, capture_output=True, text=True, timeout=200, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    npm("install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error")
    assert "# pass 1" in npm("test")
    subprocess.run([node(), "scripts/wrapper.mjs"], cwd=project, check=True, capture_output=True, timeout=30)
    wrapper = project / "bin" / "acme-store-plugin"
    assert wrapper.read_text().splitlines()[1].startswith('exec "/')

    assert conformance(wrapper, project, "AcmeStore")["counts"]["fail"] == 0
