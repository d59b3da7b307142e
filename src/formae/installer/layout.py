"""Where installed plugins live, what each version directory records, and removing them."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import semver

from formae.installer.errors import InstallError

RECORD = "install.json"


@dataclass(frozen=True)
class InstalledVersion:
    name: str
    version: semver.Version
    directory: Path
    record: dict[str, Any]
    """What ``install.json`` says; empty for a version installed by hand (a copied executable)."""

    @property
    def executable(self) -> Path:
        return executable_path(self.directory, self.name)


def plugin_root(home: Path, name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise InstallError(f"{name!r} is not a plugin name")
    return home / "plugins" / name


def version_directory(home: Path, name: str, version: semver.Version) -> Path:
    return plugin_root(home, name) / f"v{version}"


def executable_path(directory: Path, name: str) -> Path:
    return directory / f"{name}-plugin"


def semantic_version(text: str, what: str) -> semver.Version:
    """``text`` as a semantic version; ``1.2`` is read as ``1.2.0``, as PyPI packages often write it."""
    try:
        return semver.Version.parse(text, optional_minor_and_patch=True)
    except ValueError:
        raise InstallError(
            f"{what} has version {text!r}, which is not a semantic version (MAJOR.MINOR.PATCH): "
            "the agent orders a plugin's versions by it"
        ) from None


def write_record(directory: Path, record: dict[str, Any]) -> None:
    (directory / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def publish(directory: Path, name: str, target: Path) -> Path:
    """Make ``{name}-plugin`` in ``directory`` a symlink to ``target``, in one rename; the new path."""
    final = executable_path(directory, name)
    staged = directory / f".{name}-plugin.new"
    staged.unlink(missing_ok=True)
    staged.symlink_to(os.path.relpath(target, directory))
    staged.replace(final)
    return final


def installed_versions(home: Path, name: str) -> list[InstalledVersion]:
    """Every installed version of ``name``, newest (the one the agent runs) first."""
    root = plugin_root(home, name)
    if not root.is_dir():
        return []
    found = [v for entry in root.iterdir() if (v := _version_in(name, entry)) is not None]
    return sorted(found, key=lambda v: v.version, reverse=True)


def _version_in(name: str, entry: Path) -> InstalledVersion | None:
    if not entry.is_dir() or not entry.name.startswith("v"):
        return None
    try:
        version = semver.Version.parse(entry.name[1:])
    except ValueError:
        return None
    try:
        record = json.loads((entry / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    return InstalledVersion(name, version, entry, record if isinstance(record, dict) else {})


def uninstall(home: Path, name: str, version: str | None = None) -> list[InstalledVersion]:
    """Remove one version of ``name`` (or all of them); the versions removed.

    The executable goes first, so an agent rescanning meanwhile sees the version gone at once
    rather than a directory being emptied under a running plugin's feet.
    """
    versions = installed_versions(home, name)
    if version is not None:
        wanted = semantic_version(version.removeprefix("v"), f"--version {version}")
        versions = [v for v in versions if v.version == wanted]
    if not versions:
        which = f"version {version} of " if version else ""
        raise InstallError(f"{which}plugin {name} is not installed under {plugin_root(home, name)}")
    for installed in versions:
        installed.executable.unlink(missing_ok=True)
        shutil.rmtree(installed.directory)
    root = plugin_root(home, name)
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    return versions
