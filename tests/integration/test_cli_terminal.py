"""The CLI's human output where people really read it: a pipe, and terminals 60 and 200 columns wide.

Ids, names, types and native ids must come out whole in every mode (people copy them into the next
command), a pipe gets no box drawing and no escape codes, ``NO_COLOR`` removes every style, and a
watched apply redraws in place on a terminal. Each check runs the real ``formae`` executable
against a real agent; the terminals are pseudo-terminals of the given size (pexpect).

A listing taller than the terminal is paged there and nowhere else. The pager in those tests is a
script of the test's own that records what it was given, so no test can wait on ``less``; the
others run with paging off (``FORMAE_PAGER=``), since what they check is the table itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.integration.harness import AgentUnderTest, network_forma

pytestmark = pytest.mark.timeout(120)

FORMAE = Path(sys.executable).parent / "formae"
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STYLE = re.compile(r"\x1b\[[0-9;]*m")
BOX = set("─│┃━┏┓┗┛╭╮╯╰┡┩└┘┌┐├┤┬┴┼═║")
LONG = "a-label-long-enough-that-an-eighty-column-table-would-cut-it-in-half"


UNSET = {"COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "PAGER", "FORMAE_PAGER"}


def _env(agent: AgentUnderTest, **extra: str | None) -> dict[str, str]:
    """The test's environment for the CLI; a variable given as None is left out."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    merged = {**env, **agent.cli_env(), "TERM": "xterm-256color", "FORMAE_PAGER": "", **extra}
    return {k: v for k, v in merged.items() if v is not None}


