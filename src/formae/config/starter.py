"""A first ``{home}/formae.pkl``: it amends formae's module by its absolute path, so ``pkl`` finds it.

Written once (never over an existing configuration file), private to the agent's user like the rest
of the home, every setting left to its default and a few examples commented out.
"""

from __future__ import annotations

import os
from pathlib import Path

from formae.config.reading import NAMES

MODULE = Path(__file__).resolve().parent.parent / "schema" / "pkl" / "config.pkl"

_BODY = """\
// The formae agent's configuration; every field is optional (docs/operations.md lists them all).
// Flags of `formae agent start` and FORMAE_* variables win over this file.
// `formae agent config show` prints what is in force; `formae agent reload` applies a change live.

// sync { interval = 5.min }
// discovery { interval = 1.h }
// logging { level = "info"; format = "json"; file { max_bytes = 50.mb; backups = 3 } }
// retry { max_attempts = 10; codes { ["Throttling"] { max_attempts = 30 } } }
// plugins {
//   ["aws"] { env { "AWS_PROFILE" }; set { ["AWS_REGION"] = "eu-west-1" }; rate_limit = 5 }
// }
"""


def write_starter(home: Path) -> Path | None:
    """``{home}/formae.pkl`` written, or None when the home has a configuration file already."""
    if any((home / name).exists() for name in NAMES):
        return None
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = home / "formae.pkl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(f'amends "{MODULE}"\n\n{_BODY}')
    return path
