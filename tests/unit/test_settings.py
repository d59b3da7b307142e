"""PluginSettings.from_env: what a plugin process learns from its environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from formae.plugin.settings import PluginSettings, SettingsError
from formae.wire.join import JoinToken

pytestmark = pytest.mark.timeout(10)

COOKIE = "very-secret-cookie-value"
BASE = {"FORMAE_AGENT_NODE": "127.0.0.1:49684", "FORMAE_NETWORK_COOKIE": COOKIE}


def settings(**env: str) -> PluginSettings:
    return PluginSettings.from_env({**BASE, **env}, default_node="fake-aws")


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, ["FORMAE_AGENT_NODE", "FORMAE_NETWORK_COOKIE"]),
        ({"FORMAE_NETWORK_COOKIE": COOKIE}, ["FORMAE_AGENT_NODE"]),
        ({"FORMAE_AGENT_NODE": "   ", "FORMAE_NETWORK_COOKIE": COOKIE}, ["FORMAE_AGENT_NODE"]),
        ({"FORMAE_AGENT_NODE": "h:1"}, ["FORMAE_NETWORK_COOKIE"]),
        ({"FORMAE_AGENT_NODE": "h:1", "FORMAE_NETWORK_COOKIE": ""}, ["FORMAE_NETWORK_COOKIE"]),
    ],
)
def test_missing_variables_are_named(env: dict[str, str], missing: list[str]) -> None:
    with pytest.raises(SettingsError) as raised:
        PluginSettings.from_env(env, default_node="fake-aws")
    message = str(raised.value)
    assert message == f"set {' and '.join(missing)} to reach the formae agent"
    for name in {"FORMAE_AGENT_NODE", "FORMAE_NETWORK_COOKIE"} - set(missing):
        assert name not in message


def test_minimal_environment() -> None:
    s = settings()
    assert (s.agent_address, s.cookie, s.heartbeat_interval, s.reconnect, s.parent_pid) == (
        "127.0.0.1:49684",
        COOKIE,
        0.5,
        True,  # started by hand: nobody would restart it, so it waits for the agent to come back
        None,
    )


@pytest.mark.parametrize(
    ("extra", "reconnect"),
    [
        ({"FORMAE_PARENT_PID": "42"}, False),
        ({"FORMAE_PARENT_PID": "42", "FORMAE_PLUGIN_RECONNECT": "1"}, True),
        ({"FORMAE_PLUGIN_RECONNECT": "0"}, False),
        ({"FORMAE_PLUGIN_RECONNECT": "yes"}, True),
    ],
)
def test_spawned_plugins_exit_with_their_agent_unless_told_to_reconnect(
    extra: dict[str, str], reconnect: bool
) -> None:
    assert settings(**extra).reconnect is reconnect


@pytest.mark.parametrize(
    ("node", "address"),
    [
        ("formae@127.0.0.1:49684", "127.0.0.1:49684"),
        ("agent@some.host.example:50051", "some.host.example:50051"),
        ("a@b@localhost:1", "localhost:1"),
        ("localhost:1", "localhost:1"),
        ("  localhost:1  ", "localhost:1"),
        ("[::1]:49684", "[::1]:49684"),
    ],
)
def test_name_at_host_port_is_accepted(node: str, address: str) -> None:
    assert settings(FORMAE_AGENT_NODE=node).agent_address == address


@pytest.mark.parametrize(
    "node",
    ["localhost", "formae@localhost", "localhost:http", ":49684", "host:", "x@:1", "h:0", "h:65536", "h:4²"],
)
def test_malformed_agent_node_is_refused(node: str) -> None:
    with pytest.raises(SettingsError, match=r"FORMAE_AGENT_NODE=.* is not host:port"):
        settings(FORMAE_AGENT_NODE=node)


def test_plugin_node_defaults_to_name_pid_and_host() -> None:
    assert settings().node.startswith(f"fake-aws-{os.getpid()}@")
    assert settings(FORMAE_PLUGIN_NODE="fake-aws@box").node == "fake-aws@box"


def test_optional_variables() -> None:
    s = settings(FORMAE_HEARTBEAT_INTERVAL="0.25", FORMAE_PLUGIN_RECONNECT="TRUE", FORMAE_PARENT_PID="4242")
    assert (s.heartbeat_interval, s.reconnect, s.parent_pid) == (0.25, True, 4242)
    assert settings(FORMAE_PLUGIN_RECONNECT="no", FORMAE_PARENT_PID="-1").reconnect is False
    assert settings(FORMAE_PARENT_PID="abc").parent_pid is None
    assert settings(FORMAE_PARENT_PID="4²").parent_pid is None  # isdigit() says yes, int() says no


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("soon", "is not a number of seconds"),
        ("0", "must be positive"),
        ("-1", "must be positive"),
        ("nan", "must be positive and finite"),
        ("inf", "must be positive and finite"),
    ],
)
def test_bad_heartbeat_interval_is_refused(raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"FORMAE_HEARTBEAT_INTERVAL.*{message}"):
        settings(FORMAE_HEARTBEAT_INTERVAL=raw)


def test_repr_and_str_never_show_the_cookie() -> None:
    s = settings(FORMAE_PLUGIN_NODE="fake-aws@box")
    assert repr(s) == "PluginSettings(agent_address='127.0.0.1:49684', node='fake-aws@box')"
    for text in (repr(s), str(s), f"{s}", f"{s!r}", repr([s]), repr({"s": s})):
        assert COOKIE not in text


def test_settings_errors_never_show_the_cookie() -> None:
    with pytest.raises(SettingsError) as raised:
        PluginSettings.from_env({"FORMAE_NETWORK_COOKIE": COOKIE}, default_node="p")
    assert COOKIE not in str(raised.value)


def test_certificate_files_win_over_a_join_token(tmp_path: Path) -> None:
    """With the files given the token is ignored, so it cannot stand in for the cookie or the address."""
    files = {}
    for name in ("FORMAE_PLUGIN_CERT", "FORMAE_PLUGIN_KEY", "FORMAE_AGENT_CA"):
        (tmp_path / name).write_bytes(b"-----BEGIN PEM-----")
        files[name] = str(tmp_path / name)
    token = JoinToken("agent-host:49685", "0123456789abcdef", "s3cret", b"ca", b"cert", b"key").encode()

    s = settings(**files, FORMAE_JOIN_TOKEN=token)
    assert (s.join_token, s.credentials is not None) == (None, True)
    with pytest.raises(SettingsError, match="set FORMAE_AGENT_NODE and FORMAE_NETWORK_COOKIE"):
        PluginSettings.from_env({**files, "FORMAE_JOIN_TOKEN": token}, default_node="p")