def piped(agent: AgentUnderTest, *args: str, **env: str | None) -> str:
    done = subprocess.run(
        [str(FORMAE), *args], env=_env(agent, **env), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def on_terminal(agent: AgentUnderTest, columns: int, *args: str, rows: int = 40, **env: str | None) -> str:
    child = pexpect.spawn(
        str(FORMAE),
        list(args),
        env=_env(agent, **env),
        dimensions=(rows, columns),
        encoding="utf-8",
        timeout=60,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return str(child.before)


@pytest.fixture
def applied(agent: AgentUnderTest, tmp_path: Path) -> dict[str, Any]:
    """A real apply of resources with long labels; what the agent knows of it, as JSON."""
    forma = network_forma()
    for resource in forma["resources"]:
        resource["label"] = f"{resource['label']}-{LONG}"
        for value in resource["properties"].values():
            if isinstance(value, dict) and value.get("$res"):
                value["$label"] = f"{value['$label']}-{LONG}"
    path = tmp_path / "forma.json"
    path.write_text(json.dumps(forma))
    piped(agent, "apply", "--watch", str(path))
    resources = json.loads(piped(agent, "inventory", "resources", "-o", "json"))
    commands = json.loads(piped(agent, "status", "command", "-o", "json"))
    plugins = json.loads(piped(agent, "plugin", "list", "-o", "json"))
    return {"resources": resources, "commands": commands, "plugins": plugins}


def whole_values(applied: dict[str, Any]) -> list[str]:
    values = [c["id"] for c in applied["commands"]]
    values += [p["node"] for p in applied["plugins"]] + [t for p in applied["plugins"] for t in p["types"]]
    for r in applied["resources"]:
        values += [r["label"], r["type"], r["native_id"]]
    return values


LISTINGS = [("inventory", "resources"), ("status", "command"), ("plugin", "list")]


def test_a_pipe_gets_every_value_whole_in_plain_aligned_columns(
    agent: AgentUnderTest, applied: dict[str, Any]
) -> None:
    text = "".join(piped(agent, *listing) for listing in LISTINGS)
    text += piped(agent, "status", "command", applied["commands"][0]["id"])

    assert not ESCAPE.search(text), text
    assert not BOX & set(text), text
    assert "…" not in text
    for value in whole_values(applied):
        assert value in text, value
    header, *lines = piped(agent, "inventory", "resources").splitlines()
    assert header.split()[:7] == ["STACK", "TYPE", "LABEL", "TARGET", "NATIVE", "ID", "VERSION"]
    for line, resource in zip(lines, applied["resources"], strict=True):  # the columns line up
        assert line.index(resource["label"]) == header.index("LABEL"), (header, line)
        assert line.index(resource["native_id"]) == header.index("NATIVE ID"), (header, line)


@pytest.mark.parametrize("columns", [60, 200])
def test_a_terminal_of_any_width_never_cuts_an_id_type_or_native_id(
    agent: AgentUnderTest, applied: dict[str, Any], columns: int
) -> None:
    text = "".join(on_terminal(agent, columns, *listing) for listing in LISTINGS)
    plain = ESCAPE.sub("", text).replace("\r\n", "\n")

    assert "…" not in plain
    for value in whole_values(applied):
        if value in (t for p in applied["plugins"] for t in p["types"]) and columns < 100:
            continue  # the list of types is a column a narrow terminal drops; each type is whole in a pipe
        assert value in plain, (columns, value, plain)


def test_no_color_and_the_flag_leave_no_style_codes_on_a_terminal(
    agent: AgentUnderTest, applied: dict[str, Any]
) -> None:
    coloured = on_terminal(agent, 200, "status", "command", applied["commands"][0]["id"])
    by_env = on_terminal(agent, 200, "status", "command", applied["commands"][0]["id"], NO_COLOR="1")
    by_flag = on_terminal(agent, 200, "--no-color", "status", "command", applied["commands"][0]["id"])

    assert STYLE.search(coloured), "the check proves nothing if a terminal gets no styles at all"
    assert not STYLE.search(by_env), by_env
    assert not STYLE.search(by_flag), by_flag


def test_a_watched_apply_redraws_in_place_on_a_terminal_and_ends_with_its_summary_line(
    agent: AgentUnderTest, tmp_path: Path
) -> None:
    path = tmp_path / "forma.json"
    slow = {"FakeDelayMs": 1500}  # long enough for several redraws, however fast the machine
    path.write_text(json.dumps(network_forma(stack="watched", vpc=slow, bucket=slow)))

    text = on_terminal(agent, 100, "apply", "--watch", str(path))

    assert re.search(r"\x1b\[\d*A", text), "a live view moves the cursor up to redraw"
    last = ESCAPE.sub("", text).strip().splitlines()[-1]
    assert re.fullmatch(r"command \S+ Success: .*", last.strip()), last


@pytest.fixture
def pager(tmp_path: Path) -> tuple[Path, Path]:
    """A pager that keeps what it was given in a file and says so: no test can wait on ``less``."""
    record = tmp_path / "paged.txt"
    script = tmp_path / "test-pager"
    script.write_text(f'#!/bin/sh\necho "$@" > {record}.args\ncat > {record}\necho PAGED-BY-TEST\n')
    script.chmod(0o755)
    return script, record


def test_a_listing_taller_than_the_terminal_is_paged_there_and_nowhere_else(
    agent: AgentUnderTest, applied: dict[str, Any], pager: tuple[Path, Path]
) -> None:
    script, record = pager
    listing = ("inventory", "resources")

    shown = on_terminal(agent, 200, *listing, rows=6, FORMAE_PAGER=f"{script} --from-formae")
    assert "PAGED-BY-TEST" in shown
    assert (record.parent / f"{record.name}.args").read_text().split() == ["--from-formae"]
    paged = ESCAPE.sub("", record.read_text())
    for resource in applied["resources"]:
        assert resource["native_id"] in paged, "the pager got the whole table"
    record.unlink()

    turned_off = on_terminal(agent, 200, *listing, rows=6, PAGER=str(script), FORMAE_PAGER="")
    assert "PAGED-BY-TEST" not in turned_off, "FORMAE_PAGER empty turns paging off"
    by_pager = on_terminal(agent, 200, *listing, rows=6, PAGER=str(script), FORMAE_PAGER=None)
    assert "PAGED-BY-TEST" in by_pager, "without FORMAE_PAGER, PAGER is the pager"
    record.unlink()

    not_paged = [
        on_terminal(agent, 200, *listing, rows=40, FORMAE_PAGER=str(script)),  # it fits
        on_terminal(agent, 200, "--no-pager", *listing, rows=6, FORMAE_PAGER=str(script)),
        on_terminal(agent, 200, *listing, "-o", "json", rows=6, FORMAE_PAGER=str(script)),
        piped(agent, *listing, FORMAE_PAGER=str(script)),
    ]
    for text in not_paged:
        assert "PAGED-BY-TEST" not in text
        assert applied["resources"][0]["native_id"] in text, "printed as it is instead"
    assert not record.exists()
