"""The CLI's view of the agent: where it is, and its REST API as plain method calls."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar
from urllib.parse import unquote

from formae.auth import TOKEN_ENV, read_token_file
from formae.home import default_home

if TYPE_CHECKING:  # http.client is imported when a request is made, not when a command starts
    from formae.cli.http import Headers, HttpResponse, Transport

PAGE = 1000
"""Items per page when the CLI reads a long list (the agent serves at most 5000)."""
NEXT_PAGE_HEADER = "X-Next-After"
_SUBMIT = 900.0
"""Seconds an apply or destroy may take to be answered: the agent validates and plans it first,
tens of seconds for 100,000 resources on a busy machine."""


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


P = ParamSpec("P")
T = TypeVar("T")


class Call(Protocol):
    """How a command module makes one API call with the CLI's error conventions (``main._call``):
    given a method of :class:`AgentClient` and that method's own arguments, so mypy checks both."""

    def __call__(self, method: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...


class AgentClient:
    def __init__(
        self,
        base_url: str,
        timeout: float = 30.0,
        *,
        token: str | None = None,
        ca: Path | None = None,
        transport: Transport | None = None,
    ) -> None:
        """``token``: the bearer token sent with every call; ``ca``: what verifies an https agent.

        ``transport``: what carries the requests (a test's fake); by default a connection to ``base_url``.
        """
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http: Transport = transport or _transport(self.base_url, timeout, ca)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request_with_headers(method, path, **kwargs)[0]

    def _request_with_headers(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        timeout: float | None = None,
    ) -> tuple[Any, Headers]:
        response = self._send(method, path, params, _body(json, content), timeout)
        try:
            return _json_of(response), response.headers
        except ValueError:  # some other server on that port
            raise AgentUnreachable(
                f"{self.base_url} answered {method} {path} with something other than JSON: "
                "is it a formae agent?"
            ) from None

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        timeout: float | None,
        stream: bool = False,
    ) -> HttpResponse:
        from formae.cli.http import HttpRequest, TransportFailure, query_string

        headers = {**self._headers, "accept": "application/json"}
        if body is not None:
            headers["content-type"] = "application/json"
        request = HttpRequest(method, f"/api/v1{path}{query_string(params)}", headers, body, timeout)
        try:
            response = self._http.send(request, stream=stream)
        except TransportFailure as error:
            raise AgentUnreachable(f"cannot reach the formae agent at {self.base_url}: {error}") from None
        if response.status >= 400:
            raise _rejection(response)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any route of the API (``path`` under /api/v1): what the CLI's area modules call."""
        return self._request(method, path, **kwargs)

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/health")
        return result

    def apply(
        self,
        forma: dict[str, Any] | str,
        mode: str,
        simulate: bool,
        force: bool,
        source: str,
        *,
        queue: bool = False,
    ) -> dict[str, Any]:
        """Submit ``forma``: a dict, or JSON text sent as it is (``formae.forma.forma_text``)."""
        rest = {"mode": mode, "simulate": simulate, "force": force, "source": source, "queue": queue}
        body = _with_forma(forma, rest)
        result: dict[str, Any] = self._request("POST", "/commands/apply", content=body, timeout=_SUBMIT)
        return result

    def destroy(
        self,
        forma: dict[str, Any] | str | None,
        query: str | None,
        simulate: bool,
        source: str,
        *,
        queue: bool = False,
    ) -> dict[str, Any]:
        rest = {"query": query, "simulate": simulate, "source": source, "queue": queue}
        body = _with_forma(forma, rest)
        result: dict[str, Any] = self._request("POST", "/commands/destroy", content=body, timeout=_SUBMIT)
        return result

    def cancel(self, command_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/commands/{command_id}/cancel")
        return result

    def command(
        self,
        command_id: str,
        updates: bool = True,
        wait: float = 0,
        states: list[str] | None = None,
        since: str | None = None,
    ) -> dict[str, Any]:
        """The command with all its updates (or those in ``states``), fetched page by page.

        With ``wait``, the agent answers once the command ends or after that many seconds; with
        ``since`` (an ``updated_at``), only the updates changed at or after it are listed.
        """
        found: list[dict[str, Any]] = []
        first: dict[str, Any] | None = None
        command: dict[str, Any] = {}
        for command in self.command_pages(command_id, updates, wait, states, since):
            found += command.get("updates") or []
            first = first or command
        if not updates or first is None:
            return command
        return {**command, "summary": first["summary"], "updates": found}  # keys keep their places

    def command_pages(
        self,
        command_id: str,
        updates: bool = True,
        wait: float = 0,
        states: list[str] | None = None,
        since: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The command page by page, each with the next ``PAGE`` of its updates: held one at a time.

        Only the first page has the counts (``summary``): counting 100,000 updates again for each of
        the next 99 pages was a third of what reading them cost the agent.
        """
        params: dict[str, Any] = {"updates": updates, "wait": wait, "limit": PAGE}
        if states:
            params["state"] = states
        if since:
            params["updated_since"] = since
        timeout = self.timeout + wait if self.timeout else None
        path = f"/commands/{command_id}"
        page: dict[str, Any] = self._request("GET", path, params=params, timeout=timeout)
        yield page
        later = {**params, "wait": 0, "summary": False}  # the first page counted them
        while page.get("next_after"):
            page = self._request("GET", path, params={**later, "after": page["next_after"]})
            yield page

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

    def agents(self) -> dict[str, Any]:
        """Every agent sharing the store, the leader, and the commands whose lease each holds."""
        result: dict[str, Any] = self._request("GET", "/agents")
        return result


_UNAUTHENTICATED_HINT = (
    f"; set {TOKEN_ENV} (formae api token create makes one), or run as the user who owns the agent's "
    "home, where run/api.token gives access"
)


def _transport(base_url: str, timeout: float, ca: Path | None) -> Transport:
    from formae.cli.http import HttpTransport, TransportFailure

    try:
        return HttpTransport(base_url, timeout=timeout, ca=ca if base_url.startswith("https:") else None)
    except TransportFailure as error:
        raise AgentUnreachable(str(error)) from None


def _with_forma(forma: dict[str, Any] | str | None, rest: dict[str, Any]) -> bytes:
    """``{"forma": …, **rest}`` as bytes; forma text goes in as it is, never parsed again here."""
    text = forma if isinstance(forma, str) else json.dumps(forma)
    return f'{{"forma": {text}, {json.dumps(rest)[1:]}'.encode()


def _body(data: Any, content: bytes | None) -> bytes | None:
    if content is not None:
        return content
    return None if data is None else json.dumps(data).encode()


def _json_of(response: HttpResponse) -> Any:
    return json.loads(response.body)


def _rejection(response: HttpResponse) -> Rejected:
    rejected = _rejection_of(response)
    if response.status == 401:
        return Rejected(401, f"{rejected}{_UNAUTHENTICATED_HINT}", rejected.problems)
    return rejected


def _rejection_of(response: HttpResponse) -> Rejected:
    try:
        body = _json_of(response)
    except ValueError:
        return Rejected(response.status, response.text or response.reason, [])
    if isinstance(body, dict) and "problems" in body:
        return Rejected(response.status, str(body.get("error", "rejected")), list(body["problems"]))
    detail = body.get("detail") if isinstance(body, dict) else body
    return Rejected(response.status, str(detail), [])
