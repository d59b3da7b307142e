"""The ``formae`` executable's first code: what must be decided before the CLI is imported.

``--no-color`` has to reach the consoles when they are made, which is when ``formae.cli.main`` is
imported; so it is turned into ``NO_COLOR`` here, first, and ``--no-pager`` into an empty
``FORMAE_PAGER`` (what turns paging off, see ``formae.cli.pager``) with it. Importing the CLI only
after that also keeps this module the one place where start-up work can be made lazier.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    if "--no-color" in sys.argv[1:]:
        os.environ["NO_COLOR"] = "1"
    if "--no-pager" in sys.argv[1:]:
        os.environ["FORMAE_PAGER"] = ""
    if os.environ.get("_FORMAE_COMPLETE"):
        from formae.cli.completion_cmd import prepare

        prepare()
    from formae.cli.main import main as run

    run()
