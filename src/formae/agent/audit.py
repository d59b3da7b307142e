"""The audit log: who did what, when, from where — one JSON object per line in ``{home}/logs/audit.log``.

The agent's own log says what the agent did; this file says what was *asked* of it and by whom:
every change through the API (with the token's id and role), every failed authentication, every
API token minted or revoked, every join token made, used or refused. It is append-only and mode
0600. Secrets never reach it: callers pass token ids, never tokens.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("formae.agent.audit")

Clock = Callable[[], datetime]


class AuditLog:
    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = path
        self._clock = clock or (lambda: datetime.now(UTC))

    def record(self, who: str, what: str, where: str, outcome: str = "ok", **details: Any) -> None:
        """Append one event; a failure to write is logged, never raised into the request."""
        event = {
            "time": self._clock().isoformat(timespec="milliseconds"),
            "who": who,
            "what": what,
            "where": where,
            "outcome": outcome,
            **details,
        }
        line = json.dumps(event, default=str, separators=(",", ":")) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as error:
            log.error("cannot write the audit log %s: %s", self.path, error)
