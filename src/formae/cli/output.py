"""How read commands print: ``human`` tables for people, ``json`` and ``yaml`` for scripts.

Text from the agent (plugin error messages, labels, native ids) is shown as it is, never read as
rich markup: a message like ``no such device [/dev/sdb]`` would otherwise raise MarkupError.

A table must survive a pipe as well as a narrow terminal, because people copy ids out of it and
grep it in CI logs. So ids, names, types and native ids (``Column(key=True)``) are never cut or
wrapped, in any mode:

- stdout not a terminal (a pipe, a file, a CI log): plain columns aligned with spaces, nothing
  truncated, no box drawing, no colour — what ``kubectl get`` and ``terraform`` print;
- a terminal: a rich table at the terminal's width; when it does not fit, the least important
  columns are dropped first (``Column.drop``) and free text wraps, but a key column keeps its width;
- ``-o wide`` adds the columns marked ``wide``;
- a table taller than the terminal goes through a pager (``formae.cli.pager``), on a terminal only.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, cast

from formae.model.vocabulary import CommandState, UpdateState

if TYPE_CHECKING:  # rich is imported when something is printed, not when a command starts
    from rich.console import Console, RenderableType
    from rich.text import Text

STATE_STYLES: dict[str, str] = {
    UpdateState.SUCCESS: "green",
    UpdateState.FAILED: "red",
    UpdateState.IN_PROGRESS: "yellow",
    UpdateState.DISPATCHING: "yellow",
    UpdateState.WAITING_RETRY: "magenta",
    UpdateState.PENDING: "dim",
    UpdateState.CANCELED: "dim",
    CommandState.CANCELING: "magenta",
}
"""By state name: commands and updates spell the states they share alike."""


class Output(StrEnum):
    HUMAN = "human"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"

    @property
    def for_people(self) -> bool:
        return self in (Output.HUMAN, Output.WIDE)


def make_console(*, stderr: bool = False) -> Console:
    """A console made on first use, so that a module can hold one without importing rich.

    See :func:`real_console` for what it is once made.
    """
    return cast("Console", _LazyConsole(lambda: real_console(stderr=stderr)))


def plain_console(*, stderr: bool = False) -> Console:
    """rich's own ``Console(stderr=stderr)``, made on first use like :func:`make_console`'s."""

    def made() -> Console:
        from rich.console import Console

        return Console(stderr=stderr)

    return cast("Console", _LazyConsole(made))


class _LazyConsole:
    """Stands for the rich ``Console`` that ``factory`` makes the first time anything of it is used."""

    def __init__(self, factory: Callable[[], Console]) -> None:
        object.__setattr__(self, "_factory", factory)
        object.__setattr__(self, "_made", None)

    def _console(self) -> Console:
        made: Console | None = object.__getattribute__(self, "_made")
        if made is None:
            made = object.__getattribute__(self, "_factory")()
            object.__setattr__(self, "_made", made)
        return made

    def __getattr__(self, name: str) -> Any:
        return getattr(self._console(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._console(), name, value)

    def __enter__(self) -> Console:  # special methods are looked up on the type, not via __getattr__
        return self._console().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._console().__exit__(*exc)


def unwrap(console: Console) -> Console:
    """The real console behind one from :func:`make_console`, for rich's own machinery (``Live``)."""
    if isinstance(console, _LazyConsole):
        return console._console()
    return console


