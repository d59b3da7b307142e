"""The configuration file and the logs with a real agent: bad fields, precedence, reloads, JSON lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from formae.cli.client import AgentClient
from formae.schema import BASE_MODULE
from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest, network_forma

pytestmark = pytest.mark.timeout(90)

CONFIG_MODULE = BASE_MODULE.parent / "config.pkl"


def _formae(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "formae", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _settings(agent: AgentUnderTest) -> dict[str, dict[str, Any]]:
    shown = _formae("agent", "config", "show", "-o", "json", env=agent.cli_env())
    assert shown.returncode == 0, shown.stderr
    return {row["key"]: row for row in json.loads(shown.stdout)["settings"]}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "formae.yaml",
            "api:\n  address: 127.0.0.1:0\nlogging:\n  levl: debug\n",
            "formae.yaml:4: logging.levl: unknown field",
        ),
        (
            "formae.pkl",
            f'amends "{CONFIG_MODULE}"\nlogging {{ levl = "debug" }}\n',
            "Cannot find property `levl`",
        ),
    ],
)
def test_a_wrong_field_fails_agent_start_with_a_message_naming_it(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / name).write_text(text, encoding="utf-8")

    started = _formae("agent", "start", f"--home={home}", env={"FORMAE_HOME": str(home)})

    assert started.returncode == 2, started.stderr
    assert expected in started.stderr
    assert not (home / "run" / "agent.json").exists()


def test_a_flag_wins_over_the_file_and_the_background_agent_reloads_what_the_file_says(
    agent_home: Path, tmp_path: Path
) -> None:
    """Started with --background: only the flags given are passed on, so the file's values stay the file's."""
    config = agent_home / "formae.yaml"
    config.write_text(
        "sync: {interval: 111}\ndiscovery: {interval: 0}\n"
        "logging: {level: debug, file: {max_bytes: 4096, backups: 2}}\n",
        encoding="utf-8",
    )
    env = {
        "FORMAE_HOME": str(agent_home),
        "FORMAE_LOG_LEVEL": "",
        "FAKE_AWS_STATE_FILE": str(tmp_path / "c.db"),
    }
    args = ["agent", "start", "--background", "--api-address=127.0.0.1:0", "--plugin-address=127.0.0.1:0"]
    started = _formae(*args, "--sync-interval=222", env=env)
    assert started.returncode == 0, started.stderr
    try:
        runtime = json.loads((agent_home / "run" / "agent.json").read_text())
        cli = {**env, "FORMAE_API_URL": runtime["api_url"]}
        shown = _formae("agent", "config", "show", "-o", "json", env=cli)
        settings = {row["key"]: row for row in json.loads(shown.stdout)["settings"]}
        assert (settings["sync.interval"]["value"], settings["sync.interval"]["origin"]) == (
            222,
            "flag --sync-interval",
        )
        assert settings["discovery.interval"]["origin"] == f"file {config}:2"

        config.write_text(config.read_text().replace("discovery: {interval: 0}", "discovery: {interval: 30}"))
        reloaded = _formae("agent", "reload", "-o", "json", env=cli)
        assert reloaded.returncode == 0, reloaded.stderr
        assert json.loads(reloaded.stdout) == {"applied": ["discovery.interval"], "needs_restart": []}

        log = agent_home / "logs" / "agent.log"
        token = (agent_home / "run" / "api.token").read_text().strip()
        with AgentClient(cli["FORMAE_API_URL"], token=token) as client:
            for _ in range(40):  # each logs its line; 4 KiB of them rotate the file
                client.request("POST", "/agent/reload")
        rotated = log.parent / "agent.log.1"
        assert rotated.exists()
        assert log.stat().st_size <= 4096
        assert rotated.stat().st_size <= 4096
        assert "configuration reloaded" in log.read_text()
        for fd in (1, 2):  # the daemon's own stdout and stderr followed the rotation
            assert os.readlink(f"/proc/{runtime['pid']}/fd/{fd}") == str(log)
    finally:
        stopped = _formae("agent", "stop", f"--home={agent_home}", env=env)
        assert stopped.returncode == 0, stopped.stderr


def test_sighup_changes_the_log_level_and_a_rate_limit_without_a_restart(
    agent_home: Path, make_agent: MakeAgent
) -> None:
    config = agent_home / "formae.yaml"
    config.write_text("logging: {level: info}\nplugins: {fake-aws: {rate_limit: 1000}}\n", encoding="utf-8")
    agent = make_agent(agent_home, env={"FORMAE_LOG_LEVEL": ""}).start()
    agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
    assert [p["rate_limit"] for p in agent.plugins()] == [1000]
    first = agent.apply_and_wait(network_forma("before"))
    assert first["state"] == "Success"
    assert agent.log_count(r"DEBUG formae\.agent\.updater") == 0

    config.write_text("logging: {level: debug}\nplugins: {FakeAWS: {rate_limit: 1}}\n", encoding="utf-8")
    agent.signal(signal.SIGHUP)
    agent.wait_for_log(r"configuration reloaded applied=\S+")

    assert "applied=logging.level,plugins.FakeAWS.rate_limit,plugins.fake-aws.rate_limit" in agent.log()
    assert [p["rate_limit"] for p in agent.plugins()] == [1]
    began = time.monotonic()
    second = agent.apply_and_wait(network_forma("after"))
    took = time.monotonic() - began
    assert second["state"] == "Success"
    assert took >= 1.9, f"3 creates at 1 per second took {took:.2f}s"  # the bucket's first token is free
    assert agent.log_count(r"DEBUG formae\.agent\.updater: create after/.*-> Success") >= 3
    assert agent.process is not None
    assert agent.process.poll() is None
    assert agent.runtime["pid"] == agent.pid  # the same agent throughout


def test_a_reload_gives_a_plugin_its_new_environment_at_its_next_spawn(
    agent_home: Path, make_agent: MakeAgent
) -> None:
    config = agent_home / "formae.yaml"
    config.write_text("plugins: {fake-aws: {set: {FORMAE_TEST_MARKER: one}}}\n", encoding="utf-8")
    agent = make_agent(agent_home).start()
    agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
    first = agent.plugin_pids()[-1]
    assert _environ(first)["FORMAE_TEST_MARKER"] == "one"

    config.write_text("plugins: {fake-aws: {set: {FORMAE_TEST_MARKER: two}}}\n", encoding="utf-8")
    reloaded = _formae("agent", "reload", "-o", "json", env=agent.cli_env())
    assert json.loads(reloaded.stdout)["applied"] == ["plugins.fake-aws.set.FORMAE_TEST_MARKER"]
    assert _environ(first)["FORMAE_TEST_MARKER"] == "one"  # a running plugin keeps what it was given
    os.kill(first, signal.SIGKILL)
    agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=20, count=2)

    assert _environ(agent.plugin_pids()[-1])["FORMAE_TEST_MARKER"] == "two"


def test_a_plugins_restart_policy_comes_from_its_entry_and_changes_with_a_reload(
    agent_home: Path, make_agent: MakeAgent
) -> None:
    crashy = agent_home / "plugins" / "crashy" / "v0.1.0" / "crashy-plugin"
    crashy.parent.mkdir(parents=True)
    crashy.write_text("#!/bin/sh\nexit 3\n")
    crashy.chmod(0o755)
    config = agent_home / "formae.yaml"
    config.write_text("plugins: {crashy: {restart: {initial_delay: 0.25, max_delay: 0.25}}}\n")
    agent = make_agent(agent_home).start()
    agent.wait_for_log(r"name=crashy code=3; restarting in 0\.25s", timeout=20)

    config.write_text("plugins: {crashy: {restart: {initial_delay: 0.2, max_delay: 0.2}}}\n")
    agent.signal(signal.SIGHUP)
    agent.wait_for_log(r"applied=plugins\.crashy\.restart\.initial_delay,plugins\.crashy\.restart\.max_delay")

    agent.wait_for_log(r"name=crashy code=3; restarting in 0\.20s", timeout=20)
    assert agent.log_count(r"name=fake-aws code=") == 0  # the other plugin's policy is untouched


def _environ(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode().partition("=")[::2] for e in entries if e)


def test_a_reload_of_an_invalid_file_changes_nothing_and_says_why(agent: AgentUnderTest) -> None:
    (agent.home / "formae.yaml").write_text("sync: {interval: soon}\n", encoding="utf-8")

    reloaded = _formae("agent", "reload", env=agent.cli_env())

    assert reloaded.returncode == 3
    assert "formae.yaml:1: sync.interval: is a number of seconds" in reloaded.stderr
    assert "configuration not reloaded, the agent runs on as it was" in agent.log()
    assert _settings(agent)["sync.interval"]["value"] == 300


def test_json_logs_parse_line_by_line_and_carry_the_command_id_on_the_lines_of_an_apply(
    agent_home: Path, make_agent: MakeAgent
) -> None:
    env = {"FAKE_AWS_FAIL_WITH": "Throttling", "FAKE_AWS_FAIL_TIMES": "1"}
    agent = make_agent(agent_home, env=env, extra_args=["--log-format=json"]).start()
    agent.wait_for_log(r'"message": "Plugin registered namespace=FakeAWS', timeout=15)

    command = agent.apply_and_wait(network_forma())
    assert command["state"] == "Success"
    agent.wait_for_log(rf'"message": "command {command["id"]} finished')

    entries = [json.loads(line) for line in agent.log().splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    about = [e for e in entries if command["id"] in e["message"] or "retrying" in e["message"]]
    assert len(about) >= 3  # accepted, a retry after Throttling, finished
    assert all(e.get("command_id") == command["id"] for e in about)
    retries = [e for e in about if "retrying" in e["message"]]
    assert retries
    assert all(e["namespace"] == "FakeAWS" and e["resource"].startswith("net/FakeAWS::") for e in retries)
    plugin_lines = [e for e in entries if e["logger"].startswith("formae.plugin.")]
    assert plugin_lines
    assert all(e["plugin"] == "fake-aws" and e["node"].startswith("fake-aws@") for e in plugin_lines)
