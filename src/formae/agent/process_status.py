"""What the PluginProcessManager knows about each plugin it runs, for people: state, restarts, last words.

A plugin that crashes at start never announces itself, so the registry cannot say anything about it.
Its supervisor can: how often it was restarted, how it last exited, what it last wrote on stderr and
when the next try is. ``formae plugin list`` and ``/health`` show this, so a crash-looping plugin is
visible instead of silently missing. The state machine is the ``TRANSITIONS`` table; ``move`` is its
only writer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

STDERR_LINES = 20
"""How many of a plugin's last stderr lines are kept to explain its crashes."""

STDERR_LINE_CHARS = 500

CRASH_LOOP_AFTER = 3
"""Consecutive short runs after which a plugin counts as crash-looping."""


class ProcessState(StrEnum):
    STARTING = "starting"
    """About to be spawned."""
    RUNNING = "running"
    """The process exists (whether or not it has announced itself yet)."""
    BACKING_OFF = "backing-off"
    """It exited (or could not be spawned); waiting until ``next_try_at`` to start it again."""
    REFUSED = "refused"
    """It exited 78, the SDK's answer to a refusal by the agent: restarting it cannot help."""
    STOPPED = "stopped"
    """The agent is stopping."""


TRANSITIONS: dict[ProcessState, frozenset[ProcessState]] = {
    ProcessState.STARTING: frozenset({ProcessState.RUNNING, ProcessState.BACKING_OFF, ProcessState.STOPPED}),
    ProcessState.RUNNING: frozenset({ProcessState.BACKING_OFF, ProcessState.REFUSED, ProcessState.STOPPED}),
    ProcessState.BACKING_OFF: frozenset({ProcessState.STARTING, ProcessState.STOPPED}),
    ProcessState.REFUSED: frozenset({ProcessState.STOPPED}),
    ProcessState.STOPPED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


@dataclass
class ProcessStatus:
    name: str
    version: str
    node: str
    state: ProcessState = ProcessState.STARTING
    pid: int | None = None
    restarts: int = 0
    """Times the process was started again after exiting, over the agent's life."""
    failures: int = 0
    """Consecutive short runs (reset by a run longer than the policy's ``stable_after``)."""
    last_exit_code: int | None = None
    last_exit_at: datetime | None = None
    next_try_at: datetime | None = None
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_LINES))

    @property
    def crash_looping(self) -> bool:
        return self.failures >= CRASH_LOOP_AFTER and self.state is not ProcessState.STOPPED

    def move(self, state: ProcessState) -> None:
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"plugin process {self.name}: {self.state} -> {state}")
        self.state = state

    def started(self, pid: int) -> None:
        self.move(ProcessState.RUNNING)
        self.pid = pid
        self.next_try_at = None

    def exited(self, code: int | None, failures: int, delay: float | None) -> None:
        """Record an exit; ``delay`` is when it is tried again (None: never, it was refused)."""
        self.failures = failures
        self.last_exit_code = code
        self.last_exit_at = datetime.now(UTC)
        self.pid = None
        if delay is None:
            self.move(ProcessState.REFUSED)
            return
        self.move(ProcessState.BACKING_OFF)  # from STARTING too: it could not be spawned
        self.next_try_at = self.last_exit_at + timedelta(seconds=delay)

    def retrying(self) -> None:
        self.move(ProcessState.STARTING)
        self.restarts += 1

    def stopped(self) -> None:
        if self.state is not ProcessState.STOPPED:
            self.move(ProcessState.STOPPED)
        self.next_try_at = None

    def wrote(self, line: str) -> None:
        self.stderr.append(line[:STDERR_LINE_CHARS])

    def problem(self) -> str | None:
        """Why this plugin is not serving, in one line; None while nothing is wrong with its process."""
        if self.state is ProcessState.REFUSED:
            return f"plugin {self.name} exited 78 (refused by this agent) and is not restarted"
        if not self.crash_looping:
            return None
        next_try = f", next try at {self.next_try_at:%H:%M:%S}Z" if self.next_try_at else ""
        return (
            f"plugin {self.name} is crash-looping: {self.failures} quick exits in a row, "
            f"{self.restarts} restarts, last exit code {self.last_exit_code}{next_try}"
        )
