"""A joined plugin's certificate is renewed over its live link, and the renewed one gets it back in.

The agent issues certificates valid for seconds here (``FORMAE_PLUGIN_CERT_VALIDITY``), so the
whole life of a joined plugin (join, several renewals, its first certificate expiring, a reconnect)
fits in a test. The plugin dials through a TCP proxy the test cuts, as a network would.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.conftest import MakeAgent
from tests.integration.harness import network_forma, start_plugin_by_hand
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(90)

VALIDITY = 6
"""Seconds: a renewal every 4 s (two thirds in), each certificate expired 2 s after the next one came."""
NODE = "fake-aws@renewing"


def expiry(certificate: Path) -> dt.datetime:
    return x509.load_pem_x509_certificate(certificate.read_bytes()).not_valid_after_utc


def test_a_joined_plugin_serves_across_renewals_and_reconnects_after_its_first_certificate_expired(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    agent = make_agent(tmp_path / "home", env={"FORMAE_PLUGIN_CERT_VALIDITY": str(VALIDITY)}).start()
    host, _, port = agent.runtime["plugin_address"].rpartition(":")
    with TcpProxy((host, int(port))) as proxy:
        plugin = start_plugin_by_hand(
            agent,
            NODE,
            extra_env={"FORMAE_AGENT_NODE": f"127.0.0.1:{proxy.port}", "FORMAE_PLUGIN_RECONNECT": "1"},
        )
        agent.wait_for_log(rf"Plugin registered namespace=FakeAWS node={NODE} ")
        kept = agent.home / "remote-plugins" / NODE / "plugin.crt"
        first, first_expiry = kept.read_bytes(), expiry(kept)

        agent.wait_for_log(rf"Plugin certificate renewed node={NODE} ", timeout=15)
        assert agent.apply_and_wait(network_forma())["state"] == "Success"
        agent.wait_for_log(rf"Plugin certificate renewed node={NODE} ", timeout=20, count=3)

        assert first_expiry < dt.datetime.now(dt.UTC)  # the certificate it joined with is no good any more
        assert kept.read_bytes() != first
        proxy.cut()  # the link breaks; the plugin must dial again, and TLS checks what it presents
        proxy.restore()
        agent.wait_for_log(rf"Plugin registered namespace=FakeAWS node={NODE} ", timeout=15, count=2)

        assert agent.apply_and_wait(network_forma(stack="after"))["state"] == "Success"
        assert plugin.poll() is None
    assert agent.log_count(rf"Plugin joined node={NODE} ") == 1  # one token, one join: renewals did the rest
    assert agent.log_count("Plugin certificate not renewed") == 0
