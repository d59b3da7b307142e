"""Installing plugins into the agent's home, each version in a directory of its own.

``{home}/plugins/{name}/v{version}/`` holds a plugin the agent can start: its executable
``{name}-plugin`` (what the agent's PluginManager looks for), ``install.json`` (where it came from,
what it serves) and, for a Python package, the virtualenv ``venv/`` it was installed into — its own,
so it cannot be broken by another plugin's dependencies, or by the environment it was installed
from moving or vanishing. A plain executable, in any language, is copied there instead.

The executable appears last, in one rename, so the agent (which rescans the directory) never
starts a half-installed plugin.
"""

from formae.installer.errors import InstallError
from formae.installer.install import PipOptions, install
from formae.installer.layout import InstalledVersion, installed_versions, uninstall

__all__ = ["InstallError", "InstalledVersion", "PipOptions", "install", "installed_versions", "uninstall"]
