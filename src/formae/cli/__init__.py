"""The ``formae`` command line: a thin client of the agent's REST API (and the agent's launcher)."""
