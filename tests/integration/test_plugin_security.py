"""Who may serve a namespace: mutual TLS from the agent's CA, one-time join tokens, the cookie."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from formae.cli.client import Rejected
from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest, join_token, network_forma, start_plugin_by_hand

pytestmark = pytest.mark.timeout(90)

PAST = "2000-01-01T00:00:00.000000+00:00"
"""An expiry as the SQLite store writes it (ISO 8601, microseconds, UTC)."""


@pytest.fixture
def bare_agent(tmp_path: Path, make_agent: MakeAgent) -> AgentUnderTest:
    """An agent with no plugin installed: every plugin here comes from elsewhere."""
    return make_agent(tmp_path / "bare-home").start()


def test_a_plugin_joins_with_a_token_and_serves(bare_agent: AgentUnderTest) -> None:
    token = join_token(bare_agent, "FakeAWS")
    plugin = start_plugin_by_hand(bare_agent, "fake-aws@joined", token=token)
    try:
        bare_agent.wait_for_log(r"Plugin joined node=fake-aws@joined .*namespaces=FakeAWS")
        bare_agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=fake-aws@joined .*location=remote")
        assert bare_agent.apply_and_wait(network_forma())["state"] == "Success"
    finally:
        plugin.terminate()
        assert plugin.wait(10) == 0
    secret = token.split(".", 1)[1]
    assert secret not in bare_agent.log()  # neither the token …
    assert bare_agent.cookie not in bare_agent.log()  # … nor the cookie reach the log


def test_a_restarted_plugin_reuses_its_grant_without_a_new_token(bare_agent: AgentUnderTest) -> None:
    token = join_token(bare_agent)
    first = start_plugin_by_hand(bare_agent, "fake-aws@again", token=token)
    bare_agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=fake-aws@again")
    first.terminate()
    assert first.wait(10) == 0

    second = start_plugin_by_hand(bare_agent, "fake-aws@again", token=token)  # same state dir, spent token
    try:
        bare_agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=fake-aws@again", count=2)
    finally:
        second.terminate()
        second.wait(10)
    assert bare_agent.log_count(r"Plugin joined node=fake-aws@again") == 1


def test_a_reused_token_is_refused(bare_agent: AgentUnderTest) -> None:
    token = join_token(bare_agent)
    first = start_plugin_by_hand(bare_agent, "fake-aws@first", token=token)
    try:
        bare_agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=fake-aws@first")
        second = start_plugin_by_hand(bare_agent, "fake-aws@second", token=token)  # another host, same token

        assert second.wait(15) == 78
        bare_agent.wait_for_log(
            r"Plugin join refused node=fake-aws@second .*was already used \(by fake-aws@first\)"
        )
    finally:
        first.terminate()
        first.wait(10)
    assert [p["node"] for p in bare_agent.plugins()] == ["fake-aws@first"]
    audit = [json.loads(line) for line in (bare_agent.home / "logs" / "audit.log").read_text().splitlines()]
    joins = [(e["who"], e["outcome"]) for e in audit if e["what"] == "join"]
    assert joins == [("fake-aws@first", "ok"), ("fake-aws@second", "refused")]
    assert any(e["what"] == "POST /api/v1/plugins/tokens" and e["who"] == "local" for e in audit)


def test_an_expired_token_is_refused(bare_agent: AgentUnderTest) -> None:
    """The token is made expired in the agent's store rather than waited out (no sleep): the lifetime
    arithmetic itself runs on an injected clock in tests/unit/test_joining.py."""
    token = join_token(bare_agent, ttl=3600)
    with sqlite3.connect(bare_agent.home / "data" / "formae.db") as db:
        assert db.execute("UPDATE join_tokens SET expires_at = ?", (PAST,)).rowcount == 1

    plugin = start_plugin_by_hand(bare_agent, "fake-aws@late", token=token)

    assert plugin.wait(15) == 78
    assert bare_agent.log_count(r"Plugin join refused node=fake-aws@late ") == 1
    assert bare_agent.plugins() == []


def test_a_namespace_outside_the_certificate_is_refused(bare_agent: AgentUnderTest) -> None:
    plugin = start_plugin_by_hand(bare_agent, "fake-aws@impostor", token=join_token(bare_agent, "AWS"))

    assert plugin.wait(15) == 78
    bare_agent.wait_for_log(
        r"Plugin refused node=fake-aws@impostor peer=\S+: namespace FakeAWS is not allowed by this "
        r"plugin's certificate \(allows: AWS\)"
    )
    assert bare_agent.plugins() == []


def test_a_wrong_cookie_is_refused_even_with_a_certificate(bare_agent: AgentUnderTest) -> None:
    plugin = start_plugin_by_hand(bare_agent, "fake-aws@intruder", cookie="not-the-cookie")

    assert plugin.wait(15) == 78  # EX_CONFIG: the plugin gives up, it does not retry forever
    bare_agent.wait_for_log(r"Plugin refused node=fake-aws@intruder peer=\S+: wrong network cookie")
    assert bare_agent.plugins() == []
    assert "not-the-cookie" not in bare_agent.log()


def test_without_tls_the_cookie_alone_admits_a_plugin(tmp_path: Path, make_agent: MakeAgent) -> None:
    agent = make_agent(tmp_path / "plain-home", plugin_tls=False).start()
    plugin = start_plugin_by_hand(agent, "fake-aws@plain")
    try:
        agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=fake-aws@plain")
        assert agent.apply_and_wait(network_forma())["state"] == "Success"
        with pytest.raises(Rejected) as no_tokens:
            join_token(agent)
        assert no_tokens.value.status == 409
    finally:
        plugin.terminate()
        plugin.wait(10)


def test_a_plugin_speaking_no_common_protocol_version_is_refused_naming_both_lists(
    bare_agent: AgentUnderTest, tmp_path: Path
) -> None:
    """A real plugin process built as if by a future SDK that speaks only protocol v2."""
    future = tmp_path / "future_plugin.py"
    future.write_text(
        "import formae.wire\n"
        "formae.wire.PROTOCOL_VERSIONS = (2,)  # before the SDK reads it\n"
        "from formae_fake_aws.__main__ import main\n"
        "main()\n"
    )
    env = {"FORMAE_JOIN_TOKEN": join_token(bare_agent)}

    plugin = start_plugin_by_hand(
        bare_agent, "fake-aws@future", extra_env=env, argv=[sys.executable, str(future)]
    )

    assert plugin.wait(15) == 78
    bare_agent.wait_for_log(
        r"Plugin refused node=fake-aws@future peer=\S+: no common protocol version: "
        r"agent speaks \[1\], plugin speaks \[2\]"
    )
    assert bare_agent.plugins() == []
