"""`formae plugin install|uninstall|info` against a running agent: no restart, graceful upgrades.

The executable tests are quick; the package test (directory, wheel, sdist, requirement) runs pip
with ``--no-index`` against a wheelhouse of the dependencies fetched once and kept in the user's
cache, so it needs no index and no network, and pays only for building and filling virtualenvs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from formae.testing import AgentProcess, pid_alive, wait_until
from tests.integration.harness import FAKE_AWS, network_forma
from tests.integration.tiny_plugin import build_sdist, build_wheel, tiny_executable, tiny_package

REPO = Path(__file__).resolve().parents[2]
POSTGRES = REPO / "plugins" / "postgres"

pytestmark = pytest.mark.timeout(120)


def formae(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FORMAE_HOME": str(home)}
    env.pop("FORMAE_API_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "formae", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def installed(home: Path, spec: str, *options: str) -> str:
    done = formae(home, "plugin", "install", spec, "--home", str(home), *options)
    assert done.returncode == 0, done.stderr
    return done.stdout


def info(home: Path, name: str) -> dict[str, Any]:
    done = formae(home, "plugin", "info", name, "--home", str(home), "-o", "json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def thing_forma(stack: str, name: str, **properties: Any) -> dict[str, Any]:
    return {
        "stacks": [{"label": stack}],
        "targets": [{"label": "t", "namespace": "Tiny"}],
        "resources": [
            {
                "label": name,
                "type": "Tiny::Thing",
                "stack": stack,
                "target": "t",
                "properties": {"Name": name, **properties},
            }
        ],
    }


def plugins_of(agent: AgentProcess, namespace: str) -> list[tuple[str, str]]:
    return sorted((p["version"], p["node"]) for p in agent.plugins() if p["namespace"] == namespace)


@pytest.fixture
def bare_agent(tmp_path: Path) -> Iterator[AgentProcess]:
    """An agent whose home has no plugin installed yet (fake-aws, once installed, keeps its cloud there)."""
    agent = AgentProcess(tmp_path / "home", env={"FAKE_AWS_STATE_FILE": str(tmp_path / "fake-aws-cloud.db")})
    try:
        yield agent.start()
    finally:
        agent.cleanup()


def test_an_installed_executable_starts_without_restarting_the_agent(bare_agent: AgentProcess) -> None:
    home = bare_agent.home
    assert "installed fake-aws 1.0.0 (FakeAWS)" in installed(home, str(FAKE_AWS))

    bare_agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
    assert bare_agent.apply_and_wait(network_forma())["state"] == "Success"
    described = info(home, "fake-aws")
    assert [(v["version"], v["active"], v["kind"]) for v in described["installed"]] == [
        ("1.0.0", True, "executable")
    ]
    assert [r["health"] for r in described["running"]] == ["healthy"]


def test_uninstall_stops_the_plugin(bare_agent: AgentProcess) -> None:
    home = bare_agent.home
    installed(home, str(FAKE_AWS))
    bare_agent.wait_for_log(r"Plugin registered namespace=FakeAWS", timeout=15)
    [pid] = bare_agent.plugin_pids()

    done = formae(home, "plugin", "uninstall", "fake-aws", "--home", str(home))

    assert done.returncode == 0, done.stderr
    assert not (home / "plugins" / "fake-aws").exists()
    bare_agent.wait_for_log(r"Plugin retired namespace=FakeAWS", timeout=15)
    wait_until(lambda: not pid_alive(pid), 10, "the uninstalled plugin's process to end")
    assert plugins_of(bare_agent, "FakeAWS") == []
    again = formae(home, "plugin", "uninstall", "fake-aws", "--home", str(home))
    assert again.returncode == 1
    assert "not installed" in again.stderr


def test_a_newer_version_drains_the_old_one_before_stopping_it(
    bare_agent: AgentProcess, tmp_path: Path
) -> None:
    home = bare_agent.home
    installed(home, str(tiny_executable(tmp_path, "1.0.0")))
    bare_agent.wait_for_log(r"Plugin registered namespace=Tiny .*version=1\.0\.0", timeout=15)
    [old_pid] = bare_agent.plugin_pids()
    gate = tmp_path / "gate"
    held = bare_agent.apply(thing_forma("held", "a", WaitFor=str(gate)))["command_id"]
    wait_until(lambda: Path(f"{gate}.started").exists(), 15, "the create to be in flight on 1.0.0")

    installed(home, str(tiny_executable(tmp_path, "1.1.0")))

    bare_agent.wait_for_log(r"Plugin registered namespace=Tiny .*version=1\.1\.0", timeout=15)
    bare_agent.wait_for_log(r"Plugin draining namespace=Tiny node=tiny@\S+ in_flight=1", timeout=15)
    fresh = bare_agent.apply_and_wait(thing_forma("fresh", "b"))
    assert fresh["state"] == "Success", fresh
    assert pid_alive(old_pid), "the old version is stopped only once its call is answered"
    with bare_agent.client() as client:
        [b] = client.inventory("resources", "label:b")
    assert b["properties"]["ServedBy"] == "1.1.0"

    gate.touch()
    done = bare_agent.wait_command(held)
    assert done["state"] == "Success", done
    with bare_agent.client() as client:
        [a] = client.inventory("resources", "label:a")
    assert a["properties"]["ServedBy"] == "1.0.0"
    assert [u["attempts"] for u in done["updates"]] == [1], "the drained call was answered, not retried"
    bare_agent.wait_for_log(r"Plugin retired namespace=Tiny node=tiny@\S+ version=1\.0\.0", timeout=15)
    wait_until(lambda: not pid_alive(old_pid), 10, "the old version's process to end")
    assert [version for version, _ in plugins_of(bare_agent, "Tiny")] == ["1.1.0"]


def wheelhouse_requirements() -> list[str]:
    """What the installs below need from an index: formae's and postgres's dependencies, and what
    builds a package (formae itself, and the packages installed, are built from their sources)."""
    needed = {"wheel"}
    for path in (REPO / "pyproject.toml", POSTGRES / "pyproject.toml"):
        project = tomllib.loads(path.read_text())
        needed.update(project["project"]["dependencies"], project["build-system"]["requires"])
    return sorted(needed - {"formae"})


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of everything the installs need, so that they run with ``--no-index``.

    Fetched once and kept between runs in the user's cache, under a name that changes with the
    requirements: what is in it never depends on this tree's own code, which is always built anew.
    """
    requirements = wheelhouse_requirements()
    digest = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "formae-tests"
    kept = cache / f"wheelhouse-{digest}"
    if not kept.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix="wheelhouse-", dir=cache))
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "-w", str(building), *requirements],
            check=True,
            capture_output=True,
            timeout=600,
        )
        try:
            building.rename(kept)  # whole or not at all: a run cut short leaves no half wheelhouse
        except OSError:  # another run kept one first
            shutil.rmtree(building, ignore_errors=True)
    out = tmp_path_factory.mktemp("wheelhouse")  # the test adds tiny's wheel: a copy of its own
    for wheel in kept.glob("*.whl"):
        os.link(wheel, out / wheel.name)
    return out


