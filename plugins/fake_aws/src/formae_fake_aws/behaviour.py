"""How the fake misbehaves on request: slow, InProgress for a while, or failing with a code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from formae.plugin import ErrorCode


def parse_error_code(name: str) -> ErrorCode:
    """Accept ``Throttling``, ``THROTTLING`` or ``throttling``."""
    wanted = name.replace("_", "").lower()
    for code in ErrorCode:
        if code.name.replace("_", "").lower() == wanted:
            return code
    raise ValueError(f"unknown error code {name!r}; one of {', '.join(c.wire_name for c in ErrorCode)}")


@dataclass(frozen=True)
class Behaviour:
    in_progress_polls: int = 0
    fail_with: ErrorCode | None = None
    fail_times: int = 0
    delay_ms: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Behaviour:
        fail_with = env.get("FAKE_AWS_FAIL_WITH")
        return cls(
            in_progress_polls=int(env.get("FAKE_AWS_IN_PROGRESS_POLLS", "0")),
            fail_with=parse_error_code(fail_with) if fail_with else None,
            fail_times=int(env.get("FAKE_AWS_FAIL_TIMES", "1" if fail_with else "0")),
            delay_ms=int(env.get("FAKE_AWS_DELAY_MS", "0")),
        )

    def overridden_by(self, properties: Mapping[str, Any]) -> Behaviour:
        """This behaviour with the resource's own ``Fake*`` properties taking precedence."""
        result = self
        if "FakeInProgressPolls" in properties:
            result = replace(result, in_progress_polls=int(properties["FakeInProgressPolls"]))
        if "FakeFailWith" in properties:
            code = parse_error_code(str(properties["FakeFailWith"]))
            result = replace(result, fail_with=code, fail_times=int(properties.get("FakeFailTimes", 1)))
        if "FakeDelayMs" in properties:
            result = replace(result, delay_ms=int(properties["FakeDelayMs"]))
        return result
