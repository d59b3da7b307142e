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


def test_telemetry_defaults_serve_metrics_and_export_no_traces(tmp_path: Path) -> None:
    config = AgentConfig.from_env({"FORMAE_NETWORK_COOKIE": "c"}, home=str(tmp_path))

    assert config.metrics_enabled
    assert not config.tracing_enabled
    assert (config.tracing_endpoint, config.tracing_service_name, config.tracing_sample_ratio) == (
        "",
        "formae-agent",
        1.0,
    )


def test_telemetry_settings_come_from_opentelemetrys_variables_and_flags_win(tmp_path: Path) -> None:
    env = {
        "FORMAE_NETWORK_COOKIE": "c",
        "FORMAE_METRICS": "off",
        "FORMAE_TRACING": "yes",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/",
        "OTEL_SERVICE_NAME": "agent-7",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=s%3Dcret, tenant = a",
        "FORMAE_TRACING_SAMPLE_RATIO": "0.25",
    }

    config = AgentConfig.from_env(env, home=str(tmp_path), tracing_endpoint="https://collector:4318")

    assert not config.metrics_enabled
    assert config.tracing_enabled
    assert config.tracing_endpoint == "https://collector:4318"
    assert config.tracing_service_name == "agent-7"
    assert config.tracing_sample_ratio == 0.25
    assert config.tracing_headers == {"x-api-key": "s=cret", "tenant": "a"}
    assert "cret" not in repr(config)


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("FORMAE_TRACING_SAMPLE_RATIO", "1.5"),
        ("FORMAE_TRACING_SAMPLE_RATIO", "nan"),
        ("FORMAE_TRACING", "sometimes"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://host:99999"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "just-a-secret"),
    ],
)
def test_a_telemetry_setting_that_means_nothing_is_refused_naming_it(
    tmp_path: Path, variable: str, raw: str
) -> None:
    with pytest.raises(ConfigError, match=variable) as refused:
        AgentConfig.from_env({"FORMAE_NETWORK_COOKIE": "c", variable: raw}, home=str(tmp_path))

    assert "just-a-secret" not in str(refused.value)
