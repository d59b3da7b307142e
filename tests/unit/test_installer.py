"""The installer's decisions that need no pip: what a spec is, names, versions, the layout, uninstall."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import semver

from formae.agent.plugin_manager import discover_plugins
from formae.installer import InstallError, install, installed_versions, uninstall
from formae.installer.install import Source, SourceKind
from formae.installer.layout import publish, semantic_version
from formae.installer.packages import Distribution, PipOptions, distribution_of, formae_requirement
from tests.integration.harness import FAKE_AWS

pytestmark = pytest.mark.timeout(30)


def test_a_spec_is_classified_by_what_it_names(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "pyproject.toml").write_text("[project]\n")
    for name in ("a-1.0-py3-none-any.whl", "a-1.0.tar.gz", "a-plugin"):
        (tmp_path / name).write_text("")
    assert Source.of(str(tmp_path / "pkg")).kind is SourceKind.DIRECTORY
    assert Source.of(str(tmp_path / "a-1.0-py3-none-any.whl")).kind is SourceKind.WHEEL
    assert Source.of(str(tmp_path / "a-1.0.tar.gz")).kind is SourceKind.SDIST
    assert Source.of(str(tmp_path / "a-plugin")).kind is SourceKind.EXECUTABLE
    assert Source.of("formae-postgres>=0.1") == Source(SourceKind.REQUIREMENT, "formae-postgres>=0.1")
    with pytest.raises(InstallError, match="no such file"):
        Source.of(str(tmp_path / "missing.whl"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InstallError, match=r"without pyproject\.toml"):
        Source.of(str(tmp_path / "empty"))


def test_a_wheel_is_named_by_its_metadata_not_its_file_name(tmp_path: Path) -> None:
    wheel = tmp_path / "formae_tiny-1.2.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("formae_tiny/__init__.py", "")
        archive.writestr(
            "formae_tiny-1.2.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: formae-tiny\nVersion: 1.2.0\n",
        )
    assert distribution_of(wheel) == Distribution("formae-tiny", "1.2.0")
    nameless = tmp_path / "x-1.0-py3-none-any.whl"
    with zipfile.ZipFile(nameless, "w") as archive:
        archive.writestr("x-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nVersion: 1.0\n")
    with pytest.raises(InstallError, match="no Name or Version"):
        distribution_of(nameless)
    (tmp_path / "broken.whl").write_text("not a zip")
    with pytest.raises(InstallError, match="is not a wheel"):
        distribution_of(tmp_path / "broken.whl")


def test_the_plugin_name_is_the_package_name_without_formae() -> None:
    assert Distribution("formae-postgres", "0.1.0").plugin_name == "postgres"
    assert Distribution("formae_fake_aws", "1.0.0").plugin_name == "fake-aws"
    assert Distribution("acme-cloud-plugin", "1.0.0").plugin_name == "acme-cloud"


def test_versions_must_be_semantic() -> None:
    assert semantic_version("1.2", "x") == semver.Version(1, 2, 0)
    with pytest.raises(InstallError, match="not a semantic version"):
        semantic_version("1.0.post1", "formae-x")


def test_pip_options_are_passed_on() -> None:
    options = PipOptions("https://example.invalid/simple", ("/wheels", "/more"), no_index=True)
    assert options.arguments() == [
        "--index-url",
        "https://example.invalid/simple",
        "--find-links",
        "/wheels",
        "--find-links",
        "/more",
        "--no-index",
    ]


def test_formae_comes_from_the_tree_it_runs_from() -> None:
    requirement = formae_requirement()  # this test suite runs from an editable install of the repository
    assert requirement[0] == "--editable"
    assert Path(requirement[1], "pyproject.toml").is_file()


def test_an_executable_is_copied_and_recorded(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = install(str(FAKE_AWS), home)

    assert result.executable == home / "plugins" / "fake-aws" / "v1.0.0" / "fake-aws-plugin"
    assert [(p.name, str(p.version)) for p in discover_plugins(home / "plugins")] == [("fake-aws", "1.0.0")]
    record = json.loads((result.directory / "install.json").read_text())
    assert (record["kind"], record["namespace"]) == ("executable", "FakeAWS")
    with pytest.raises(InstallError, match="already installed"):
        install(str(FAKE_AWS), home)
    assert install(str(FAKE_AWS), home, force=True).version == semver.Version(1, 0, 0)


def test_uninstall_one_version_or_all(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for version in ("1.0.0", "1.1.0"):
        directory = home / "plugins" / "x" / f"v{version}"
        directory.mkdir(parents=True)
        (directory / "bin").write_text("#!/bin/sh\n")
        (directory / "bin").chmod(0o755)
        publish(directory, "x", directory / "bin")
    assert [str(v.version) for v in installed_versions(home, "x")] == ["1.1.0", "1.0.0"]

    assert [str(v.version) for v in uninstall(home, "x", "1.1.0")] == ["1.1.0"]
    assert [str(p.version) for p in discover_plugins(home / "plugins")] == ["1.0.0"]
    with pytest.raises(InstallError, match=r"version 1\.1\.0 of plugin x is not installed"):
        uninstall(home, "x", "1.1.0")
    assert [str(v.version) for v in uninstall(home, "x")] == ["1.0.0"]
    assert not (home / "plugins" / "x").exists()