@pytest.mark.timeout(600)  # four virtualenvs filled by pip; a minute each on a machine shared by a team
def test_packages_install_into_virtualenvs_of_their_own(
    bare_agent: AgentProcess, wheelhouse: Path, tmp_path: Path
) -> None:
    home = bare_agent.home
    offline = ("--no-index", "--find-links", str(wheelhouse))
    build_wheel(tiny_package(tmp_path, "1.2.0"), wheelhouse)  # what the requirement below finds

    installed(home, str(REPO / "plugins" / "postgres"), *offline)  # a package directory
    bare_agent.wait_for_log(r"Plugin registered namespace=PostgreSQL", timeout=30)
    venv = home / "plugins" / "postgres" / "v0.1.0" / "venv"
    assert (home / "plugins" / "postgres" / "v0.1.0" / "postgres-plugin").resolve().is_relative_to(venv)

    installed(home, str(build_wheel(tiny_package(tmp_path, "1.0.0"), tmp_path / "dist")), *offline)
    bare_agent.wait_for_log(r"Plugin registered namespace=Tiny .*version=1\.0\.0", timeout=30)
    installed(home, str(build_sdist(tiny_package(tmp_path, "1.1.0"), tmp_path / "dist")), *offline)
    bare_agent.wait_for_log(r"Plugin retired namespace=Tiny .*version=1\.0\.0", timeout=60)
    installed(home, "formae-tiny==1.2.0", *offline)
    bare_agent.wait_for_log(r"Plugin retired namespace=Tiny .*version=1\.1\.0", timeout=60)
    assert [version for version, _ in plugins_of(bare_agent, "Tiny")] == ["1.2.0"]

    kinds = [(v["version"], v["kind"], v["distribution"]) for v in info(home, "tiny")["installed"]]
    assert kinds == [
        ("1.2.0", "requirement", "formae-tiny"),
        ("1.1.0", "sdist", "formae-tiny"),
        ("1.0.0", "wheel", "formae-tiny"),
    ]
    assert (
        formae(home, "plugin", "uninstall", "tiny", "--version", "1.2.0", "--home", str(home)).returncode == 0
    )
    bare_agent.wait_for_log(r"Plugin retired namespace=Tiny .*version=1\.2\.0", timeout=60)
    assert [version for version, _ in plugins_of(bare_agent, "Tiny")] == ["1.1.0"]
    assert bare_agent.apply_and_wait(thing_forma("s", "c"))["state"] == "Success"