def real_console(*, stderr: bool = False) -> Console:
    """A console that honours ``NO_COLOR`` fully: no colour and no other styling escape codes.

    rich alone only drops colours under ``NO_COLOR`` and keeps bold and dim; the entry point sets
    ``NO_COLOR`` for ``--no-color`` before the consoles are made (see ``formae.cli.entry``). In a
    pipe, rich would also break long messages at 80 columns; soft wrap leaves lines whole.
    """
    from rich.console import Console

    plain = bool(os.environ.get("NO_COLOR"))
    console = Console(stderr=stderr, color_system=None if plain else "auto", no_color=plain or None)
    console.soft_wrap = not console.is_terminal  # a pipe gets each message on one line, as it was said
    return console


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a human table: how important it is and whether it may ever be cut."""

    name: str
    key: bool = False
    """An id, name, type or native id: never truncated or wrapped."""
    drop: int = 0
    """On a terminal too narrow for the table, columns are dropped highest ``drop`` first; 0 never."""
    wide: bool = False
    """Shown only with ``-o wide``."""


ColumnSpec = Column | str
"""A plain string is a column of free text that is never dropped."""


def emit_data(console: Console, output: Output, data: Any) -> bool:
    """Print ``data`` for a script and return True, or return False for the caller to print for people.

    ``Console.out`` writes the text as it is: ``print`` would wrap long lines at the console's width
    (80 columns in a pipe), which breaks YAML.
    """
    if output is Output.JSON:
        console.print_json(json.dumps(data))
        return True
    if output is Output.YAML:
        import yaml

        console.out(yaml.safe_dump(data, sort_keys=False), end="", highlight=False)
        return True
    return False


def emit_json_pages(console: Console, pages: Iterator[dict[str, Any]], field: str) -> dict[str, Any]:
    """Print, as :func:`emit_data` prints JSON, an object whose ``field`` list arrives in ``pages``.

    The text is the same, byte for byte, as ``emit_data`` gives for the pages joined (keys before
    ``field`` from the first page, after it from the last), but never more than a page is held:
    a command's 100,000 updates are printed as they arrive. The last page is returned, its
    ``field`` emptied.
    """
    write = console.file.write
    first = next(pages)
    keys = list(first)
    at = keys.index(field)
    write("{\n")
    for key in keys[:at]:
        write(f"  {_json(key)}: {_json(first[key], 2)},\n")
    write(f"  {_json(field)}: ")
    count, last = 0, first
    for page in itertools.chain([first], pages):
        for item in page.get(field) or []:
            write(("[\n    " if count == 0 else ",\n    ") + _json(item, 4))
            count += 1
        last = page
    write(("\n  ]" if count else "[]") if first.get(field) is not None else "null")
    for key in keys[at + 1 :]:
        write(f",\n  {_json(key)}: {_json(last[key], 2)}")
    write("\n}\n")
    console.file.flush()
    return {**last, field: []}


def _json(value: Any, depth: int = 0) -> str:
    """``value`` as ``json.dumps(indent=2, ensure_ascii=False)`` writes it nested ``depth`` spaces deep.

    Written here because ``json.dumps`` with an indent runs its pure-Python encoder, three times
    slower than this for a command's updates; ``test_cli.py`` checks the two agree.
    """
    if isinstance(value, dict):
        if not value:
            return "{}"
        pad = "\n" + " " * (depth + 2)
        inner = ",".join(f"{pad}{encode_basestring(str(k))}: {_json(v, depth + 2)}" for k, v in value.items())
        return "{" + inner + "\n" + " " * depth + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        pad = "\n" + " " * (depth + 2)
        return "[" + ",".join(pad + _json(v, depth + 2) for v in value) + "\n" + " " * depth + "]"
    if isinstance(value, str):
        return encode_basestring(value)
    return json.dumps(value)


@dataclass(frozen=True, slots=True)
class TableView:
    """A table before it knows where it goes: printed to a pipe or a terminal, or put in a live view."""

    title: str | Text | None
    columns: Sequence[ColumnSpec]
    rows: Sequence[Sequence[Any]]

    def print(self, console: Console, *, wide: bool = False) -> None:
        """Print the table the way the console's destination needs (see the module)."""
        title, columns, cells = self._shown(wide)
        if console.is_terminal:  # a value wider than the terminal wraps there, whole; a long table is paged
            from formae.cli.pager import show

            show(console, _fitted(console.width, title, columns, cells))
        else:
            _print_plain(console, title, columns, cells)

    def renderable(self, width: int, *, wide: bool = False) -> RenderableType:
        """The terminal form, for a live view that redraws it in place."""
        return _fitted(width, *self._shown(wide))

    def _shown(self, wide: bool) -> tuple[str | Text | None, list[Column], list[list[Text]]]:
        specs = [Column(c) if isinstance(c, str) else c for c in self.columns]
        shown = [i for i, c in enumerate(specs) if wide or not c.wide]
        cells = [[_cell(row[i]) for i in shown] for row in self.rows]
        return self.title, [specs[i] for i in shown], cells


def print_table(
    console: Console,
    title: str | Text | None,
    columns: Sequence[ColumnSpec],
    rows: Sequence[Sequence[Any]],
    *,
    wide: bool = False,
) -> None:
    TableView(title, columns, rows).print(console, wide=wide)


def _print_plain(
    console: Console, title: str | Text | None, columns: list[Column], cells: list[list[Text]]
) -> None:
    from rich.text import Text

    if title:
        console.out(title.plain if isinstance(title, Text) else title, highlight=False)
    texts = [[" ".join(cell.plain.splitlines()) for cell in row] for row in cells]
    header = [column.name.upper() for column in columns]
    widths = [max([len(header[i]), *(len(row[i]) for row in texts)]) for i in range(len(columns))]
    for line in [header, *texts]:
        padded = [text.ljust(width) for text, width in zip(line[:-1], widths[:-1], strict=True)]
        console.out("   ".join([*padded, line[-1]]).rstrip(), highlight=False)


_PADDING = 3
"""What a rich table spends per column on its borders and padding."""
_FREE_TEXT_MIN = 12
"""Free text narrower than this is hard to read even wrapped."""


