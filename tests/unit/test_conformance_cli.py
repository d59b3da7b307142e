"""``formae plugin conformance`` before any plugin runs: pairing of options, and the report's verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from formae.cli import main
from formae.conformance import Outcome, Report

pytestmark = pytest.mark.timeout(10)


def test_each_type_needs_its_properties(tmp_path: Path) -> None:
    result = CliRunner().invoke(main.app, ["plugin", "conformance", str(tmp_path / "p"), "--type", "A::B::C"])

    assert result.exit_code == 2
    assert "one --properties for each --type" in result.stderr


def test_properties_must_be_an_object(tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text("- 1\n")
    args = ["plugin", "conformance", str(tmp_path / "p"), "-t", "A::B::C", "-p", str(tmp_path / "list.yaml")]

    result = CliRunner().invoke(main.app, args)

    assert result.exit_code == 2
    assert "must hold one object of properties" in result.stderr


def test_a_report_fails_on_a_failed_check_not_on_a_skipped_one() -> None:
    report = Report("plugin")
    report.add("a", Outcome.PASS)
    report.add("b", Outcome.SKIP, "never IN_PROGRESS")
    assert report.passed
    report.add("c", Outcome.FAIL, "no code")

    assert not report.passed
    assert report.as_dict()["counts"] == {"pass": 1, "fail": 1, "skip": 1}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["My_Cloud"], "is not a plugin name"),
        (["my-cloud", "--language", "go"], "--language must be one of python, typescript"),
        (["my-cloud", "--namespace", "my"], "is not a namespace"),
    ],
)
def test_init_refuses_what_it_cannot_make(tmp_path: Path, args: list[str], said: str) -> None:
    result = CliRunner().invoke(main.app, ["plugin", "init", *args, "--directory", str(tmp_path / "p")])

    assert result.exit_code == 2
    assert said in result.stderr
    assert not (tmp_path / "p").exists()


def test_init_will_not_write_over_a_project(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "mine.py").write_text("x = 1\n")

    result = CliRunner().invoke(main.app, ["plugin", "init", "my-cloud", "--directory", str(tmp_path / "p")])

    assert result.exit_code == 2
    assert "exists and is not empty" in " ".join(result.stderr.split())
    assert (tmp_path / "p" / "mine.py").read_text() == "x = 1\n"
