"""The API gate's pieces without an agent: token text, roles per route, the failure throttle, the gate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from formae.agent.audit import AuditLog
from formae.agent.config import AgentConfig, ConfigError
from formae.api.auth import ApiAccess, ApiGuard, FailureThrottle, TokenVerifier, allowed_hosts, required_role
from formae.auth import ApiToken, Role, TokenFormatError, load_or_create_token_file
from formae.store import open_store, sqlite_url


def test_a_token_round_trips_and_other_text_is_refused() -> None:
    token = ApiToken.new()
    assert ApiToken.parse(token.encode()) == token
    assert token.secret not in repr(token)
    for text in ("", "fma1.", "fma1.id", "fmj1.abc.def", "Bearer x"):
        with pytest.raises(TokenFormatError):
            ApiToken.parse(text)


def test_roles_per_route() -> None:
    assert required_role("GET", "/api/v1/health") is None
    assert required_role("GET", "/api/v1/resources") is Role.READ
    assert required_role("GET", "/openapi.json") is Role.READ
    assert required_role("POST", "/api/v1/commands/apply") is Role.OPERATOR
    assert required_role("POST", "/api/v1/sync") is Role.OPERATOR  # a route added later is guarded too
    assert required_role("POST", "/api/v1/plugins/tokens") is Role.ADMIN
    assert required_role("GET", "/api/v1/auth/tokens") is Role.ADMIN
    assert required_role("POST", "/api/v1/secrets/rotate") is Role.ADMIN
    assert required_role("GET", "/api/v1/agent/config") is Role.ADMIN  # where everything is, even masked
    assert required_role("POST", "/api/v1/agent/reload") is Role.ADMIN
    assert Role.ADMIN.allows(Role.OPERATOR)
    assert not Role.READ.allows(Role.OPERATOR)


def test_failures_are_reported_once_per_quiet_period_with_the_count_in_between() -> None:
    now = [0.0]
    throttle = FailureThrottle(quiet_seconds=10, clock=lambda: now[0])
    assert throttle.report("10.0.0.1") == 0
    assert throttle.report("10.0.0.1") is None
    assert throttle.report("10.0.0.2") == 0
    assert throttle.report("10.0.0.1") is None
    now[0] = 10.5
    assert throttle.report("10.0.0.1") == 2


def test_the_own_token_file_is_private_and_kept(tmp_path: Path) -> None:
    first = load_or_create_token_file(tmp_path)
    assert (tmp_path / "run" / "api.token").stat().st_mode & 0o777 == 0o600
    assert load_or_create_token_file(tmp_path) == first


def test_plain_http_beyond_loopback_is_refused_unless_insecure(tmp_path: Path) -> None:
    env = {"FORMAE_HOME": str(tmp_path)}
    with pytest.raises(ConfigError, match="--insecure-api"):
        AgentConfig.from_env(env, api_address="0.0.0.0:1", api_tls="off")
    assert AgentConfig.from_env(env, api_address="0.0.0.0:1").api_uses_tls
    assert not AgentConfig.from_env(env, api_address="0.0.0.0:1", insecure_api="on").api_uses_tls
    assert not AgentConfig.from_env(env).api_uses_tls
    assert AgentConfig.from_env(env, api_tls="on").api_uses_tls


def test_allowed_hosts() -> None:
    assert allowed_hosts("0.0.0.0", ["agent.example"]) == {"127.0.0.1", "localhost", "::1", "agent.example"}
    assert "10.1.2.3" in allowed_hosts("10.1.2.3", [])


@pytest.fixture
async def gate(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, ApiToken, Path]]:
    store = await open_store(sqlite_url(tmp_path / "formae.db"))
    own = ApiToken.new("local")
    audit = tmp_path / "audit.log"
    access = ApiAccess(
        TokenVerifier(store, own), allowed_hosts("127.0.0.1", []), AuditLog(audit), FailureThrottle()
    )

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]

    guarded = ApiGuard(app, access)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=guarded, client=("10.9.8.7", 4321))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client, own, audit
    finally:
        await store.close()


async def test_the_gate(gate: tuple[httpx.AsyncClient, ApiToken, Path]) -> None:
    client, own, audit = gate
    bearer = {"authorization": f"Bearer {own.encode()}"}
    assert (await client.get("/api/v1/health")).status_code == 200
    assert (await client.get("/api/v1/resources")).status_code == 401
    forged = {"authorization": f"Bearer {ApiToken('local', 'guess').encode()}"}
    assert (await client.post("/api/v1/commands/apply", headers=forged)).status_code == 401
    assert (await client.post("/api/v1/commands/apply", headers=bearer)).status_code == 200
    evil = {**bearer, "host": "evil.example"}
    assert (await client.get("/api/v1/resources", headers=evil)).status_code == 400
    lines = audit.read_text().splitlines()
    assert '"who":"anonymous"' in lines[0]
    assert '"where":"10.9.8.7:4321"' in lines[0]
    assert '"what":"POST /api/v1/commands/apply"' in lines[-1]
    assert own.secret not in audit.read_text()
