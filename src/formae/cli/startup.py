"""Build only the commands a ``formae`` invocation can reach.

typer turns every registered function into a click command before it parses anything: it reads
each signature and evaluates each annotation, about 0.4 ms a command, ~25 ms for the whole CLI,
paid again by every run. :func:`prune` keeps, at each level, only the group or command that the
command line names, so ``formae status command`` builds two commands instead of sixty.

When a level's word names nothing registered (``--help``, no word, a typo), that level is left
whole, so help lists every command and a typo gets click's own error and suggestions. Our groups
take no option with a value, so the first word that is not an option is the subcommand's name.
Shell completion walks the whole tree, so it is never pruned (see ``formae.cli.entry``).
"""

from __future__ import annotations

from collections.abc import Sequence

import typer
from typer.main import get_command_name


def prune(app: typer.Typer, argv: Sequence[str]) -> None:
    """Drop from ``app`` (in place) what ``argv`` cannot reach; leave a level whole if unsure."""
    words = [word for word in argv if not word.startswith("-")]
    if not words:
        return
    wanted = words[0]
    rest = list(argv[list(argv).index(wanted) + 1 :])
    for group in app.registered_groups:
        if _group_name(group) == wanted and group.typer_instance is not None:
            app.registered_groups = [group]
            app.registered_commands = []
            prune(group.typer_instance, rest)
            return
    for command in app.registered_commands:
        if _command_name(command) == wanted:
            app.registered_commands = [command]
            app.registered_groups = []
            return


def _group_name(group: typer.models.TyperInfo) -> str | None:
    return group.name if isinstance(group.name, str) else None


def _command_name(command: typer.models.CommandInfo) -> str | None:
    if isinstance(command.name, str):
        return command.name
    return get_command_name(command.callback.__name__) if command.callback else None
