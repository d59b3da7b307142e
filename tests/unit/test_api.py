"""The REST API's answers to good and bad requests: 4xx with a message, never 5xx.

The app runs in-process over a real SQLite store and an empty plugin registry: no agent process,
no plugins, so every apply is refused for want of a plugin, which is exactly the path to check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from formae.agent.commands import CommandRunner
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import PluginRegistry
from formae.api import AgentServices, build_app
from formae.store import open_store, sqlite_url

pytestmark = pytest.mark.timeout(20)

FORMA: dict[str, Any] = {
    "stacks": [{"label": "net"}],
    "targets": [{"label": "local", "namespace": "FakeAWS", "config": {}}],
    "resources": [
        {"label": "b", "type": "FakeAWS::S3::Bucket", "stack": "net", "target": "local", "properties": {}}
    ],
}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = await open_store(sqlite_url(tmp_path / "formae.db"))
    limiter = RateLimiter()
    registry = PluginRegistry(limiter)
    app = build_app(AgentServices(CommandRunner(store, registry, limiter), store, registry))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://agent/api/v1"
    ) as client:
        yield client
    await store.close()


async def test_health_and_empty_lists(api: httpx.AsyncClient) -> None:
    assert (await api.get("/health")).json() == {
        "status": "ok",
        "version": "0.1.0",
        "plugins": 0,
        "healthy_plugins": 0,
        "reasons": [],
    }
    for path in ("/plugins", "/commands", "/resources", "/stacks", "/targets"):
        response = await api.get(path)
        assert response.status_code == 200, path
        assert response.json() == []


async def test_an_apply_for_a_namespace_without_plugin_is_rejected_with_the_reason(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/commands/apply", json={"forma": FORMA})

    assert response.status_code == 400
    assert response.json() == {
        "error": "command rejected",
        "problems": ["no plugin registered for namespace FakeAWS (registered: none)"],
    }


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "body.forma: Field required"),
        ({"forma": FORMA, "mode": "sideways"}, "body.mode: Input should be 'reconcile' or 'patch'"),
        ({"forma": [1, 2]}, "body.forma: Input should be a valid dictionary"),
        ({"forma": FORMA, "extra": 1}, "body.extra: Extra inputs are not permitted"),
    ],
)
async def test_malformed_apply_requests_get_400_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, Any], problem: str
) -> None:
    response = await api.post("/commands/apply", json=body)

    assert response.status_code == 400
    assert response.json()["error"] == "malformed request"
    assert problem in response.json()["problems"]


async def test_a_body_that_is_not_json_gets_400(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/commands/apply", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "malformed request"


async def test_an_invalid_forma_names_the_resource_and_field(api: httpx.AsyncClient) -> None:
    bad = {**FORMA, "resources": [{**FORMA["resources"][0], "type": "not-a-type"}]}

    response = await api.post("/commands/apply", json={"forma": bad, "source": "net.yaml"})

    assert response.status_code == 400
    [problem] = response.json()["problems"]
    assert problem.startswith('net.yaml: resource "b": type')


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/commands/01NOSUCHCOMMAND", 404),
        ("POST", "/commands/01NOSUCHCOMMAND/cancel", 404),
        ("GET", "/commands?limit=0", 400),
        ("GET", "/resources?query=colour:blue", 400),
        ("POST", "/commands/destroy", 400),
        ("GET", "/commands/x?wait=-1", 400),
        ("POST", "/plugins/tokens", 400),
    ],
)
async def test_bad_requests_are_4xx_with_a_message(
    api: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await api.request(method, path, json={} if method == "POST" else None)

    assert response.status_code == status
    body = response.json()
    assert body.get("detail") or body.get("problems")


async def test_a_destroy_query_matching_nothing_is_an_empty_plan(api: httpx.AsyncClient) -> None:
    response = await api.post("/commands/destroy", json={"query": "stack:nothing", "simulate": True})

    assert response.status_code == 202
    assert response.json()["summary"] == {"create": 0, "update": 0, "replace": 0, "delete": 0}


async def test_the_openapi_document_describes_the_routes(api: httpx.AsyncClient) -> None:
    spec = (await api.get("http://agent/openapi.json")).json()

    assert {"/api/v1/commands/apply", "/api/v1/commands/{command_id}", "/api/v1/plugins"} <= set(
        spec["paths"]
    )


@pytest.mark.parametrize("path", ["/commands/apply", "/commands/destroy"])
@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_in_a_forma_get_400_naming_where(
    api: httpx.AsyncClient, path: str, number: str
) -> None:
    """Python's JSON parser lets them in; no store, plugin or other JSON library could take them."""
    properties = '{"Sizes": [1, {"Max": ' + number + "}]}"
    body = '{"forma": {"resources": [{"label": "b", "properties": ' + properties + "}]}}"

    response = await api.post(path, content=body, headers={"content-type": "application/json"})

    assert response.status_code == 400
    [problem] = response.json()["problems"]
    assert problem.startswith("body.forma: ")
    assert problem.endswith("is not a JSON number (at resources[0].properties.Sizes[1].Max)")


async def test_a_failing_datastore_is_a_503_saying_so_not_a_crash(tmp_path: Path) -> None:
    store = await open_store(sqlite_url(tmp_path / "formae.db"))
    limiter = RateLimiter()
    registry = PluginRegistry(limiter)
    app = build_app(AgentServices(CommandRunner(store, registry, limiter), store, registry))
    await store.close()  # every read now fails with StoreError, as on a vanished database
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://agent/api/v1"
    ) as api:
        response = await api.get("/commands")

    assert response.status_code == 503
    assert response.json()["error"] == "datastore unavailable"
    assert "closed" in response.json()["problems"][0]


async def test_an_empty_destroy_query_is_refused_rather_than_destroying_everything(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/commands/destroy", json={"query": "  "})

    assert response.status_code == 400
    assert "--query 'stack:*'" in response.json()["problems"][0]
