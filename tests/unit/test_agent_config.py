"""AgentConfig: settings that would leave the agent open or blind are refused at start, naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from formae.agent.config import AgentConfig, ConfigError, load_or_create_cookie

pytestmark = pytest.mark.timeout(10)


def test_the_cookie_is_made_once_and_kept_private(tmp_path: Path) -> None:
    cookie = load_or_create_cookie(tmp_path)

    assert len(cookie) >= 32
    assert load_or_create_cookie(tmp_path) == cookie
    assert (tmp_path / "network.cookie").stat().st_mode & 0o777 == 0o600


def test_an_empty_cookie_file_is_refused_rather_than_used_as_the_secret(tmp_path: Path) -> None:
    (tmp_path / "network.cookie").write_text("\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"network cookie file .* is empty"):
        load_or_create_cookie(tmp_path)


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "soon"])
def test_heartbeat_timeouts_must_be_a_positive_finite_number(tmp_path: Path, raw: str) -> None:
    env = {"FORMAE_NETWORK_COOKIE": "c", "FORMAE_HEARTBEAT_TIMEOUT": raw}

    with pytest.raises(ConfigError, match="FORMAE_HEARTBEAT_TIMEOUT"):
        AgentConfig.from_env(env, home=str(tmp_path))
