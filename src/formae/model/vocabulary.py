"""The words every layer shares: what happens to a resource, and how a forma is applied.

There is one ``Operation`` and one ``Mode`` in formae, and one spelling of the states of commands and
of resource updates. The planner, the engine, the store, the API, the CLI and the plugin SDK all use
these; the edges map them to their own representation: the wire codec (``formae.wire.codec``) to the
protocol's enum numbers, the store to its column text (the enum's value). Their values are the
spelling users see in the API and the CLI. The transition tables live with their single writers
(``agent/command_state.py``, ``agent/updater.py``). This module imports nothing, so the CLI can
use it without paying for pydantic at start.
"""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    """What is done to one resource. A replace is not an operation: it is a DELETE and a CREATE."""

    CREATE = "create"
    READ = "read"
    """A read of the cloud: the synchronizer's, a status poll's, or an adoption that changes nothing."""
    UPDATE = "update"
    DELETE = "delete"
    LIST = "list"
    """A page of the resources of one type (discovery); never a planned update."""


class Mode(StrEnum):
    """RECONCILE makes the forma's stacks exactly the forma; PATCH only adds and changes."""

    RECONCILE = "reconcile"
    PATCH = "patch"


class CommandState(StrEnum):
    """A command's states; the transition table lives with the agent (``agent/command_state.py``)."""

    QUEUED = "Queued"
    """Accepted with ``--wait`` behind a running command on its stacks; planned when its turn comes."""
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCESS = "Success"
    FAILED = "Failed"
    CANCELING = "Canceling"
    CANCELED = "Canceled"

    @property
    def is_final(self) -> bool:
        """Final commands are history; the others must be resumed after a crash."""
        return self in _FINAL_COMMAND_STATES


_FINAL_COMMAND_STATES = frozenset({CommandState.SUCCESS, CommandState.FAILED, CommandState.CANCELED})


class UpdateState(StrEnum):
    """The ResourceUpdater's states; the transition table lives with the updater, not here."""

    PENDING = "Pending"
    DISPATCHING = "Dispatching"
    IN_PROGRESS = "InProgress"
    WAITING_RETRY = "WaitingRetry"
    SUCCESS = "Success"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_UPDATE_STATES


_FINAL_UPDATE_STATES = frozenset({UpdateState.SUCCESS, UpdateState.FAILED, UpdateState.CANCELED})


INCOMPLETE_COMMAND_STATES: tuple[CommandState, ...] = tuple(s for s in CommandState if not s.is_final)
"""What must be resumed after a crash."""
