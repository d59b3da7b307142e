"""formae doctor: each problem a newcomer trips on, staged, is found and comes with what to do."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from formae.cli import doctor
from formae.cli.doctor import Finding, Situation, Status

pytestmark = pytest.mark.timeout(20)


def problems(findings: list[Finding]) -> list[tuple[str, Status]]:
    return [(f.check, f.status) for f in findings if f.status is not Status.OK]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "run").mkdir(parents=True)
    home.chmod(0o700)
    return home


def test_a_python_older_than_formae_needs_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    [fine] = doctor.python_version(Situation(Path("/nowhere"), None))
    monkeypatch.setattr(doctor, "MIN_PYTHON", (3, 99))
    [old] = doctor.python_version(Situation(Path("/nowhere"), None))

    assert fine.status is Status.OK
    assert old.status is Status.FAIL
    assert "formae needs 3.99 or newer" in old.detail
    assert old.fix == "install Python 3.99+"


def test_a_home_and_a_secret_others_can_read_are_found(home: Path) -> None:
    cookie = home / "network.cookie"
    cookie.write_text("secret")
    cookie.chmod(0o644)
    home.chmod(0o755)

    findings = doctor.home_permissions(Situation(home, None))

    assert problems(findings) == [("home", Status.WARN), ("home", Status.FAIL)]
    assert f"chmod 600 {cookie}" in [f.fix for f in findings]
    assert f"chmod 700 {home}" in [f.fix for f in findings]


def test_a_private_home_is_fine(home: Path) -> None:
    (home / "network.cookie").write_text("secret")
    (home / "network.cookie").chmod(0o600)

    assert problems(doctor.home_permissions(Situation(home, None))) == []


def test_pkl_missing_from_path_is_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    [finding] = doctor.pkl_on_path(Situation(tmp_path, None))

    assert finding.status is Status.WARN
    assert "pkl" in finding.fix


def test_no_agent_and_an_agent_that_does_not_answer_are_told_apart(home: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    (home / "run" / "agent.json").write_text(
        json.dumps({"pid": os.getpid(), "api_url": f"http://127.0.0.1:{port}"})
    )

    [none] = doctor.agent_answers(Situation(home.parent / "elsewhere", None))
    [silent] = doctor.agent_answers(Situation.look(home, None))

    assert (none.status, none.fix) == (Status.WARN, "formae agent start --background")
    assert silent.status is Status.FAIL
    assert "does not answer" in silent.detail
    assert "formae agent stop" in silent.fix


@pytest.fixture
def taken_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        monkeypatch.setattr(doctor, "DEFAULT_API_ADDRESS", address)
        yield address


def test_a_port_the_agent_needs_taken_by_another_program_is_found(home: Path, taken_port: str) -> None:
    findings = doctor.ports_free(Situation(home, None))

    assert problems(findings) == [("ports", Status.FAIL)]
    assert taken_port in findings[0].detail
    assert "--api-address" in findings[0].fix


def plugin(**fields: Any) -> dict[str, Any]:
    return {"node": "fake-aws@h", "name": "fake-aws", "version": "1.0.0", "registered_at": "t", **fields}


def test_a_plugin_installed_but_never_registered_is_found(home: Path) -> None:
    installed = home / "plugins" / "fake-aws" / "v1.0.0" / "fake-aws-plugin"
    installed.parent.mkdir(parents=True)
    installed.write_text("#!/bin/sh\n")
    installed.chmod(0o755)
    healthy = {"status": "ok"}

    registered = doctor.plugins_installed(Situation(home, "u", health=healthy, plugins=[plugin()]))
    missing = doctor.plugins_installed(Situation(home, "u", health=healthy, plugins=[]))

    assert problems(registered) == []
    assert problems(missing) == [("plugins", Status.WARN)]
    assert "fake-aws 1.0.0" in missing[0].detail


def test_a_crash_looping_plugin_is_found_with_its_exit_code_and_stderr(home: Path) -> None:
    process = {
        "crash_looping": True,
        "restarts": 7,
        "last_exit_code": 3,
        "stderr_tail": ["KeyError: 'REGION'"],
    }

    [finding] = doctor.crash_looping(Situation(home, "u", plugins=[plugin(process=process)]))

    assert finding.status is Status.FAIL
    assert "7 restarts" in finding.detail
    assert "exit code 3" in finding.detail
    assert "KeyError: 'REGION'" in finding.detail


def test_a_joined_plugin_whose_clock_is_off_is_found(home: Path) -> None:
    plugins = [plugin(clock_skew_seconds=-240.0), plugin(node="ok@h", clock_skew_seconds=0.02)]

    [finding] = doctor.clock_skew(Situation(home, "u", plugins=plugins))

    assert finding.status is Status.WARN
    assert "240s behind" in finding.detail


def test_a_configuration_file_with_a_wrong_field_is_found_with_its_line(home: Path) -> None:
    (home / "formae.yaml").write_text("sync:\n  intervl: 5\n", encoding="utf-8")

    (finding,) = doctor.configuration(Situation.look(home, None))

    assert finding.status is Status.FAIL
    assert "formae.yaml:2: sync.intervl: unknown field" in finding.detail
    (home / "formae.yaml").write_text("sync:\n  interval: 5\n", encoding="utf-8")
    assert doctor.configuration(Situation.look(home, None))[0].status is Status.OK
    assert not (home / "network.cookie").exists()  # looking writes nothing
