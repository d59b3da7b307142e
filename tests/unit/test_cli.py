"""The formae command against a scripted agent: exit codes, parseable output, text shown as it is.

``tests/integration/test_cli.py`` runs it against a real agent with ``COLUMNS=200``; these run at
80 columns, the width rich assumes in a pipe, and with answers a real agent gives only rarely.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from formae.cli import main
from formae.cli.client import AgentClient
from formae.cli.http import HttpRequest, HttpResponse, TransportFailure

pytestmark = pytest.mark.timeout(20)

Handler = Callable[[httpx.Request], httpx.Response]


def command(state: str = "Failed", error: str = "boom") -> dict[str, Any]:
    return {
        "id": "01CMD",
        "kind": "apply",
        "mode": "reconcile",
        "state": state,
        "message": f"1 failed: {error}",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "summary": {},
        "updates": [
            {
                "update_id": "u1",
                "operation": "create",
                "stack": "net",
                "type": "FakeAWS::S3::Bucket",
                "label": "logs",
                "target": "local",
                "state": state,
                "attempts": 1,
                "request_id": None,
                "native_id": None,
                "error_code": "PluginError" if state == "Failed" else None,
                "error": error if state == "Failed" else None,
                "depends_on": [],
                "updated_at": "2026-01-01T00:00:00Z",
            }
        ],
    }


class Scripted:
    """The CLI's transport, answered by an httpx handler (the shape these tests are written in)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse:
        body = request.body if isinstance(request.body, bytes | None) else b"".join(request.body)
        asked = httpx.Request(
            request.method, f"http://agent{request.target}", headers=dict(request.headers), content=body
        )
        try:
            answer = self.handler(asked)
        except httpx.TransportError as error:
            raise TransportFailure(str(error)) from None
        return HttpResponse(answer.status_code, answer.reason_phrase, answer.headers, answer.read())

    def close(self) -> None:
        pass


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], list[httpx.Request]]:
    """Point the CLI at ``handler`` instead of an agent; the requests it received."""

    def answer_with(handler: Handler) -> list[httpx.Request]:
        seen: list[httpx.Request] = []

        def recording(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return handler(request)

        def client(_: str | None) -> AgentClient:
            return AgentClient("http://agent", transport=Scripted(recording))

        monkeypatch.setattr(main, "_client", client)
        return seen

    return answer_with


def formae(*args: str) -> Any:
    return CliRunner().invoke(main.app, list(args), env={"COLUMNS": "80"})


def test_plugin_text_that_looks_like_markup_is_shown_as_it_is(agent: Any) -> None:
    error = "OSError: no such device [/dev/sdb] ([bold]really[/bold])"
    agent(lambda _: httpx.Response(200, json=command(error=error)))

    result = formae("status", "command", "01CMD")

    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1
    assert "[/dev/sdb]" in result.stdout
    assert "[bold]really[/bold]" in result.stdout


def test_an_error_message_that_looks_like_markup_is_shown_as_it_is(agent: Any) -> None:
    agent(lambda _: httpx.Response(400, json={"error": "command rejected", "problems": ["[/x] is bad"]}))

    result = formae("destroy", "--query", "stack:[/x]")

    assert result.exit_code == 3
    assert "[/x] is bad" in result.stderr


def test_yaml_output_survives_an_80_column_pipe(agent: Any) -> None:
    resource = {
        "stack": "net",
        "type": "FakeAWS::S3::Bucket",
        "label": "logs",
        "target": "local",
        "native_id": "arn:aws:s3:::" + "a-very-long-bucket-name-" * 6,
        "version": 1,
        "properties": {"Policy": "allow " * 40, "Tags": [":smile:", "[red]x[/]"]},
        "command_id": "01CMD",
        "created_at": "2026-01-01T00:00:00Z",
    }
    agent(lambda _: httpx.Response(200, json=[resource]))

    as_yaml = formae("inventory", "resources", "-o", "yaml")
    as_json = formae("inventory", "resources", "-o", "json")

    assert (as_yaml.exit_code, as_json.exit_code) == (0, 0)
    assert yaml.safe_load(as_yaml.stdout) == [resource]
    assert json.loads(as_json.stdout) == [resource]


def test_watching_an_unknown_command_exits_3_naming_it(agent: Any) -> None:
    agent(lambda _: httpx.Response(404, json={"detail": "no command 01NOPE"}))

    for output in ("human", "json"):
        result = formae("status", "command", "01NOPE", "--watch", "-o", output)

        assert result.exit_code == 3, (output, result.exception)
        assert "no command 01NOPE" in result.stderr


def test_an_agent_that_goes_away_while_watched_exits_4(agent: Any) -> None:
    def gone(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    agent(gone)

    for output in ("human", "json"):
        result = formae("status", "command", "01CMD", "--watch", "-o", output)

        assert result.exit_code == 4, (output, result.exception)
        assert "cannot reach the formae agent" in result.stderr


def test_a_quiet_watch_long_polls_the_counts_then_fetches_the_updates_once(agent: Any) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        done = command(state="Success")
        if request.url.params["updates"] == "false":
            done["updates"] = None
        return httpx.Response(200, json=done)

    seen = agent(answer)

    result = formae("status", "command", "01CMD", "--watch", "-o", "json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["updates"][0]["label"] == "logs"
    polls = [dict(r.url.params) for r in seen]
    assert polls == [
        {"updates": "false", "wait": "30.0", "limit": "1000"},
        {"updates": "true", "wait": "0", "limit": "1000"},
    ]


def test_a_server_that_is_not_an_agent_exits_4(agent: Any) -> None:
    agent(lambda _: httpx.Response(200, text="<html>hello</html>"))

    result = formae("plugin", "list")

    assert result.exit_code == 4
    assert "is it a formae agent?" in " ".join(result.stderr.split())


def test_agent_status_without_an_agent_exits_4(tmp_path: Path) -> None:
    result = formae("agent", "status", "--home", str(tmp_path))

    assert result.exit_code == 4
    assert "agent is not running" in result.stdout


def test_without_runtime_file_or_url_the_cli_refuses_instead_of_guessing_a_port(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main.app,
        ["plugin", "list"],
        env={"COLUMNS": "200", "FORMAE_HOME": str(tmp_path), "FORMAE_API_URL": ""},
    )

    assert result.exit_code == 4
    said = " ".join(result.stderr.split())
    assert f"no agent runs under {tmp_path}" in said
    assert "--api-url" in said
    assert "FORMAE_API_URL" in said


def test_the_runtime_file_names_the_agent_the_cli_talks_to(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "agent.json").write_text(json.dumps({"api_url": "http://127.0.0.1:9"}))

    result = CliRunner().invoke(
        main.app,
        ["plugin", "list"],
        env={"COLUMNS": "200", "FORMAE_HOME": str(tmp_path), "FORMAE_API_URL": ""},
    )

    assert result.exit_code == 4
    assert "http://127.0.0.1:9" in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["apply"],
        ["destroy"],
        ["status", "command"],
        ["inventory", "resources"],
        ["plugin", "token", "create"],
    ],
)
def test_help_reads_naturally_without_type_tags_braces_or_boxes(command: list[str]) -> None:
    result = formae(*command, "--help")

    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    assert "<str>" not in result.stdout
    assert "{" not in result.stdout.split("\n\n")[0], "the usage line names arguments as FILE or [ID]"
    assert not set("─│╭╮╰╯") & set(result.stdout)
    if command:
        assert "Exit codes:" in result.stdout


def test_apply_help_shows_examples_and_the_usual_usage_line() -> None:
    result = formae("apply", "--help")

    assert result.stdout.splitlines()[0].endswith(" apply [OPTIONS] FILE")
    assert "Examples:" in result.stdout
    assert "--simulate" in result.stdout


def test_quiet_apply_prints_only_the_command_id(agent: Any, tmp_path: Path) -> None:
    agent(lambda _: httpx.Response(202, json={"command_id": "01CMD", "changes": [], "summary": {}}))
    forma = tmp_path / "f.json"
    forma.write_text(json.dumps({"resources": []}))

    result = formae("apply", str(forma), "--quiet")

    assert (result.exit_code, result.stdout) == (0, "01CMD\n"), result.output


def test_a_long_message_reaches_a_pipe_on_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main.app,
        ["status", "command"],
        env={"COLUMNS": "80", "FORMAE_HOME": str(tmp_path), "FORMAE_API_URL": ""},
    )

    [line] = result.stderr.strip().splitlines()
    assert len(line) > 80
    assert line.endswith("FORMAE_API_URL")


