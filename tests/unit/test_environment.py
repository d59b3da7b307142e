"""One grammar for settings: the agent and the plugin SDK read the same value the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from formae.agent.config import AgentConfig, ConfigError
from formae.environment import SettingError, parse_address, parse_flag
from formae.plugin.settings import PluginSettings, SettingsError

pytestmark = pytest.mark.timeout(10)

BASE = {"FORMAE_AGENT_NODE": "127.0.0.1:1", "FORMAE_NETWORK_COOKIE": "c"}


@pytest.mark.parametrize(
    ("raw", "value"), [("on", True), ("YES", True), (" 1 ", True), ("off", False), ("No", False)]
)
def test_on_means_true_for_every_flag_of_agent_and_plugin(tmp_path: Path, raw: str, value: bool) -> None:
    agent = AgentConfig.from_env({"FORMAE_NETWORK_COOKIE": "c", "FORMAE_PLUGIN_TLS": raw}, home=str(tmp_path))
    plugin = PluginSettings.from_env({**BASE, "FORMAE_PLUGIN_RECONNECT": raw}, default_node="p")

    assert (agent.plugin_tls, plugin.reconnect) == (value, value)


def test_a_flag_that_is_neither_on_nor_off_is_refused_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"FORMAE_PLUGIN_TLS='maybe' is neither on .* nor off"):
        AgentConfig.from_env({"FORMAE_NETWORK_COOKIE": "c", "FORMAE_PLUGIN_TLS": "maybe"}, home=str(tmp_path))
    with pytest.raises(SettingsError, match=r"FORMAE_PLUGIN_RECONNECT='maybe'"):
        PluginSettings.from_env({**BASE, "FORMAE_PLUGIN_RECONNECT": "maybe"}, default_node="p")


def test_the_agent_may_listen_on_port_0_meaning_any_free_port(tmp_path: Path) -> None:
    env = {"FORMAE_NETWORK_COOKIE": "c", "FORMAE_API_ADDRESS": "127.0.0.1:0"}

    assert AgentConfig.from_env(env, home=str(tmp_path), plugin_address="127.0.0.1:0").api_address.endswith(
        ":0"
    )
    with pytest.raises(SettingsError, match="port 1 to 65535"):
        PluginSettings.from_env({**BASE, "FORMAE_AGENT_NODE": "127.0.0.1:0"}, default_node="p")


@pytest.mark.parametrize("address", ["127.0.0.1:4²", "127.0.0.1:65536", "127.0.0.1", ":80", "h:-1"])
def test_the_agent_refuses_a_port_it_could_not_listen_on_naming_the_variable(
    tmp_path: Path, address: str
) -> None:
    env = {"FORMAE_NETWORK_COOKIE": "c", "FORMAE_API_ADDRESS": address}

    with pytest.raises(ConfigError, match="FORMAE_API_ADDRESS="):
        AgentConfig.from_env(env, home=str(tmp_path))


def test_a_flag_wins_over_the_environment_and_is_blamed_by_its_own_name(tmp_path: Path) -> None:
    env = {"FORMAE_NETWORK_COOKIE": "c", "FORMAE_API_ADDRESS": "127.0.0.1:1"}

    assert (
        AgentConfig.from_env(env, home=str(tmp_path), api_address="127.0.0.1:2").api_address == "127.0.0.1:2"
    )
    with pytest.raises(ConfigError, match=r"--api-address='127\.0\.0\.1:x'"):
        AgentConfig.from_env(env, home=str(tmp_path), api_address="127.0.0.1:x")


def test_readers_accept_what_they_document() -> None:
    assert parse_address("X", "[::1]:8080") == "[::1]:8080"
    assert parse_flag("X", "TRUE") is True
    with pytest.raises(SettingError) as raised:
        parse_flag("FORMAE_X", "")
    assert raised.value.name == "FORMAE_X"
