"""The agent's configuration: a file (``{home}/formae.pkl`` or ``--config``), layered under the
environment and flags, validated at start, shown with the origin of every value, reloaded live.

Why a package of its own: the agent had flags and environment variables only, each read where it
was used; an operator running formae for a team needs one place that says every setting, where its
value came from, what is wrong with a file (file, line, field), and what a reload can change
without a restart. It sits below the agent: it knows shapes, sources and precedence, nothing of
actors, so the CLI (``agent config show``) and the agent (start, SIGHUP) resolve it the same way.

- ``model.py``    the file's shape (pydantic, ``extra="forbid"``), mirrored by ``schema/pkl/config.pkl``
- ``reading.py``  which file, read as Pkl, YAML 1.2 or JSON with the forma loader's readers and limits
- ``layers.py``   flags > environment > file > defaults, one row per setting, with origins
- ``display.py``  the effective configuration for a person, secrets masked
- ``changes.py``  what a reload changed, and which of those changes wait for a restart
"""

from formae.config.changes import Changes, diff
from formae.config.display import effective_rows, mask_url
from formae.config.layers import (
    BY_ATTRIBUTE,
    BY_KEY,
    SETTINGS,
    Resolved,
    Setting,
    Value,
    home_defaults,
    resolve,
)
from formae.config.model import ConfigFileModel, PluginSection, RetrySection
from formae.config.reading import CONFIG_ENV, ConfigFile, ConfigFileError, locate, read_config

__all__ = [
    "BY_ATTRIBUTE",
    "BY_KEY",
    "CONFIG_ENV",
    "SETTINGS",
    "Changes",
    "ConfigFile",
    "ConfigFileError",
    "ConfigFileModel",
    "PluginSection",
    "Resolved",
    "RetrySection",
    "Setting",
    "Value",
    "diff",
    "effective_rows",
    "home_defaults",
    "locate",
    "mask_url",
    "read_config",
    "resolve",
]
