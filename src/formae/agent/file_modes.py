"""The agent's home is private: checked, and fixed or refused, at every start.

Everything under ``{home}`` is either secret (the network cookie, the secrets key, the CA key, the
API token), or tells a secret's story (the datastore, logs, the audit log, grants). So the home is
0700, its files 0600, and the agent makes new ones so (umask 077). At start, a file or directory
that is too open is fixed and the fix logged; one that belongs to another user is refused, since
the agent cannot know what that user did with it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("formae.agent.files")

PRIVATE_DIRS = ("run", "logs", "data", "pki", "grants")


class UnsafeHome(Exception):
    """Part of the home belongs to another user: the agent will not run on it."""


def make_private_by_default() -> None:
    """Files and directories the agent creates from now on: for its user alone."""
    os.umask(0o077)


def secure_home(home: Path) -> list[str]:
    """Fix what is too open under ``home``; what was fixed, for the log. Raises ``UnsafeHome``."""
    if not home.exists():
        return []
    fixed = _fix(home)
    for directory in (home / name for name in PRIVATE_DIRS):
        if directory.is_dir():
            fixed += _fix(directory)
            fixed += [f for path in _files(directory) for f in _fix(path)]
    for path in home.iterdir():
        if path.is_file() and not path.is_symlink():
            fixed += _fix(path)
    for change in fixed:
        log.warning("file permissions fixed: %s", change)
    return fixed


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if not p.is_symlink() and (p.is_file() or p.is_dir())]


def _fix(path: Path) -> list[str]:
    """Take every permission away from group and others (0700 directories, 0600 files stay so)."""
    info = path.lstat()
    if info.st_uid != os.geteuid():
        raise UnsafeHome(
            f"{path} belongs to uid {info.st_uid}, not to the agent's user ({os.geteuid()}): "
            "move it away or chown it, then start again"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077 == 0:
        return []
    os.chmod(path, mode & 0o700)
    return [f"{path} was {mode:04o}, now {mode & 0o700:04o}"]
