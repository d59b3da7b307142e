"""Shell completion: ``formae completion bash|zsh|fish``, and what the agent can complete.

The script a shell loads calls ``formae`` back with ``_FORMAE_COMPLETE`` set; typer then asks the
parameter being completed. Static choices (commands, options, output formats) need nothing;
command ids, stack labels, namespaces and query fields come from the running agent, asked with a
short timeout so that a missing or slow agent only means fewer suggestions, never a hung prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import typer

from formae.cli.client import (
    AgentClient,
    AgentUnreachable,
    NoAgentKnown,
    Rejected,
    api_ca,
    api_token,
    api_url,
)

COMPLETE_VAR = "_FORMAE_COMPLETE"
QUERY_FIELDS = ("stack:", "type:", "label:", "target:", "namespace:", "managed:")
TIMEOUT = 1.0


class Shell(StrEnum):
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"


def completion(shell: Annotated[Shell, typer.Argument(metavar="SHELL", help="bash, zsh or fish")]) -> None:
    """Print the completion script for SHELL.

    \b
    Examples:
      source <(formae completion bash)             # this bash session
      formae completion bash > /etc/bash_completion.d/formae
      formae completion zsh > "${fpath[1]}/_formae"  # zsh, then: compinit
      formae completion fish > ~/.config/fish/completions/formae.fish
    """
    from typer._completion_shared import get_completion_script

    typer.echo(get_completion_script(prog_name="formae", complete_var=COMPLETE_VAR, shell=shell.value))


def _from_agent(ask: Callable[[AgentClient], list[str]]) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        try:
            with AgentClient(api_url(None), timeout=TIMEOUT, token=api_token(), ca=api_ca()) as client:
                values = ask(client)
        except (AgentUnreachable, NoAgentKnown, Rejected, OSError):
            return []
        return [value for value in values if value.startswith(incomplete)]

    return complete


def _command_ids(client: AgentClient) -> list[str]:
    return [str(c["id"]) for c in client.commands()]


def _stacks(client: AgentClient) -> list[str]:
    return [str(s["label"]) for s in client.inventory("stacks")]


def _namespaces(client: AgentClient) -> list[str]:
    return sorted({str(p["namespace"]) for p in client.plugins()})


complete_command_id = _from_agent(_command_ids)
complete_stack = _from_agent(_stacks)
complete_namespace = _from_agent(_namespaces)


def complete_query(incomplete: str) -> list[str]:
    """A query is ``field:value`` words: fields first, then the agent's stacks and namespaces."""
    head, _, last = incomplete.rpartition(" ")
    prefix = f"{head} " if head else ""
    field, colon, value = last.partition(":")
    if not colon:
        return [prefix + f for f in QUERY_FIELDS if f.startswith(last)]
    values: dict[str, Callable[[str], list[str]]] = {
        "stack": complete_stack,
        "namespace": complete_namespace,
        "managed": _booleans,
    }
    found = values[field](value) if field in values else []
    return [f"{prefix}{field}:{v}" for v in found]


def _booleans(incomplete: str) -> list[str]:
    return [value for value in ("true", "false") if value.startswith(incomplete)]


def prepare() -> None:
    """Teach typer the shells' completion protocols; only needed when a shell is asking."""
    from typer._completion_classes import completion_init

    completion_init()


def register(app: Any) -> None:
    app.command("completion")(completion)
