"""Python packages: each plugin version in a virtualenv of its own, filled by pip.

pip does the work we would otherwise get wrong (building sdists and source trees, resolving
dependencies, indexes and find-links). First the package becomes one wheel (``pip wheel
--no-deps``: a source tree or sdist is built once, a requirement fetched; a wheel is taken as it
is), whose metadata names the package and its version before anything is installed (the
virtualenv's path depends on them, and a virtualenv cannot be moved once made); then a virtualenv at
its final place, and ``pip --python`` installs formae and that wheel into it.

formae itself comes from where the running formae came from: the same source tree when it was
installed from one (editable or not), else ``formae==<its version>`` from the index.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import venv
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import HeaderParser
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


@contextmanager
def as_wheel(spec: str, options: PipOptions) -> Iterator[tuple[Path, Distribution]]:
    """``spec`` as one wheel file, and the name and version its metadata gives; kept while in use."""
    if spec.lower().endswith(".whl") and Path(spec).is_file():
        yield Path(spec), distribution_of(Path(spec))
        return
    with tempfile.TemporaryDirectory(prefix="formae-install-") as scratch:
        _pip(["wheel", "--no-deps", "--wheel-dir", scratch], options, [spec], f"cannot build {spec}")
        wheels = sorted(Path(scratch).glob("*.whl"))
        if len(wheels) != 1:
            raise InstallError(f"pip made {len(wheels)} wheels of {spec}, not one")
        yield wheels[0], distribution_of(wheels[0])


def distribution_of(wheel: Path) -> Distribution:
    """The ``Name`` and ``Version`` of a wheel's ``*.dist-info/METADATA``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            [member] = [
                n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            headers = HeaderParser().parsestr(archive.read(member).decode("utf-8"))
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise InstallError(f"{wheel.name} is not a wheel with one METADATA: {error}") from None
    if not headers["Name"] or not headers["Version"]:
        raise InstallError(f"{wheel.name}: its METADATA gives no Name or Version")
    return Distribution(str(headers["Name"]), str(headers["Version"]))


def make_virtualenv(directory: Path) -> Path:
    """A virtualenv without pip of its own (the installer's pip fills it); its python."""
    venv.EnvBuilder(with_pip=False, symlinks=True, clear=False).create(directory)
    return directory / "bin" / "python"


def install_into(python: Path, spec: str, options: PipOptions) -> None:
    """formae and ``spec`` into the virtualenv of ``python``.

    Without byte-compiling: that is half of what pip spends on a virtualenv of formae's size, and
    Python writes the bytecode of the modules the plugin imports when it first starts (as uv does).
    """
    command = ["--python", str(python), "install", "--no-compile"]
    _pip(command, options, [*formae_requirement(), spec], f"cannot install {spec}")


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
