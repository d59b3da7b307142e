"""``tiny``: a plugin written out by the tests in any version, as a plain executable or a Python package.

Its one type, ``Tiny::Thing``, remembers which version of the plugin served it (``ServedBy``), and a
create given ``WaitFor: PATH`` touches ``PATH.started`` and then waits until ``PATH`` exists: a call
the test holds in flight for as long as it likes, to see a plugin being replaced drain it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SOURCE = '''
"""tiny {version}: a plugin for formae's install tests."""

import asyncio
import pathlib

from formae.plugin import ErrorCode, Operation, ProgressResult, ResourcePlugin, ResourceSchema, run

VERSION = "{version}"


class Tiny(ResourcePlugin):
    name = "tiny"
    namespace = "Tiny"
    version = VERSION

    def schemas(self):
        return [ResourceSchema("Tiny::Thing", identifier="Name", create_only=("Name",))]

    async def create(self, request):
        gate = request.properties.get("WaitFor")
        if gate:
            pathlib.Path(gate + ".started").touch()
            while not pathlib.Path(gate).exists():
                await asyncio.sleep(0.02)
        properties = {{**request.properties, "ServedBy": VERSION}}
        return ProgressResult.success(Operation.CREATE, request.properties["Name"], properties)

    async def read(self, request):
        return ProgressResult.failure(Operation.READ, ErrorCode.NOT_FOUND, "tiny forgets")

    async def update(self, request):
        properties = {{**request.desired_properties, "ServedBy": VERSION}}
        return ProgressResult.success(Operation.UPDATE, request.native_id, properties)

    async def delete(self, request):
        return ProgressResult.success(Operation.DELETE, request.native_id)


def main():
    run(Tiny())


if __name__ == "__main__":
    main()
'''

PYPROJECT = """
[build-system]
requires = ["setuptools>=69", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "formae-tiny"
version = "{version}"
dependencies = ["formae"]

[project.scripts]
tiny-plugin = "formae_tiny:main"
"""


def tiny_executable(directory: Path, version: str) -> Path:
    """``tiny-plugin`` as one executable file run by this Python: a plugin that is not a package."""
    path = directory / f"tiny-{version}" / "tiny-plugin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n" + SOURCE.format(version=version), encoding="utf-8")
    path.chmod(0o755)
    return path


def tiny_package(directory: Path, version: str) -> Path:
    """A source tree of the ``formae-tiny`` package (pyproject.toml, one module)."""
    root = directory / f"formae-tiny-{version}"
    (root / "formae_tiny").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT.format(version=version)), encoding="utf-8")
    (root / "formae_tiny" / "__init__.py").write_text(SOURCE.format(version=version), encoding="utf-8")
    return root


def build_wheel(source: Path, out: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = out.glob(f"formae_tiny-{source.name.rsplit('-', 1)[1]}-*.whl")
    return wheel


def build_sdist(source: Path, out: Path) -> Path:
    script = f"import setuptools.build_meta as b; print(b.build_sdist({str(out)!r}))"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=source, check=True, capture_output=True, text=True, timeout=300
    )
    return out / done.stdout.strip().splitlines()[-1]
