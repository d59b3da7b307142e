"""The CLI's view of the agent: where it is, and its REST API as plain method calls."""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from formae.agent.config import default_home
from formae.auth import TOKEN_ENV, read_token_file

PAGE = 1000
"""Items per page when the CLI reads a long list (the agent serves at most 5000)."""
NEXT_PAGE_HEADER = "X-Next-After"


class AgentUnreachable(Exception):
    pass


class NoAgentKnown(AgentUnreachable):
    """Nothing says which agent to talk to: guessing a port could reach someone else's agent."""


class Rejected(Exception):
    """The agent refused the command (4xx); ``problems`` say why."""

    def __init__(self, status: int, error: str, problems: list[str]) -> None:
        super().__init__(error)
        self.status = status
        self.problems = problems


def runtime_info(home: Path) -> dict[str, Any] | None:
    path = home / "run" / "agent.json"
    try:
        info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info


def api_url(explicit: str | None = None) -> str:
    """--api-url, then FORMAE_API_URL, then the running agent's runtime file; else NoAgentKnown.

    There is no default port to fall back to: an agent on 127.0.0.1:49684 may belong to another
    home or another user, and an apply must never land there by accident.
    """
    if explicit:
        return explicit
    if os.environ.get("FORMAE_API_URL"):
        return os.environ["FORMAE_API_URL"]
    home = default_home(os.environ)
    info = runtime_info(home)
    if info and info.get("api_url"):
        return str(info["api_url"])
    raise NoAgentKnown(
        f"no agent runs under {home} ({home / 'run' / 'agent.json'} does not exist): "
        "start one with `formae agent start --background`, set FORMAE_HOME to its home, "
        "or name its API with --api-url URL or FORMAE_API_URL"
    )


def api_token(home: Path | None = None) -> str | None:
    """FORMAE_API_TOKEN, else the agent's own token file, if this user may read it."""
    return os.environ.get(TOKEN_ENV) or read_token_file(home or default_home(os.environ))


def api_ca(home: Path | None = None) -> Path | None:
    """What verifies an https agent: FORMAE_API_CA, else the running agent's CA, else the home's CA."""
    if os.environ.get("FORMAE_API_CA"):
        return Path(os.environ["FORMAE_API_CA"])
    home = home or default_home(os.environ)
    info = runtime_info(home)
    if info and info.get("api_ca"):
        return Path(str(info["api_ca"]))
    local = home / "pki" / "ca.crt"
    try:
        return local if local.exists() else None
    except OSError:  # another user's home
        return None


