"""The ``formae`` executable's first code: what must be decided before the CLI is imported.

``--no-color`` has to reach the consoles when they are made, which is when ``formae.cli.main`` is
imported; so it is turned into ``NO_COLOR`` here, first. Importing the CLI only after that also
keeps this module the one place where start-up work can be made lazier.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    if "--no-color" in sys.argv[1:]:
        os.environ["NO_COLOR"] = "1"
    if os.environ.get("_FORMAE_COMPLETE"):
        from formae.cli.completion_cmd import prepare

        prepare()
    from formae.cli.main import main as run

    run()
