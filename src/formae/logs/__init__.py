"""The agent's log: text or JSON lines, each carrying the command, resource and plugin it concerns.

Why a package of its own: an operator reading a log of ten concurrent applies needs to know which
line is about which command, resource and plugin without every caller passing those by hand. So
the places where that work runs bind the fields once (``bound(command_id=…)`` in the command's
task, ``bound(resource=…)`` in each update, ``bound(namespace=…, node=…)`` around a plugin call),
and every line logged inside carries them, through asyncio's context copying into child tasks.

- ``context.py``     the fields bound to the running code (contextvars), and the filter stamping them
- ``formatting.py``  text lines (``… key=value``) and JSON lines (one object per line)
- ``setup.py``       handlers, the level (changed live by a reload) and rotation of ``logs/agent.log``
"""

from formae.logs.context import CONTEXT_FIELDS, bound, current_fields
from formae.logs.formatting import JsonFormatter, TextFormatter
from formae.logs.setup import configure_logging, set_level

__all__ = [
    "CONTEXT_FIELDS",
    "JsonFormatter",
    "TextFormatter",
    "bound",
    "configure_logging",
    "current_fields",
    "set_level",
]