def test_wide_output_adds_columns_and_human_output_leaves_them_out(agent: Any) -> None:
    done = command(state="Success")
    done["updates"][0]["request_id"] = "req-0042"
    agent(lambda _: httpx.Response(200, json=done))

    human = formae("status", "command", "01CMD")
    wide = formae("status", "command", "01CMD", "-o", "wide")

    assert "req-0042" not in human.stdout
    assert "REQUEST ID" in wide.stdout
    assert "req-0042" in wide.stdout


def test_json_printed_page_by_page_is_the_json_printed_whole() -> None:
    """A command's updates are printed as their pages arrive, and the text is what it was."""
    import io

    from rich.console import Console

    from formae.cli.output import Output, emit_data, emit_json_pages

    def console(buffer: io.StringIO) -> Console:
        made = Console(file=buffer, color_system=None, no_color=True)
        made.soft_wrap = True  # as in a pipe (make_console)
        return made

    odd = {"text": 'é ☃ \u2028 \x7f \x01 "q"', "nested": {"a": [1, {"b": None}], "e": {}, "l": []}, "n": 1.5}
    updates = [{**command()["updates"][0], "update_id": f"u{i}", "progress": odd} for i in range(5)]
    pages = [
        {**command(), "updates": updates[:2], "next_after": "u1"},
        {**command(), "updates": updates[2:], "next_after": None},
    ]
    for whole, paged in (
        ({**command(), "updates": updates, "next_after": None}, pages),
        (
            {**command(), "updates": [], "next_after": None},
            [{**command(), "updates": [], "next_after": None}],
        ),
        ({**command(), "updates": None}, [{**command(), "updates": None}]),
    ):
        expected, streamed = io.StringIO(), io.StringIO()
        emit_data(console(expected), Output.JSON, whole)
        emit_json_pages(console(streamed), iter(paged), "updates")
        assert streamed.getvalue() == expected.getvalue()


def test_watching_asks_only_for_the_updates_changed_since_the_last_look(
    agent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from formae.cli import watch

    monkeypatch.setattr(watch, "time", type("NoSleep", (), {"sleep": staticmethod(lambda _: None)}))
    running = command(state="InProgress")
    running["updates"][0].update(state="Pending", error_code=None, error=None)
    done = command(state="Success")
    done["updates"][0]["updated_at"] = "2026-01-01T00:00:05Z"

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params["updates"] == "false":
            return httpx.Response(200, json={**running, "updates": None, "summary": {"Pending": 1}})
        return httpx.Response(200, json=done if "updated_since" in request.url.params else running)

    seen = agent(answer)

    result = formae("status", "command", "01CMD", "--watch")

    assert result.exit_code == 0, result.output
    assert "create net/logs Pending" in result.stdout
    assert "create net/logs Success" in result.stdout
    asked = [r.url.params.get("updated_since") for r in seen]
    assert asked == [None, None, "2025-12-31T23:59:58+00:00"]  # the last updated_at seen, less OVERLAP