class AgentClient:
    def __init__(
        self, base_url: str, timeout: float = 30.0, *, token: str | None = None, ca: Path | None = None
    ) -> None:
        """``token``: the bearer token sent with every call; ``ca``: what verifies an https agent."""
        self.base_url = base_url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        verify: ssl.SSLContext | bool = True
        if ca is not None and self.base_url.startswith("https:"):
            verify = ssl.create_default_context(cafile=str(ca))
        self._http = httpx.Client(
            base_url=f"{self.base_url}/api/v1", timeout=timeout, headers=headers, verify=verify
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request_with_headers(method, path, **kwargs)[0]

    def _request_with_headers(self, method: str, path: str, **kwargs: Any) -> tuple[Any, httpx.Headers]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise AgentUnreachable(f"cannot reach the formae agent at {self.base_url}: {error}") from None
        if response.status_code >= 400:
            raise _rejection(response)
        try:
            return response.json(), response.headers
        except ValueError:  # some other server on that port
            raise AgentUnreachable(
                f"{self.base_url} answered {method} {path} with something other than JSON: "
                "is it a formae agent?"
            ) from None

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any route of the API (``path`` under /api/v1): what the CLI's area modules call."""
        return self._request(method, path, **kwargs)

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/health")
        return result

    def apply(
        self,
        forma: dict[str, Any],
        mode: str,
        simulate: bool,
        force: bool,
        source: str,
        *,
        queue: bool = False,
    ) -> dict[str, Any]:
        body = {
            "forma": forma,
            "mode": mode,
            "simulate": simulate,
            "force": force,
            "source": source,
            "queue": queue,
        }
        result: dict[str, Any] = self._request("POST", "/commands/apply", json=body)
        return result

    def destroy(
        self,
        forma: dict[str, Any] | None,
        query: str | None,
        simulate: bool,
        source: str,
        *,
        queue: bool = False,
    ) -> dict[str, Any]:
        body = {"forma": forma, "query": query, "simulate": simulate, "source": source, "queue": queue}
        result: dict[str, Any] = self._request("POST", "/commands/destroy", json=body)
        return result

    def cancel(self, command_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/commands/{command_id}/cancel")
        return result

    def command(
        self, command_id: str, updates: bool = True, wait: float = 0, states: list[str] | None = None
    ) -> dict[str, Any]:
        """The command with all its updates (or those in ``states``), fetched page by page.

        With ``wait``, the agent answers once the command ends or after that many seconds.
        """
        params: dict[str, Any] = {"updates": updates, "wait": wait, "limit": PAGE}
        if states:
            params["state"] = states
        timeout = httpx.Timeout(self._http.timeout.read + wait if self._http.timeout.read else None)
        path = f"/commands/{command_id}"
        command: dict[str, Any] = self._request("GET", path, params=params, timeout=timeout)
        while command.get("next_after"):
            page = self._request("GET", path, params={**params, "wait": 0, "after": command["next_after"]})
            command = {**page, "updates": command["updates"] + page["updates"]}
        return command

    def commands(self, limit: int = 20) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/commands", params={"limit": limit})
        return result

    def inventory(self, what: str, query: str = "") -> list[dict[str, Any]]:
        """Every stack, target or resource (matching ``query``), fetched page by page."""
        params: dict[str, Any] = {"query": query, "limit": PAGE} if what == "resources" else {}
        found, headers = self._request_with_headers("GET", f"/{what}", params=params)
        while (cursor := headers.get(NEXT_PAGE_HEADER)) is not None:
            after = unquote(cursor)
            page, headers = self._request_with_headers("GET", f"/{what}", params={**params, "after": after})
            found += page
        result: list[dict[str, Any]] = found
        return result

    def create_join_token(
        self, namespaces: list[str], ttl_seconds: int, agent_address: str | None
    ) -> dict[str, Any]:
        body = {"namespaces": namespaces, "ttl_seconds": ttl_seconds, "agent_address": agent_address}
        result: dict[str, Any] = self._request("POST", "/plugins/tokens", json=body)
        return result

    def create_api_token(self, role: str, ttl_seconds: int | None, description: str) -> dict[str, Any]:
        body = {"role": role, "ttl_seconds": ttl_seconds, "description": description}
        result: dict[str, Any] = self._request("POST", "/auth/tokens", json=body)
        return result

    def api_tokens(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/auth/tokens")
        return result

    def revoke_api_token(self, token_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("DELETE", f"/auth/tokens/{token_id}")
        return result

    def rotate_secrets_key(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", "/secrets/rotate")
        return result

    def plugins(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/plugins")
        return result


_UNAUTHENTICATED_HINT = (
    f"; set {TOKEN_ENV} (formae api token create makes one), or run as the user who owns the agent's "
    "home, where run/api.token gives access"
)


def _rejection(response: httpx.Response) -> Rejected:
    rejected = _rejection_of(response)
    if response.status_code == 401:
        return Rejected(401, f"{rejected}{_UNAUTHENTICATED_HINT}", rejected.problems)
    return rejected


def _rejection_of(response: httpx.Response) -> Rejected:
    try:
        body = response.json()
    except ValueError:
        return Rejected(response.status_code, response.text or response.reason_phrase, [])
    if isinstance(body, dict) and "problems" in body:
        return Rejected(response.status_code, str(body.get("error", "rejected")), list(body["problems"]))
    detail = body.get("detail") if isinstance(body, dict) else body
    return Rejected(response.status_code, str(detail), [])
