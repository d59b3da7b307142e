"""The configuration file: precedence, validation messages (file, line, field), masking, Pkl, reloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from formae.agent.config import AgentConfig, ConfigError
from formae.config import SETTINGS, effective_rows, mask_url, read_config, resolve
from formae.config.changes import after_reload, running
from formae.config.layers import BY_KEY
from formae.config.starter import write_starter
from formae.schema import BASE_MODULE

pytestmark = pytest.mark.timeout(30)

CONFIG_MODULE = BASE_MODULE.parent / "config.pkl"
ENV = {"FORMAE_NETWORK_COOKIE": "c"}


def _load(home: Path, env: dict[str, str] | None = None, **flags: str | None) -> AgentConfig:
    return AgentConfig.load({**ENV, **(env or {})}, str(home), None, flags)


def _write(home: Path, name: str, text: str) -> Path:
    path = home / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- precedence


def test_flags_win_over_the_environment_which_wins_over_the_file_which_wins_over_defaults(
    tmp_path: Path,
) -> None:
    _write(
        tmp_path, "formae.yaml", "sync:\n  interval: 7\ndiscovery:\n  interval: 8\npolicies:\n  interval: 9\n"
    )
    env = {"FORMAE_SYNC_INTERVAL": "70", "FORMAE_DISCOVERY_INTERVAL": "80"}

    config = _load(tmp_path, env, sync_interval="700")

    assert (config.sync_interval, config.discovery_interval, config.policy_interval) == (700, 80, 9)
    assert config.heartbeat_timeout == 2.5
    assert config.settings is not None
    origins = {key: config.settings.origin(key) for key in ("sync.interval", "discovery.interval")}
    assert origins == {
        "sync.interval": "flag --sync-interval",
        "discovery.interval": "env FORMAE_DISCOVERY_INTERVAL",
    }
    assert config.settings.origin("policies.interval") == f"file {tmp_path / 'formae.yaml'}:6"
    assert config.settings.origin("plugin_endpoint.heartbeat_timeout") == "default"


def test_an_empty_variable_does_not_hide_the_file(tmp_path: Path) -> None:
    _write(tmp_path, "formae.json", json.dumps({"api": {"address": "127.0.0.1:5001"}}))

    assert _load(tmp_path, {"FORMAE_API_ADDRESS": "  "}).api_address == "127.0.0.1:5001"


def test_without_a_file_every_setting_is_its_default(tmp_path: Path) -> None:
    config = _load(tmp_path)

    assert config.settings is not None
    assert {config.settings.origin(s.key) for s in SETTINGS} == {"default"}
    assert config.store_url == f"sqlite:///{tmp_path / 'data' / 'formae.db'}"


def test_config_flag_and_variable_name_the_file(tmp_path: Path) -> None:
    elsewhere = _write(tmp_path, "agent.yaml", "cluster:\n  command_lease: 12\n")
    env = {**ENV, "FORMAE_CONFIG": str(elsewhere)}

    assert AgentConfig.load(env, str(tmp_path), None, {}).command_lease == 12
    with pytest.raises(ConfigError, match=r"missing\.pkl: no such configuration file \(given by --config\)"):
        AgentConfig.load(ENV, str(tmp_path), str(tmp_path / "missing.pkl"), {})


def test_two_files_in_the_home_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "formae.yaml", "{}\n")
    _write(tmp_path, "formae.json", "{}\n")

    with pytest.raises(ConfigError, match=r"formae\.json is there too"):
        _load(tmp_path)


# ---------------------------------------------------------------- validation messages


def test_an_unknown_field_is_named_with_its_file_line_and_the_fields_it_could_be(tmp_path: Path) -> None:
    path = _write(tmp_path, "formae.yaml", "api:\n  address: 127.0.0.1:1\nlogging:\n  levl: debug\n")

    with pytest.raises(ConfigError) as refused:
        _load(tmp_path)

    assert str(refused.value) == (
        f"{path}:4: logging.levl: unknown field (expected one of: level, format, file)"
    )


def test_every_problem_is_reported_at_once_in_json_with_lines(tmp_path: Path) -> None:
    text = '{\n  "sync": {"interval": -1},\n  "plugins": {"aws": {"rate_limit": "fast"}},\n  "x": 1\n}\n'
    path = _write(tmp_path, "formae.json", text)

    with pytest.raises(ConfigError) as refused:
        _load(tmp_path)

    lines = str(refused.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{path}:2: sync.interval: must be a finite number of seconds")
    assert lines[1].startswith(f"{path}:3: plugins.aws.rate_limit: Input should be a valid number")
    assert lines[2].startswith(f"{path}:4: x: unknown field (expected one of: api, plugin_endpoint")


@pytest.mark.parametrize(
    ("yaml", "field"),
    [
        ("api:\n  address: nowhere\n", "api.address"),
        ("datastore:\n  url: mysql://x\n", "datastore.url"),
        ("logging:\n  level: loud\n", "logging.level"),
        ("retry:\n  codes:\n    Throttled: {max_attempts: 2}\n", "retry.codes.Throttled"),
        ("plugin_endpoint:\n  heartbeat_timeout: 0\n", "plugin_endpoint.heartbeat_timeout"),
        ("logging:\n  file:\n    max_bytes: 10\n", "logging.file.max_bytes"),
    ],
)
def test_a_wrong_value_names_its_field(tmp_path: Path, yaml: str, field: str) -> None:
    _write(tmp_path, "formae.yaml", yaml)

    with pytest.raises(ConfigError, match=rf"formae.yaml:\d+: {field.replace('.', '[.]')}: "):
        _load(tmp_path)


def test_a_variable_that_means_nothing_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FORMAE_LOG_FORMAT='xml' is not one of text, json"):
        _load(tmp_path, {"FORMAE_LOG_FORMAT": "xml"})


def test_durations_are_read_from_text(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "formae.yaml",
        "sync: {interval: 5min}\ndiscovery: {interval: 90s}\npolicies: {interval: 1h}\n",
    )

    config = _load(tmp_path)

    assert (config.sync_interval, config.discovery_interval, config.policy_interval) == (300, 90, 3600)


def test_the_forma_loaders_limits_apply(tmp_path: Path) -> None:
    _write(tmp_path, "formae.yaml", "a: &a [*a]\n")

    with pytest.raises(ConfigError, match=r"formae\.yaml"):
        _load(tmp_path)


# ---------------------------------------------------------------- Pkl


def test_a_pkl_file_amends_the_module_and_renders_durations_and_sizes(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "formae.pkl",
        f'amends "{CONFIG_MODULE}"\n'
        "sync { interval = 2.min }\n"
        "logging { file { max_bytes = 1.mib } }\n"
        'plugins { ["fake-aws"] { rate_limit = 3; restart { max_delay = 5.s } } }\n',
    )

    config = _load(tmp_path)

    assert (config.sync_interval, config.log_max_bytes) == (120, 2**20)
    assert config.file.plugins["fake-aws"].rate_limit == 3
    assert config.file.plugins["fake-aws"].restart.max_delay == 5
    assert config.settings is not None
    assert config.settings.origin("sync.interval") == f"file {tmp_path / 'formae.pkl'}"


def test_pkl_refuses_a_misspelt_field_with_its_line(tmp_path: Path) -> None:
    _write(tmp_path, "formae.pkl", f'amends "{CONFIG_MODULE}"\n\nlogging {{ levl = "debug" }}\n')

    with pytest.raises(ConfigError, match=r"(?s)Cannot find property `levl`.*line 3"):
        _load(tmp_path)


def test_every_field_of_the_model_is_in_the_pkl_module(tmp_path: Path) -> None:
    """A file setting every scalar setting in Pkl validates: the module and the model agree."""
    tree: dict[str, Any] = {}
    for setting in SETTINGS:
        *sections, name = setting.key.split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = _pkl_sample(name)
    _write(tmp_path, "formae.pkl", f'amends "{CONFIG_MODULE}"\n{_pkl_body(tree)}\n')

    config = _load(tmp_path)

    assert config.settings is not None
    assert {config.settings.origin(s.key).split(" ")[0] for s in SETTINGS} == {"file"}


def _pkl_body(tree: dict[str, Any]) -> str:
    return "\n".join(
        f"{k} {{ {_pkl_body(v)} }}" if isinstance(v, dict) else f"{k} = {v}" for k, v in tree.items()
    )


_SAMPLES = {"address": '"127.0.0.1:1"', "advertise": '"h:1"', "url": '"sqlite:///x"', "level": '"info"'}
_SAMPLES |= {"format": '"json"', "endpoint": '"http://h:4317"', "service_name": '"f"', "node": '"n"'}
_SAMPLES["max_bytes"] = "1.mib"
_SAMPLES["lease_renew_interval"] = "1"  # at most half of command_lease


def _pkl_sample(name: str) -> str:
    if name in _SAMPLES:
        return _SAMPLES[name]
    if name in ("tls", "insecure", "enabled"):
        return "true"
    if name == "names":
        return 'new Listing { "a" }'
    if name == "headers":
        return '(Mapping) { ["x-api-key"] = "k" }'
    if name == "sample_ratio":
        return "0.5"
    return "3"


# ---------------------------------------------------------------- masking and display


def test_secrets_are_masked_when_shown(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "formae.yaml",
        "datastore:\n  url: postgresql://formae:hunter2@db:5432/formae\n"
        "plugins:\n  aws:\n    set: {AWS_SECRET_ACCESS_KEY: hunter3}\n    rate_limit: 2\n"
        "tracing:\n  headers: {x-api-key: hunter4}\n",
    )
    config = _load(tmp_path)
    assert config.settings is not None

    shown = json.dumps([row.as_json() for row in effective_rows(config.settings)])

    assert "hunter" not in shown
    rows = {row.key: row for row in effective_rows(config.settings)}
    assert rows["datastore.url"].value == "postgresql://formae:(secret)@db:5432/formae"
    assert rows["plugins.aws.set.AWS_SECRET_ACCESS_KEY"].value == "(secret)"
    assert rows["tracing.headers"].value == {"x-api-key": "(secret)"}
    assert rows["plugins.aws.rate_limit"].value == 2
    assert rows["plugins.aws.rate_limit"].origin == f"file {tmp_path / 'formae.yaml'}:6"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///home/x/formae.db", "sqlite:///home/x/formae.db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u:p@h/db?sslmode=require", "postgresql://u:(secret)@h/db?sslmode=require"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


# ---------------------------------------------------------------- what a reload changes


def test_a_reload_applies_live_changes_and_names_the_others_until_a_restart(tmp_path: Path) -> None:
    path = _write(tmp_path, "formae.yaml", "sync: {interval: 5}\napi: {address: '127.0.0.1:1'}\n")
    started = resolve({}, ENV, read_config(path))
    path.write_text("sync: {interval: 6}\napi: {address: '127.0.0.1:2'}\nlogging: {level: debug}\n")
    fresh = resolve({}, ENV, read_config(path))

    changes = after_reload(started, started, fresh)
    now = running(started, fresh)

    assert changes.applied == ["sync.interval", "logging.level"]
    assert changes.needs_restart == ["api.address"]
    assert (now["sync.interval"], now["api.address"]) == (6, "127.0.0.1:1")
    again = after_reload(now, started, resolve({}, ENV, read_config(path)))
    assert (again.applied, again.needs_restart) == ([], ["api.address"])


def test_plugin_sections_changes_are_live_but_in_flight_bounds_wait(tmp_path: Path) -> None:
    path = _write(tmp_path, "formae.yaml", "plugins: {aws: {rate_limit: 1, max_in_flight: 4}}\n")
    before = resolve({}, ENV, read_config(path))
    path.write_text("plugins: {aws: {rate_limit: 2, max_in_flight: 8, env: [AWS_*]}}\n")

    changes = after_reload(before, before, resolve({}, ENV, read_config(path)))

    assert changes.applied == ["plugins.aws.env", "plugins.aws.rate_limit"]
    assert changes.needs_restart == ["plugins.aws.max_in_flight"]


def test_every_setting_has_a_flag_or_variable_and_a_documented_row() -> None:
    operations = (Path(__file__).parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert setting.env or setting.flag, setting.key
        assert f"`{setting.key}`" in operations, f"{setting.key} is not in docs/operations.md"
    assert BY_KEY["logging.level"].live


def test_the_starter_file_amends_the_module_and_validates_and_is_written_once(tmp_path: Path) -> None:
    path = write_starter(tmp_path)

    assert path == tmp_path / "formae.pkl"
    assert path.stat().st_mode & 0o777 == 0o600
    config = _load(tmp_path)
    assert config.settings is not None
    assert config.settings.file.path == path
    assert write_starter(tmp_path) is None


def test_a_file_others_may_write_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "formae.yaml", "plugins: {aws: {env: ['*']}}\n")
    path.chmod(0o664)

    with pytest.raises(ConfigError, match="writable by it alone"):
        _load(tmp_path)
