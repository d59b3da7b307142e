"""formae for Python: an infrastructure-as-code agent whose resource plugins run as separate processes."""

__version__ = "0.1.0"