def _fitted(
    width: int, title: str | Text | None, columns: list[Column], cells: list[list[Text]]
) -> RenderableType:
    """A rich table for a terminal ``width`` wide, without the least important columns if need be.

    When even the columns that are never dropped do not fit, each row becomes a record of
    ``name: value`` lines (as ``psql``'s expanded display does) rather than cutting a value.
    """
    from rich.table import Table

    natural = [max([len(c.name), *(row[i].cell_len for row in cells)]) for i, c in enumerate(columns)]
    keep = list(range(len(columns)))

    def needed() -> int:
        least = [natural[i] if columns[i].key else min(natural[i], _FREE_TEXT_MIN) for i in keep]
        return sum(least) + _PADDING * len(keep) + 1

    for i in sorted(keep, key=lambda i: -columns[i].drop):
        if needed() <= width or columns[i].drop == 0:
            break
        keep.remove(i)
    if needed() > width:  # records have room for every column again
        return _records(title, columns, cells)
    view = Table(title=title, title_justify="left", show_lines=False)
    for i in keep:
        column = columns[i]
        if column.key:
            view.add_column(column.name, no_wrap=True, min_width=natural[i], overflow="ignore")
        else:
            view.add_column(column.name, overflow="fold")
    for row in cells:
        view.add_row(*(row[i] for i in keep))
    return view


def _records(title: str | Text | None, columns: list[Column], cells: list[list[Text]]) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    name_width = max(len(c.name) for c in columns) + 1
    lines: list[RenderableType] = [Text(title) if isinstance(title, str) else title] if title else []
    for number, row in enumerate(cells):
        lines.append(Text(f"-[ {number + 1} ]" + "-" * 8, style="dim"))
        for column, cell in zip(columns, row, strict=True):
            lines.append(
                Text.assemble(f"{column.name + ':':<{name_width}} ", cell, no_wrap=True, overflow="ignore")
            )
    return Group(*lines)


def _cell(value: Any) -> Text:
    from rich.text import Text

    if isinstance(value, Text):
        return value
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, list):
        return Text(", ".join(str(v) for v in value))
    return Text("" if value is None else str(value))


def styled_state(state: str) -> Text:
    from rich.text import Text

    return Text(state, style=STATE_STYLES.get(state, ""))


COMMAND_COLUMNS = (
    Column("operation"),
    Column("resource", key=True),
    Column("type", key=True),
    Column("state"),
    Column("attempts", drop=2),
    Column("native id", key=True, drop=1),
    Column("error", drop=3),
    Column("request id", key=True, wide=True),
    Column("updated", wide=True),
    Column("after", wide=True),
)


def command_table(command: dict[str, Any], *, only_failed: bool = False) -> TableView:
    """The command's updates; ``only_failed`` keeps a 10,000-resource apply's table readable."""
    updates = command.get("updates") or []
    if only_failed:
        updates = [u for u in updates if u["state"] != UpdateState.SUCCESS]
    rows = [
        (
            u["operation"],
            f"{u['stack']}/{u['label']}",
            u["type"],
            styled_state(u["state"]),
            u["attempts"],
            u.get("native_id"),
            _error(u),
            u.get("request_id"),
            u.get("updated_at"),
            ", ".join(u.get("depends_on") or []),
        )
        for u in updates
    ]
    return TableView(command_title(command), COMMAND_COLUMNS, rows)


def command_title(command: dict[str, Any]) -> Text:
    from rich.text import Text

    return Text.assemble(
        f"command {command['id']} ({command['kind']} {command['mode']}): ", styled_state(command["state"])
    )


def counts_table(command: dict[str, Any]) -> TableView:
    """How many updates are in each state: the live view of a command too large to list."""
    counts = sorted(command.get("summary", {}).items())
    return TableView(
        command_title(command), ["state", "updates"], [(styled_state(st), n) for st, n in counts]
    )


def _error(update: dict[str, Any]) -> str:
    if not update.get("error_code"):
        return ""
    return f"{update['error_code']}: {update.get('error') or ''}"


def plan_table(response: dict[str, Any]) -> TableView:
    rows = [
        (
            _change(c),
            f"{c['stack']}/{c['label']}",
            c["type"],
            patch_text(c.get("patch")),
            ", ".join(c["depends_on"]),
        )
        for c in response["changes"]
        if not (c["replace"] and c["operation"] == "delete")
    ]
    summary = ", ".join(f"{count} to {name}" for name, count in response["summary"].items() if count)
    columns = [
        Column("change"),
        Column("resource", key=True),
        Column("type", key=True),
        Column("properties", drop=2),
        Column("after", drop=1),
    ]
    return TableView(f"plan: {summary or 'no changes'}", columns, rows)


def _change(change: dict[str, Any]) -> str:
    if change["replace"]:
        return "replace"
    return "adopt" if change.get("adopt") else str(change["operation"])


def patch_text(patch: list[dict[str, Any]] | None) -> str:
    """A JSON patch as a person reads it: ``Tags = {"env": "dev"}; Extra removed``."""
    parts = []
    for op in patch or []:
        name = str(op["path"]).lstrip("/").replace("~1", "/").replace("~0", "~")
        if op["op"] == "remove":
            parts.append(f"{name} removed")
        else:
            parts.append(f"{name} = {json.dumps(op.get('value'), sort_keys=True)}")
    return "; ".join(parts)
