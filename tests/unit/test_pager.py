"""Which pager a long listing goes through, from the environment (no process is started here)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from formae.cli import pager
from formae.cli.pager import DEFAULT_PAGER, pager_command

pytestmark = pytest.mark.timeout(30)


def test_formae_pager_then_pager_then_less() -> None:
    assert pager_command({}) == list(DEFAULT_PAGER) == ["less", "-FRX"]
    assert pager_command({"PAGER": "most -s"}) == ["most", "-s"]
    assert pager_command({"PAGER": "most", "FORMAE_PAGER": "less -R --quit-at-eof"}) == [
        "less",
        "-R",
        "--quit-at-eof",
    ]
    assert pager_command({"FORMAE_PAGER": "'/opt/my pager' -x"}) == ["/opt/my pager", "-x"]


def test_an_empty_variable_turns_paging_off() -> None:
    assert pager_command({"FORMAE_PAGER": "", "PAGER": "less"}) is None
    assert pager_command({"FORMAE_PAGER": "  "}) is None
    assert pager_command({"PAGER": ""}) is None  # as git: PAGER set empty means no pager


def test_a_pager_that_cannot_be_found_leaves_the_listing_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORMAE_PAGER", "no-such-pager-anywhere")
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80, height=3)
    table = Table("ID")
    for number in range(10):
        table.add_row(f"id-{number}")
    pager.show(console, table)
    assert all(f"id-{number}" in out.getvalue() for number in range(10))
