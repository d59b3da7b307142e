"""Who may see the console of a real agent, and what it never shows (no browser needed for these)."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.harness import AgentUnderTest, network_forma

pytestmark = pytest.mark.timeout(60)

SECRET = "correct-horse-battery-staple"


def test_a_read_token_logs_in_and_its_cookie_opens_the_console_but_never_the_api(
    agent: AgentUnderTest,
) -> None:
    url = agent.runtime["api_url"]
    with agent.client() as client:
        read = client.create_api_token("read", None, "console")["token"]
    with httpx.Client(base_url=url, timeout=10) as browser:
        _read_token_session(agent, browser, read)


def _read_token_session(agent: AgentUnderTest, browser: httpx.Client, read: str) -> None:
    refused = browser.post("/ui/login", data={"token": read + "x"})
    login = browser.post("/ui/login", data={"token": read, "next": "/ui/plugins"})

    assert refused.status_code == 401
    assert (login.status_code, login.headers["location"]) == (303, "/ui/plugins")
    page = browser.get("/ui/plugins")
    assert page.status_code == 200
    assert "FakeAWS" in page.text
    assert "(read)" in page.text
    assert browser.get("/api/v1/stacks").status_code == 401  # the cookie is no API credential
    assert browser.get("/ui/plugins", headers={"host": "evil.example"}).status_code == 400
    with agent.client() as client:
        client.revoke_api_token(read.split(".")[1])
    assert browser.get("/ui/plugins", headers={"accept": "text/html"}).status_code == 303  # back to the login


def test_console_pages_show_no_secret(agent: AgentUnderTest) -> None:
    forma = network_forma(bucket={"Tags": {"token": {"$value": SECRET, "$visibility": "Opaque"}}})
    command = agent.apply_and_wait(forma)
    assert command["state"] == "Success"
    pages = ["/ui/", "/ui/stacks", "/ui/stacks/net", "/ui/commands", f"/ui/commands/{command['id']}"]
    bearer = {"authorization": f"Bearer {agent.api_token}"}
    with httpx.Client(base_url=agent.runtime["api_url"], headers=bearer, timeout=10) as browser:
        bodies = {p: browser.get(p) for p in pages}
        events = browser.get(f"/ui/commands/{command['id']}/events")

    assert {p: r.status_code for p, r in bodies.items()} == dict.fromkeys(pages, 200)
    assert all(SECRET not in r.text for r in bodies.values())
    assert events.headers["content-type"].startswith("text/event-stream")
    assert "event: end" in events.text
    assert SECRET not in events.text
