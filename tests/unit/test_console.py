"""The console's pieces without an agent process: sessions on an injected clock, the gate, the login
form, where a login may send the browser, the palette's contrast, sparklines."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from formae.agent.audit import AuditLog
from formae.api.auth import ApiAccess, ApiGuard, FailureThrottle, TokenVerifier, allowed_hosts
from formae.auth import ApiToken, Role
from formae.console import session as session_module
from formae.console.charts import Series, sparkline
from formae.console.figures import IN_FLIGHT, Figure, FigureHistory
from formae.console.gate import ConsoleGate
from formae.console.pages import ConsoleServices, _local, login_routes, templates
from formae.console.session import LIFETIME, SessionBook
from formae.console.views import ResourceRow, StackPage
from formae.graph import PALETTE, Held, inventory_graph, view
from formae.model import ResourceKey
from formae.store import ApiTokenRecord, Datastore, open_store, sqlite_url

T0 = datetime.now(UTC).replace(microsecond=0)
"""The sessions' clock starts now: the store checks minted tokens' expiry on the real clock."""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Setup:
    store: Datastore
    own: ApiToken
    clock: Clock
    sessions: SessionBook
    client: httpx.AsyncClient
    audit: Path


async def _mint(store: Datastore, role: Role, ttl: timedelta | None = None) -> ApiToken:
    token = ApiToken.new()
    expires = T0 + ttl if ttl else None
    await store.create_api_token(ApiTokenRecord(token.id, str(role), token.secret_sha256, "t", T0, expires))
    return token


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    store = await open_store(sqlite_url(tmp_path / "formae.db"))
    own, clock = ApiToken.new("local"), Clock()
    verifier = TokenVerifier(store, own)
    sessions = SessionBook(verifier, clock)
    audit = tmp_path / "audit.log"
    services = ConsoleServices(store, None, None, sessions, AuditLog(audit))  # type: ignore[arg-type]
    app = FastAPI()
    app.include_router(login_routes(services, templates()))

    @app.get("/page")
    async def page() -> PlainTextResponse:
        return PlainTextResponse("a page")

    outer = FastAPI()
    outer.mount("/ui", ConsoleGate(app, sessions, verifier))
    transport = httpx.ASGITransport(app=outer, client=("10.9.8.7", 4321))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield Setup(store, own, clock, sessions, client, audit)
    finally:
        await store.close()


async def test_a_session_lasts_its_lifetime_and_no_longer(setup: Setup) -> None:
    session = await setup.sessions.open(setup.own.encode())
    assert session is not None
    assert (session.principal.role, session.expires_at) == (Role.ADMIN, T0 + LIFETIME)

    setup.clock.now = T0 + LIFETIME - timedelta(seconds=1)
    assert await setup.sessions.find(session.id) == session
    setup.clock.now = T0 + LIFETIME
    assert await setup.sessions.find(session.id) is None
    assert len(setup.sessions) == 0


async def test_a_session_ends_with_its_token_expiry_or_revocation(setup: Setup) -> None:
    short = await _mint(setup.store, Role.READ, ttl=timedelta(minutes=30))
    brief = await setup.sessions.open(short.encode())
    assert brief is not None
    assert (brief.principal.role, brief.expires_at) == (Role.READ, T0 + timedelta(minutes=30))

    kept = await _mint(setup.store, Role.OPERATOR)
    session = await setup.sessions.open(kept.encode())
    assert session is not None
    await setup.store.revoke_api_token(kept.id)
    assert await setup.sessions.find(session.id) is None  # revoked: ended at the next request


async def test_only_valid_tokens_open_sessions_and_the_book_is_bounded(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    for text in ("", "nonsense", ApiToken("local", "guess").encode(), ApiToken.new().encode()):
        assert await setup.sessions.open(text) is None
    monkeypatch.setattr(session_module, "MAX_SESSIONS", 2)
    first = await setup.sessions.open(setup.own.encode())
    for _ in range(2):
        await setup.sessions.open(setup.own.encode())
    assert first is not None
    assert len(setup.sessions) == 2
    assert await setup.sessions.find(first.id) is None  # the oldest went first


async def test_the_gate_sends_browsers_to_the_login_and_scripts_get_401(setup: Setup) -> None:
    page = await setup.client.get("/ui/page", headers={"accept": "text/html"})
    script = await setup.client.get("/ui/page")
    bearer = await setup.client.get("/ui/page", headers={"authorization": f"Bearer {setup.own.encode()}"})

    assert (page.status_code, page.headers["location"]) == (303, "/ui/login?next=/ui/page")
    assert script.status_code == 401
    for cookie in ('bad"cookie=;;;', "formae_console=forged", "formae_console"):
        assert (await setup.client.get("/ui/page", headers={"cookie": cookie})).status_code == 401
    assert bearer.text == "a page"
    assert "script-src 'self'" in bearer.headers["content-security-policy"]
    assert bearer.headers["cache-control"] == "no-store"


async def test_the_login_form_sets_a_strict_cookie_that_opens_pages(setup: Setup) -> None:
    login = await setup.client.post(
        "/ui/login",
        data={"token": setup.own.encode(), "next": "/ui/page"},
        headers={"origin": "http://127.0.0.1"},
    )

    assert (login.status_code, login.headers["location"]) == (303, "/ui/page")
    cookie = login.headers["set-cookie"].lower()
    for flag in ("httponly", "samesite=strict", "path=/ui", f"max-age={int(LIFETIME.total_seconds())}"):
        assert flag in cookie
    assert "secure" not in cookie  # plain HTTP on loopback; over TLS it is Secure
    assert (await setup.client.get("/ui/page")).text == "a page"
    assert setup.own.secret not in login.text + login.headers["set-cookie"]
    assert '"what":"console login"' in setup.audit.read_text()

    out = await setup.client.post("/ui/logout", headers={"origin": "http://127.0.0.1"})
    assert out.status_code == 303
    assert len(setup.sessions) == 0
    assert (await setup.client.get("/ui/page")).status_code == 401


async def test_a_bad_token_or_a_post_from_another_site_is_refused(setup: Setup) -> None:
    bad = await setup.client.post("/ui/login", data={"token": "fma1.local.guess"})
    foreign = await setup.client.post(
        "/ui/login", data={"token": setup.own.encode()}, headers={"origin": "https://evil.example"}
    )

    assert bad.status_code == 401
    assert "That token was refused" in bad.text
    assert "unauthenticated" in setup.audit.read_text()
    assert foreign.status_code == 403
    assert len(setup.sessions) == 0


def test_a_login_only_ever_sends_the_browser_to_a_console_page() -> None:
    assert _local("/ui/stacks/net?x=1") == "/ui/stacks/net?x=1"
    for target in (
        "https://evil.example/ui/",
        "//evil.example/ui/",
        "/api/v1/stacks",
        "/ui\\@evil",
        "",
        "ui/",
    ):
        assert _local(target) == "/ui/", target


def _luminance(colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_on_every_mark_colour_is_readable_and_lines_stand_out() -> None:
    for mark, colours in PALETTE.items():
        assert _contrast("#1b1b1b", colours.fill) >= 7, mark  # WCAG AAA for the box text
        assert _contrast(colours.line, "#ffffff") >= 3, mark  # the box's outline against the page


def test_a_sparkline_says_what_it_shows() -> None:
    svg = ET.fromstring(sparkline(Series("Command duration", "s", (1.0, 3.5, 2.0))))
    assert svg.get("aria-label") == "Command duration: last 2 s, range 1 to 3.50 over 3 points"
    [line] = [e for e in svg if e.tag.endswith("polyline")]
    assert len(line.get("points", "").split()) == 3
    empty = ET.fromstring(sparkline(Series("Failed updates per command", "failed", ())))
    assert empty.get("aria-label") == "Failed updates per command: no data yet"


async def test_the_api_guard_leaves_the_console_to_itself_but_checks_its_host(tmp_path: Path) -> None:
    store = await open_store(sqlite_url(tmp_path / "formae.db"))
    access = ApiAccess(
        TokenVerifier(store, ApiToken.new("local")),
        allowed_hosts("127.0.0.1", []),
        AuditLog(tmp_path / "audit.log"),
        FailureThrottle(),
        self_guarded=("/ui",),
    )

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]

    transport = httpx.ASGITransport(app=ApiGuard(app, access))  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            assert (await client.get("/ui")).status_code == 200
            assert (await client.get("/ui/stacks")).status_code == 200
            assert (await client.get("/uix")).status_code == 401  # a prefix of a path is not the console
            assert (await client.get("/api/v1/stacks")).status_code == 401
            assert (await client.get("/ui/stacks", headers={"host": "evil.example"})).status_code == 400
    finally:
        await store.close()


async def test_the_live_figures_are_sampled_on_an_injected_clock_with_the_loops_lag() -> None:
    now = [100.0]
    seen: list[float] = []

    async def sleep(seconds: float) -> None:
        now[0] += seconds + 0.25  # the loop woke the sampler a quarter of a second late

    def read(elapsed: float) -> dict[Figure, float]:
        seen.append(elapsed)
        return {IN_FLIGHT: float(len(seen))}

    history = FigureHistory(read, interval=5.0, capacity=3, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        await history.sample_once()

    by_title = {s.title: s for s in history.series()}
    assert seen == [5.25] * 4
    assert by_title["Event loop lag"].values == (250.0, 250.0, 250.0)
    assert by_title["Plugin calls in flight"].values == (2.0, 3.0, 4.0)  # the oldest dropped
    assert "Healthy plugins" not in by_title  # a figure never read is not drawn


def test_a_stack_page_lists_its_first_rows_and_says_where_the_rest_are() -> None:
    rows = [
        ResourceRow(
            ResourceKey("big", "FakeAWS::S3::Bucket", f"b{i}"), "local", f"b{i}", 1, None, (), None, True
        )
        for i in range(3)
    ]
    held = [Held(r.key, r.native_id) for r in rows]
    stack = StackPage(None, "big", rows, view(inventory_graph(held)))

    html = templates().get_template("stack.html").render(stack=stack, row_limit=2, principal=None, now=T0)

    assert html.count('<tr data-key="big/') == 2
    assert "The first 2 of 3 resources" in html
    assert html.count('class="box m-in_sync"') == 3  # the graph shows every one
