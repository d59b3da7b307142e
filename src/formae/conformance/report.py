"""What the kit found: one result per check, in the order the checks ran."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    """Nothing to check: the plugin never did what the check is about (say, answer IN_PROGRESS)."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: Outcome
    detail: str = ""


@dataclass
class Report:
    executable: str
    results: list[CheckResult] = field(default_factory=list)
    log: str = ""
    """What the plugin wrote on stdout and stderr, for a reader of a failure."""

    def add(self, name: str, outcome: Outcome, detail: str = "") -> CheckResult:
        result = CheckResult(name, outcome, detail)
        self.results.append(result)
        return result

    @property
    def passed(self) -> bool:
        return not any(r.outcome is Outcome.FAIL for r in self.results)

    def counts(self) -> dict[str, int]:
        return {o.value: sum(r.outcome is o for r in self.results) for o in Outcome}

    def as_dict(self) -> dict[str, object]:
        return {
            "executable": self.executable,
            "passed": self.passed,
            "counts": self.counts(),
            "checks": [
                {"name": r.name, "outcome": r.outcome.value, "detail": r.detail} for r in self.results
            ],
        }


@dataclass(frozen=True)
class Scenario:
    """One resource type taken through its whole life: created with ``properties``, updated to ``update``."""

    type: str
    properties: dict[str, Any]
    update: dict[str, Any] | None = None


class CheckFailed(AssertionError):
    """Raised inside a check: the message is the report's detail."""
