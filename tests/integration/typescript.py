"""Where the TypeScript SDK's build is, for tests that run TypeScript plugins against a real agent.

``scripts/test-typescript`` (run by ``scripts/test`` before pytest) installs and builds it. Without
node or the build these tests skip, except under CI, where they must run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SDK = Path(__file__).resolve().parents[2] / "sdk" / "typescript"
NOTES_EXAMPLE = SDK / "dist-examples" / "notes.js"


def node() -> str:
    """The node executable; skips (fails under CI) without node or the SDK's build."""
    found = shutil.which("node")
    if found and NOTES_EXAMPLE.exists() and (SDK / "dist" / "index.js").exists():
        return found
    message = "needs node and the TypeScript SDK built (scripts/test-typescript)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def wrapper(path: Path, script: Path) -> Path:
    """An installable executable for a node program: absolute paths and ``exec``, as protocol.md §11 says."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nexec {node()} {script} "$@"\n', encoding="utf-8")
    path.chmod(0o755)
    return path
