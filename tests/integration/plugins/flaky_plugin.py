"""A plugin of namespace Flaky that registers once, then crashes at every start: a crash loop after success.

Its first run announces itself and exits with code 3 half a second later, leaving ``FLAKY_MARKER``;
every later run finds the marker, says why on stderr and exits 3 at once, as a plugin whose cloud
credentials were revoked would.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mypy reads this directory as a package; the plugin runs as a script beside alpha_plugin
    from tests.integration.plugins.alpha_plugin import AlphaPlugin
else:
    from alpha_plugin import AlphaPlugin

from formae.plugin import ResourceSchema, run


class FlakyPlugin(AlphaPlugin):
    name, namespace, version = "flaky", "Flaky", "0.1.0"

    def schemas(self) -> list[ResourceSchema]:
        return [ResourceSchema("Flaky::Thing::Widget", identifier="Name")]

    async def setup(self) -> None:
        asyncio.get_running_loop().call_later(0.5, os._exit, 3)


if __name__ == "__main__":
    marker = Path(os.environ["FLAKY_MARKER"])
    if marker.exists():
        print("flaky: cannot reach the cloud: credentials revoked", file=sys.stderr)
        sys.exit(3)
    marker.touch()
    run(FlakyPlugin())
