"""What a spawned plugin's environment holds: a minimal base, formae's own variables, and its grant.

A plugin is code the operator installed, but not code that should see everything the agent sees:
the agent's environment may hold a PostgreSQL password, another plugin's cloud credentials, the
values behind ``{"$secret": {"env": …}}``. So a child gets only

- the base a program needs to run: ``PATH``, ``HOME``, ``USER``, ``LOGNAME``, ``LANG``, ``LANGUAGE``,
  ``LC_*``, ``TZ``, ``TMPDIR``;
- the ``FORMAE_*`` variables of the plugin protocol (set by ``PluginEnvironment``);
- what its **grant** names, and nothing else.

A grant is a ``PluginGrant``; today each comes from ``{home}/grants/{plugin name}.json`` (mode 0600,
owned by the agent's user; the agent refuses to start on a grant anyone else could have written),
and the configuration file can build the same objects later::

    {
      "env":   ["AWS_PROFILE", "AWS_*"],            # copied from the agent's environment (NAME or PREFIX*)
      "set":   {"AWS_REGION": "eu-west-1"},         # fixed values
      "files": {"AWS_SHARED_CREDENTIALS_FILE": "/etc/formae/aws-credentials"}   # must exist
    }
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("formae.agent.processes")

BASE_NAMES = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR"})
BASE_PREFIXES = ("LC_",)


class GrantError(Exception):
    """A grant file is unreadable, malformed, or could have been written by someone else."""


def minimal_environment(agent_env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in agent_env.items() if k in BASE_NAMES or k.startswith(BASE_PREFIXES)}


@dataclass(frozen=True)
class PluginGrant:
    env: tuple[str, ...] = ()
    """Names (or ``PREFIX*`` patterns) of the agent's variables the plugin receives."""
    set: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    """Variable → path of a file the plugin may read (credentials, certificates)."""

    @classmethod
    def from_json(cls, data: Any, source: str) -> PluginGrant:
        if not isinstance(data, dict) or set(data) - {"env", "set", "files"}:
            raise GrantError(f"{source}: a grant is an object with env, set and files, nothing else")
        env, fixed, files = data.get("env", []), data.get("set", {}), data.get("files", {})
        if not (isinstance(env, list) and all(isinstance(n, str) and n for n in env)):
            raise GrantError(f"{source}: env is a list of variable names (or PREFIX*)")
        for what, mapping in (("set", fixed), ("files", files)):
            if not (isinstance(mapping, dict) and all(isinstance(v, str) for v in mapping.values())):
                raise GrantError(f"{source}: {what} maps variable names to strings")
        for variable, path in files.items():
            if not Path(path).is_file():
                raise GrantError(f"{source}: {variable} names {path}, which is not a file")
        return cls(tuple(env), dict(fixed), dict(files))

    def environment(self, agent_env: Mapping[str, str]) -> dict[str, str]:
        copied = {k: v for k, v in agent_env.items() if any(_matches(k, p) for p in self.env)}
        return {**copied, **self.set, **self.files}


class GrantFiles:
    """The grants of ``{home}/grants``, read again at each spawn: a grant written later applies then.

    All are checked once at agent start (``load_grants``, which refuses the start on a bad one); a
    grant that turns bad later is logged and the plugin gets the minimal environment only.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        load_grants(directory)

    def get(self, name: str) -> PluginGrant | None:
        path = self.directory / f"{name}.json"
        if not path.exists():
            return None
        try:
            _check_owner_only(path)
            return PluginGrant.from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
        except (OSError, ValueError, GrantError) as error:
            log.error("plugin %s gets no grant: %s", name, error)
            return None


def load_grants(directory: Path) -> dict[str, PluginGrant]:
    """Every ``{name}.json`` of ``directory`` (none when it does not exist), by plugin name."""
    if not directory.is_dir():
        return {}
    grants = {}
    for path in sorted(directory.glob("*.json")):
        _check_owner_only(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise GrantError(f"{path}: {error}") from None
        grants[path.stem] = PluginGrant.from_json(data, str(path))
    return grants


def _check_owner_only(path: Path) -> None:
    info = path.stat()
    if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise GrantError(f"{path}: a grant must belong to the agent's user and be writable by it alone")


def _matches(name: str, pattern: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern
