"""Where formae keeps its files: one home directory, found the same way by the agent and the CLI.

A module of its own so that the CLI can find the running agent (``{home}/run/agent.json``)
without importing the agent's configuration and what that pulls in (asyncio among it): every
``formae`` command pays its imports before it does anything (see ``formae.cli``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def default_home(env: Mapping[str, str]) -> Path:
    """``FORMAE_HOME``, else ``~/.pel/formae``."""
    return Path(env.get("FORMAE_HOME") or Path.home() / ".pel" / "formae")
