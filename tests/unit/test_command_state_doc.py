"""docs/architecture.md shows the command state machine exactly as ``agent/command_state.py`` has it.

The table a newcomer reads is compared with ``TRANSITIONS``, so a move added to one and not the other
fails here instead of misleading someone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from formae.agent.command_state import TRANSITIONS
from formae.store import CommandState

pytestmark = pytest.mark.timeout(10)

ARCHITECTURE = Path(__file__).parents[2] / "docs" / "architecture.md"
STATES = {state.value: state for state in CommandState}


def documented_moves() -> dict[CommandState, frozenset[CommandState]]:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    table = text.split("| command state | meaning | may move to |", 1)[1].split("\n\n", 1)[0]
    moves: dict[CommandState, frozenset[CommandState]] = {}
    for row in table.splitlines()[2:]:
        sources, _, targets = (cell.strip() for cell in row.strip("|").split(" | "))
        named = re.sub(
            r"\([^)]*\)", "", targets
        )  # "(resumed after a restart)" and the like explain, not move
        found = frozenset(STATES[word] for word in re.findall(r"[A-Z][A-Za-z]+", named) if word in STATES)
        for source in re.findall(r"`(\w+)`", sources):
            moves[STATES[source]] = found
    return moves


def test_the_architecture_doc_has_every_command_state_and_move_of_the_table() -> None:
    assert documented_moves() == TRANSITIONS
