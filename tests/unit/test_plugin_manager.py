"""discover_plugins: the newest runnable version of each installed plugin; broken installs are skipped."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import semver

from formae.agent.plugin_manager import InstalledPlugin, discover_plugins

pytestmark = pytest.mark.timeout(10)


def install(plugins: Path, name: str, version: str, *, executable: bool = True) -> Path:
    path = plugins / name / f"v{version}" / f"{name}-plugin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755 if executable else 0o644)
    return path


def versions(found: list[InstalledPlugin]) -> dict[str, str]:
    return {plugin.name: str(plugin.version) for plugin in found}


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    root = tmp_path / "plugins"
    root.mkdir()
    return root


def test_missing_plugins_dir_is_empty(tmp_path: Path) -> None:
    assert discover_plugins(tmp_path / "nowhere") == []


def test_one_plugin(plugins: Path) -> None:
    executable = install(plugins, "fake-aws", "1.0.0")
    assert discover_plugins(plugins) == [InstalledPlugin("fake-aws", semver.Version(1, 0, 0), executable)]


def test_highest_semver_wins_numerically_not_lexically(plugins: Path) -> None:
    for version in ("1.9.0", "1.10.0", "1.2.3", "0.99.99"):
        install(plugins, "fake-aws", version)
    [found] = discover_plugins(plugins)
    assert str(found.version) == "1.10.0"
    assert found.executable == plugins / "fake-aws" / "v1.10.0" / "fake-aws-plugin"


def test_prerelease_is_lower_than_its_release(plugins: Path) -> None:
    for version in ("2.0.0-rc.2", "2.0.0", "2.0.0-rc.10", "1.9.9"):
        install(plugins, "fake-aws", version)
    assert versions(discover_plugins(plugins)) == {"fake-aws": "2.0.0"}


def test_newest_prerelease_when_there_is_no_release(plugins: Path) -> None:
    for version in ("2.0.0-rc.2", "2.0.0-rc.10", "1.0.0"):
        install(plugins, "fake-aws", version)
    assert versions(discover_plugins(plugins)) == {"fake-aws": "2.0.0-rc.10"}


def test_several_plugins_sorted_by_name(plugins: Path) -> None:
    install(plugins, "zeta", "0.1.0")
    install(plugins, "alpha", "3.0.0")
    install(plugins, "fake-aws", "1.0.0")
    assert [p.name for p in discover_plugins(plugins)] == ["alpha", "fake-aws", "zeta"]


def test_broken_entries_are_skipped_with_a_warning(plugins: Path, caplog: pytest.LogCaptureFixture) -> None:
    install(plugins, "good", "1.0.0")
    (plugins / "README.txt").write_text("a file, not a plugin dir")
    install(plugins, "vfoo", "1.0.0")  # a healthy plugin that happens to be named like a version
    (plugins / "vfoo" / "vfoo").mkdir()  # ... next to a version dir that does not parse
    (plugins / "empty").mkdir()
    (plugins / "missing" / "v1.0.0").mkdir(parents=True)
    install(plugins, "noexec", "1.0.0", executable=False)
    (plugins / "filever").mkdir()
    (plugins / "filever" / "v1.0.0").write_text("a file where a version directory belongs")
    (plugins / "direxe" / "v1.0.0" / "direxe-plugin").mkdir(parents=True)
    install(plugins, "partial", "2.0.0", executable=False)  # newest broken, older one fine
    install(plugins, "partial", "1.5.0")

    with caplog.at_level(logging.WARNING, logger="formae.agent.plugins"):
        found = discover_plugins(plugins)

    assert versions(found) == {"good": "1.0.0", "partial": "1.5.0", "vfoo": "1.0.0"}
    warnings = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "README.txt: not a plugin directory" in warnings
    assert "'foo' is not a semantic version" in warnings
    assert "skipping plugin empty: no runnable version" in warnings
    assert "missing-plugin is missing" in warnings
    assert "noexec-plugin is not executable" in warnings
    assert "filever/v1.0.0: expected a directory named v<semver>" in warnings
    assert "direxe-plugin is missing" in warnings
    assert "partial-plugin is not executable" in warnings
    for name in ("empty", "missing", "noexec", "filever", "direxe"):
        assert f"skipping plugin {name}: no runnable version" in warnings


@pytest.mark.parametrize("name", ["foo", "1.0", "1", "", "1.0.0.0", "01.0.0", "1.0.0-"])
def test_unparseable_versions_are_skipped(plugins: Path, name: str, caplog: pytest.LogCaptureFixture) -> None:
    (plugins / "p" / f"v{name}").mkdir(parents=True)
    (plugins / "p" / f"v{name}" / "p-plugin").write_text("")
    (plugins / "p" / f"v{name}" / "p-plugin").chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="formae.agent.plugins"):
        assert discover_plugins(plugins) == []
    assert any("skipping" in r.getMessage() for r in caplog.records)


def test_version_dir_without_v_prefix_is_skipped(plugins: Path, caplog: pytest.LogCaptureFixture) -> None:
    install(plugins, "p", "1.0.0")
    (plugins / "p" / "2.0.0").mkdir()
    (plugins / "p" / "2.0.0" / "p-plugin").write_text("")
    with caplog.at_level(logging.WARNING, logger="formae.agent.plugins"):
        assert versions(discover_plugins(plugins)) == {"p": "1.0.0"}
    assert "expected a directory named v<semver>" in caplog.text


def test_a_plugin_dir_that_cannot_be_read_is_skipped_not_fatal(
    plugins: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(plugins, "fake-aws", "1.0.0")
    install(plugins, "locked", "1.0.0")
    iterdir = Path.iterdir

    def refuse_locked(self: Path) -> Any:
        if self.name == "locked":
            raise PermissionError(13, "Permission denied", str(self))
        return iterdir(self)

    monkeypatch.setattr(Path, "iterdir", refuse_locked)

    with caplog.at_level(logging.WARNING, logger="formae.agent.plugins"):
        found = discover_plugins(plugins)

    assert versions(found) == {"fake-aws": "1.0.0"}
    assert "skipping plugin locked: cannot read" in caplog.text
