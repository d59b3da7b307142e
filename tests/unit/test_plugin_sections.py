"""The configuration's per-plugin entries: by name or namespace, merged with grant files, applied live."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from formae.agent.plugin_env import GrantError, GrantFiles
from formae.agent.plugin_sections import PluginSections
from formae.agent.process_manager import RestartPolicy
from formae.agent.rate_limiter import InFlightLimits, RateLimiter
from formae.config import PluginSection
from formae.config.model import RestartSection

pytestmark = pytest.mark.timeout(10)

DEFAULTS = RestartPolicy(initial_delay=0.1, max_delay=60.0, stable_after=30.0)


def _sections(entries: dict[str, PluginSection], **kwargs: object) -> PluginSections:
    return PluginSections(entries, DEFAULTS, **kwargs)  # type: ignore[arg-type]


def test_an_entry_by_name_wins_over_one_by_namespace() -> None:
    announced = [("aws", "AWS")]
    sections = _sections(
        {"aws": PluginSection(rate_limit=1), "AWS": PluginSection(rate_limit=2)}, announced=lambda: announced
    )

    assert sections.rate_limit("AWS") == 2  # the namespace's own entry
    assert sections.by_name("aws") == PluginSection(rate_limit=1)


def test_an_entry_by_namespace_reaches_a_plugin_once_it_announced_it() -> None:
    announced: list[tuple[str, str]] = []
    sections = _sections({"FakeAWS": PluginSection(env=("AWS_*",))}, announced=lambda: announced)

    assert sections.get("fake-aws") is None
    announced.append(("fake-aws", "FakeAWS"))
    grant = sections.get("fake-aws")
    assert grant is not None
    assert grant.env == ("AWS_*",)


def test_an_entry_by_name_sets_the_namespaces_rate_and_in_flight_bound() -> None:
    sections = _sections(
        {"fake-aws": PluginSection(rate_limit=3, max_in_flight=4)},
        announced=lambda: [("fake-aws", "FakeAWS")],
    )

    assert (sections.rate_limit("FakeAWS"), sections.max_in_flight("FakeAWS")) == (3, 4)
    assert sections.rate_limit("AWS") is None
    limits = InFlightLimits(256, override=sections.max_in_flight)
    assert limits.of("FakeAWS")._value == 4
    assert limits.of("AWS")._value == 256


def test_the_configured_grant_is_merged_with_the_grant_file_and_wins_on_a_variable(tmp_path: Path) -> None:
    grants = tmp_path / "grants"
    grants.mkdir()
    (grants / "aws.json").write_text(json.dumps({"env": ["AWS_PROFILE"], "set": {"A": "file", "B": "file"}}))
    (grants / "aws.json").chmod(0o600)
    section = PluginSection(env=("AWS_*",), set={"B": "config"})

    grant = _sections({"aws": section}, files=GrantFiles(grants)).get("aws")

    assert grant is not None
    assert grant.env == ("AWS_PROFILE", "AWS_*")
    assert dict(grant.set) == {"A": "file", "B": "config"}


def test_a_grant_naming_a_missing_file_is_refused_and_the_old_entries_kept(tmp_path: Path) -> None:
    sections = _sections({"aws": PluginSection(rate_limit=1)})

    with pytest.raises(GrantError, match=r"plugins\.aws: AWS_CONFIG_FILE names .*missing"):
        sections.replace(
            {"aws": PluginSection(files={"AWS_CONFIG_FILE": str(tmp_path / "missing")})}, DEFAULTS
        )
    assert sections.rate_limit("aws") == 1


def test_a_restart_section_overrides_the_defaults_field_by_field() -> None:
    sections = _sections({"aws": PluginSection(restart=RestartSection(max_delay=5.0))})

    assert sections.restart_policy("aws") == RestartPolicy(
        initial_delay=0.1, max_delay=5.0, stable_after=30.0
    )
    assert sections.restart_policy("other") == DEFAULTS


def test_a_rate_override_applies_to_an_announced_namespace_at_once_and_goes_back_when_removed() -> None:
    now = [0.0]
    overrides: dict[str, float] = {}
    limiter = RateLimiter(clock=lambda: now[0], override=overrides.get)
    limiter.configure("FakeAWS", 100.0)
    assert limiter.rate("FakeAWS") == 100.0

    overrides["FakeAWS"] = 1.0
    limiter.refresh()
    assert limiter.rate("FakeAWS") == 1.0
    assert [limiter.reserve("FakeAWS") for _ in range(3)] == [0.0, 1.0, 2.0]  # one token a second

    del overrides["FakeAWS"]
    limiter.refresh()
    assert (limiter.rate("FakeAWS"), limiter.announced("FakeAWS")) == (100.0, 100.0)
