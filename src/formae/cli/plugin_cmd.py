"""``formae plugin install``: put a plugin executable where the agent's PluginManager finds it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import semver

DESCRIBE_TIMEOUT = 30.0


class InstallError(Exception):
    pass


def install_plugin(executable: Path, home: Path) -> Path:
    """Copy ``executable`` to ``{home}/plugins/{name}/v{version}/{name}-plugin``; the new path.

    The plugin names itself: it is run once with ``--describe`` (the SDK answers that).
    """
    if not executable.is_file():
        raise InstallError(f"{executable} is not a file")
    description = _describe(executable)
    name, version = str(description.get("name", "")), str(description.get("version", ""))
    if not name or "/" in name:
        raise InstallError(f"{executable} describes itself with an invalid name {name!r}")
    try:
        semver.Version.parse(version)
    except ValueError:
        raise InstallError(f"{executable} has version {version!r}, which is not a semantic version") from None
    destination = home / "plugins" / name / f"v{version}" / f"{name}-plugin"
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executable, destination)
    destination.chmod(0o755)
    return destination


def _describe(executable: Path) -> dict[str, object]:
    try:
        done = subprocess.run(
            [str(executable), "--describe"],
            capture_output=True,
            text=True,
            timeout=DESCRIBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InstallError(f"cannot run {executable} --describe: {error}") from None
    if done.returncode != 0:
        raise InstallError(f"{executable} --describe failed ({done.returncode}): {done.stderr.strip()}")
    try:
        description = json.loads(done.stdout)
    except ValueError:
        raise InstallError(f"{executable} --describe did not print JSON; is it a formae plugin?") from None
    if not isinstance(description, dict):
        raise InstallError(f"{executable} --describe printed {type(description).__name__}, not an object")
    return description
