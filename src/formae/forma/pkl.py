"""Evaluate Pkl formas with the ``pkl`` CLI.

Pkl is formae's forma language. Rather than reimplement it, we run the official CLI
(``pkl eval -f json``) and read the JSON it prints; the user's Pkl error messages come
through untouched, which is what they can act on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from formae.forma.errors import FormaError

PKL_ENV_VAR = "FORMAE_PKL"
INSTALL_HINT = (
    "install the pkl CLI (https://pkl-lang.org/main/current/pkl-cli/index.html#installation), "
    "or run .ci/install-pkl from the formae repository to put it in .venv/bin; "
    f"set {PKL_ENV_VAR} to use a pkl binary that is not on PATH"
)
DEFAULT_TIMEOUT_SECONDS = 60.0


def find_pkl(source: str, environ: Mapping[str, str] | None = None) -> str:
    """The pkl binary to run: ``$FORMAE_PKL`` if set, else ``pkl`` on PATH or beside this Python."""
    env = os.environ if environ is None else environ
    explicit = env.get(PKL_ENV_VAR)
    if explicit:
        if not os.access(explicit, os.X_OK) or Path(explicit).is_dir():
            raise FormaError.single(source, f"{PKL_ENV_VAR}={explicit} is not an executable; {INSTALL_HINT}")
        return explicit
    found = shutil.which("pkl", path=env.get("PATH")) or _beside_python()
    if found is None:
        raise FormaError.single(source, f"cannot evaluate a Pkl forma: pkl is not on PATH; {INSTALL_HINT}")
    return found


def _beside_python() -> str | None:
    """Where .ci/install-pkl puts pkl: the virtualenv's bin, which is not on PATH unless activated."""
    return shutil.which("pkl", path=sysconfig.get_path("scripts"))


def evaluate_pkl(
    path: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """The JSON value that ``pkl eval -f json path`` renders."""
    source = str(path)
    command = [find_pkl(source, environ), "eval", "-f", "json", str(path)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise FormaError.single(source, f"pkl eval did not finish within {timeout:g}s") from None
    except OSError as error:
        raise FormaError.single(source, f"cannot run {command[0]}: {error}; {INSTALL_HINT}") from None
    if completed.returncode != 0:
        detail = completed.stderr.strip() or completed.stdout.strip()
        raise FormaError.single(source, f"pkl eval failed:\n{detail}")
    return _parse_json(source, completed.stdout)


def _parse_json(source: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FormaError.single(source, f"pkl eval printed invalid JSON: {error}") from None
