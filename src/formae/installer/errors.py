"""The one error the installer raises: a message the CLI prints as is."""


class InstallError(Exception):
    """The plugin could not be installed, or uninstalled; the message says why and what to do."""
