"""``formae api token create|list|revoke``: API tokens beyond the agent's own ``run/api.token``.

A token is printed once, on stdout alone (for ``$(…)``); the agent keeps only its hash. Give it to
a client as ``FORMAE_API_TOKEN`` — never on a command line, where every user of the host sees it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from formae.auth import Role
from formae.cli.output import Column, ColumnSpec, Output, emit_data, make_console, print_table

app = typer.Typer(no_args_is_help=True, help="The agent's REST API: its tokens, the key sealing secrets")
token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the REST API (admin)")
secrets_app = typer.Typer(no_args_is_help=True, help="The key secrets in formas are sealed with (admin)")
app.add_typer(token_app, name="token")
app.add_typer(secrets_app, name="secrets")


def _cli() -> Any:
    """The CLI's shared conventions (client, errors, output), imported late: they import this module."""
    from formae.cli import main

    return main


@token_app.command("create")
def token_create(
    role: Annotated[Role, typer.Option(help="read: only reads; operator: also changes; admin: everything")],
    ttl: Annotated[int | None, typer.Option(help="Seconds it stays valid [default: until revoked]")] = None,
    description: Annotated[str, typer.Option(help="What the token is for, shown in lists")] = "",
    api: Annotated[str | None, typer.Option("--api-url", help="The agent's REST API")] = None,
) -> None:
    """Mint a token; only the token goes to stdout, what it allows to stderr. It is shown once."""
    cli = _cli()
    with cli._client(api) as client:
        created = cli._call(client.create_api_token, str(role), ttl, description)
    until = created["expires_at"] or "revoked"
    make_console(stderr=True).print(
        f"API token {created['id']} with role {created['role']}, valid until {until}",
        highlight=False,
        markup=False,
    )
    print(created["token"])


@token_app.command("list")
def token_list(
    output: Annotated[
        Output, typer.Option("--output", "-o", help="human, wide, json or yaml")
    ] = Output.HUMAN,
    api: Annotated[str | None, typer.Option("--api-url", help="The agent's REST API")] = None,
) -> None:
    """The tokens minted so far (never their secrets)."""
    cli = _cli()
    with cli._client(api) as client:
        tokens = cli._call(client.api_tokens)
    console = make_console()
    if not emit_data(console, output, tokens):
        rows = [
            (t["id"], t["role"], t["description"], t["created_at"], t["expires_at"], t["revoked_at"])
            for t in tokens
        ]
        columns: list[ColumnSpec] = [
            Column("id", key=True),
            "role",
            "description",
            "created",
            "expires",
            "revoked",
        ]
        print_table(console, None, columns, rows, wide=output is Output.WIDE)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (the part after fma1.)")],
    api: Annotated[str | None, typer.Option("--api-url", help="The agent's REST API")] = None,
) -> None:
    """Revoke a token: the agent refuses it from now on."""
    cli = _cli()
    with cli._client(api) as client:
        revoked = cli._call(client.revoke_api_token, token_id)
    make_console().print(f"API token {revoked['id']} revoked at {revoked['revoked_at']}", markup=False)


@secrets_app.command("rotate-key")
def secrets_rotate_key(
    api: Annotated[str | None, typer.Option("--api-url", help="The agent's REST API")] = None,
) -> None:
    """Seal new and changed secrets with a new key; the old keys stay in secrets.key to open older ones."""
    cli = _cli()
    with cli._client(api) as client:
        rotated = cli._call(client.rotate_secrets_key)
    make_console().print(f"secrets are now sealed with key {rotated['current']}", markup=False)
