"""Where the agent's log goes, at which level, and how its file is rotated.

In the foreground the log goes to stderr. The background agent (``agent start --background``) logs
to ``{home}/logs/agent.log``, rotated beyond ``logging.file.max_bytes`` into ``agent.log.1`` …
``agent.log.N``. Its stdout and stderr were opened on that file by the parent, to catch what is
printed before logging is set up (or a crash's traceback); after each rotation they are pointed at
the new file too, so nothing keeps writing into a rotated one.
"""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

from formae.logs.context import ContextFilter
from formae.logs.formatting import JsonFormatter, TextFormatter

_QUIET = ("uvicorn.access", "aiosqlite", "asyncio")


class _RotatingFile(RotatingFileHandler):
    """A rotating file that may also own the process's stdout and stderr (the background agent's)."""

    def __init__(self, file: Path, max_bytes: int, backups: int, *, follow_stdio: bool) -> None:
        super().__init__(file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._follow_stdio = follow_stdio

    def doRollover(self) -> None:  # noqa: N802 (the stdlib's name)
        super().doRollover()
        if self._follow_stdio and self.stream is not None:
            for fd in (1, 2):
                os.dup2(self.stream.fileno(), fd)


def configure_logging(
    level: str = "info",
    file: Path | None = None,
    *,
    format: str = "text",
    max_bytes: int = 10 * 2**20,
    backups: int = 5,
    follow_stdio: bool = False,
) -> None:
    """The root logger's one handler: stderr, or ``file`` rotated at ``max_bytes``.

    ``follow_stdio``: the process's stdout and stderr are that file (the background agent), and are
    moved to the new file at each rotation.
    """
    handler: logging.Handler
    if file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = _RotatingFile(file, max_bytes, backups, follow_stdio=follow_stdio)
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.captureWarnings(True)  # a library's warning is a line of the log too, in its format
    for noisy in _QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def set_level(level: str) -> None:
    """Change the agent's level now (a reload); the quiet libraries stay at warnings."""
    logging.getLogger().setLevel(level.upper())
