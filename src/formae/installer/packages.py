"""Python packages: each plugin version in a virtualenv of its own, filled by pip.

pip does the work we would otherwise get wrong (building sdists and source trees, resolving
dependencies, indexes and find-links): first ``pip install --dry-run --report`` to learn the
package's name and version without installing anything (the virtualenv's path depends on them, and a
virtualenv cannot be moved once made), then a virtualenv at its final place, then ``pip --python``
to install formae and the plugin into it.

formae itself comes from where the running formae came from: the same source tree when it was
installed from one (editable or not), else ``formae==<its version>`` from the index.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import venv
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit

from formae import __version__
from formae.installer.errors import InstallError

PIP_TIMEOUT = 900.0
PLUGIN_PREFIX = "formae-"
SCRIPT_SUFFIX = "-plugin"


@dataclass(frozen=True)
class PipOptions:
    """What the user tells pip about where packages come from; passed on unchanged."""

    index_url: str | None = None
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    extra: tuple[str, ...] = field(default_factory=tuple)

    def arguments(self) -> list[str]:
        args = ["--index-url", self.index_url] if self.index_url else []
        for link in self.find_links:
            args += ["--find-links", link]
        return args + (["--no-index"] if self.no_index else []) + list(self.extra)


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str

    @property
    def plugin_name(self) -> str:
        """``formae-postgres`` → ``postgres``: the name the agent and the plugin directory use."""
        name = self.name.lower().replace("_", "-").replace(".", "-")
        return name.removeprefix(PLUGIN_PREFIX).removesuffix(SCRIPT_SUFFIX)


def identify(spec: str, options: PipOptions) -> Distribution:
    """The name and version ``spec`` would install, from pip's report of a dry run."""
    with tempfile.TemporaryDirectory(prefix="formae-install-") as scratch:
        report = Path(scratch) / "report.json"
        _pip(
            ["install", "--dry-run", "--no-deps", "--ignore-installed", "--report", str(report)],
            options,
            [spec],
            f"cannot find out what {spec} is",
        )
        try:
            found = json.loads(report.read_text(encoding="utf-8"))["install"]
            data = next(item for item in found if item.get("requested")) if found else None
        except (OSError, ValueError, KeyError, StopIteration):
            data = None
    if data is None:
        raise InstallError(f"pip did not report a package for {spec}")
    return Distribution(str(data["metadata"]["name"]), str(data["metadata"]["version"]))


def make_virtualenv(directory: Path) -> Path:
    """A virtualenv without pip of its own (the installer's pip fills it); its python."""
    venv.EnvBuilder(with_pip=False, symlinks=True, clear=False).create(directory)
    return directory / "bin" / "python"


def install_into(python: Path, spec: str, options: PipOptions) -> None:
    _pip(
        ["--python", str(python), "install"], options, [*formae_requirement(), spec], f"cannot install {spec}"
    )


def formae_requirement() -> list[str]:
    """How to install the formae that is running: from its source tree, or the same version from the index."""
    try:
        direct = metadata.distribution("formae").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        direct = None
    origin = json.loads(direct) if direct else {}
    url = urlsplit(str(origin.get("url", "")))
    if url.scheme == "file" and Path(unquote(url.path)).is_dir():
        path = unquote(url.path)
        return ["--editable", path] if origin.get("dir_info", {}).get("editable") else [path]
    return [f"formae=={__version__}"]


def plugin_script(python: Path, distribution: Distribution) -> Path:
    """The package's console script ``{name}-plugin`` (or its only ``*-plugin`` script)."""
    query = (
        "import importlib.metadata as m, json, sys;"
        "print(json.dumps([e.name for e in m.distribution(sys.argv[1]).entry_points"
        " if e.group == 'console_scripts']))"
    )
    done = subprocess.run(
        [str(python), "-c", query, distribution.name], capture_output=True, text=True, timeout=60, check=False
    )
    scripts = json.loads(done.stdout) if done.returncode == 0 else []
    wanted = f"{distribution.plugin_name}{SCRIPT_SUFFIX}"
    candidates = [wanted] if wanted in scripts else [s for s in scripts if s.endswith(SCRIPT_SUFFIX)]
    if len(candidates) != 1:
        raise InstallError(
            f"{distribution.name} {distribution.version} must have one console script named {wanted} "
            f"(in [project.scripts]); it has {scripts or 'none'}"
        )
    return python.parent / candidates[0]


def _pip(command: list[str], options: PipOptions, arguments: list[str], failure: str) -> None:
    args = [sys.executable, "-m", "pip", *command, "--quiet", "--disable-pip-version-check"]
    try:
        done = subprocess.run(
            [*args, *options.arguments(), *arguments],
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise InstallError(f"{failure}: pip did not finish within {PIP_TIMEOUT:.0f}s") from None
    except OSError as error:
        raise InstallError(f"{failure}: cannot run pip: {error}") from None
    if done.returncode != 0:
        detail = "\n".join(line for line in done.stderr.splitlines() if "is ignored" not in line)
        raise InstallError(f"{failure}; pip says:\n{detail.strip()[-4000:]}")
