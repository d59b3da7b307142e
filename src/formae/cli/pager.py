"""Long listings through a pager, on a terminal only, as ``git`` and ``systemctl`` do.

A table taller than the terminal scrolls its header, and its first rows, out of sight; people
expect to page it. But a pager must never stand between formae and a script or a CI log, so a
listing is paged only when all of these hold:

- stdout is a terminal (never a pipe, a file or a CI log; ``-o json|yaml`` never reach a table);
- it is taller than the terminal;
- paging is not turned off: ``formae --no-pager …`` (which sets ``FORMAE_PAGER`` empty, see
  ``formae.cli.entry``), ``FORMAE_PAGER=`` or, when ``FORMAE_PAGER`` is unset, ``PAGER=`` (empty);
- the pager can be found.

The pager is ``$FORMAE_PAGER``, else ``$PAGER``, else ``less -FRX`` (leave at once when the text
fits after all, pass colours through, leave the text on the screen), split like a shell would
but run without one. If it cannot be found or started, the listing is printed as it would be
without a pager.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

DEFAULT_PAGER = ("less", "-FRX")


def pager_command(environ: Mapping[str, str]) -> list[str] | None:
    """The pager to run, as arguments; None when paging is turned off."""
    for name in ("FORMAE_PAGER", "PAGER"):
        if name in environ:
            value = environ[name].strip()
            return shlex.split(value) if value else None
    return list(DEFAULT_PAGER)


def show(console: Console, renderable: RenderableType) -> None:
    """Print ``renderable`` on the terminal ``console``, through the pager if it is taller than it."""
    command = pager_command(os.environ)
    if command is None or shutil.which(command[0]) is None:
        console.print(renderable, crop=False)
        return
    with console.capture() as captured:
        console.print(renderable, crop=False)
    text = captured.get()
    if text.count("\n") < console.height or not _paged(command, text):
        console.file.write(text)
        console.file.flush()


def _paged(command: list[str], text: str) -> bool:
    """Whether ``text`` went through the pager (False: it could not be started)."""
    try:
        subprocess.run(command, input=text, text=True, check=False)
    except OSError:
        return False
    except KeyboardInterrupt:  # ^C in the pager ends the listing, not formae with a traceback
        pass
    return True
