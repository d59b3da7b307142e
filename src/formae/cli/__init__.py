"""The ``formae`` command line: a thin client of the agent's REST API (and the agent's launcher).

Every ``formae`` command pays for its imports before it does anything, and people run them all
day: ``formae --help`` and ``formae status command`` must start within 150 ms (``python -m bench``
measures them). What makes that possible, and what a new command must keep:

- **A module of this package imports at its top only what every command needs**: the standard
  library's light modules, ``typer``, and the light modules here (``help``, ``output``,
  ``client``, ``startup``, ``params``) and ``formae.home`` / ``formae.auth``.
- **Anything heavy is imported inside the function that uses it**: ``rich`` (~30 ms),
  ``yaml``, ``httpx`` (~190 ms; the CLI speaks ``http.client``, see ``formae.cli.http``),
  ``pydantic`` and every model built on it, ``asyncio``, ``grpc``, ``formae.forma`` (the forma
  loader), ``formae.agent.*``, ``formae.installer``, ``formae.schema``, ``formae.wire``::

      def plugin_install(...) -> None:
          from formae.installer import InstallError, install   # only this command pays for it

  For type annotations, import under ``if TYPE_CHECKING:`` (every module has
  ``from __future__ import annotations``). A command's *signature* is read by typer at run time,
  so its parameter types must be light (``str``, ``Path``, ``Output`` from ``output``).
- **Consoles are made lazily**: ``output.make_console()`` (or ``plain_console()``) at module
  level gives an object that imports rich and makes the real ``Console`` the first time it prints.
- **Command groups are ``help.FormaeTyper``**: their parameters convert plain values without
  pydantic (``params``), and ``startup.prune`` builds only the commands a command line names.

``tests/unit/test_cli_startup.py`` fails when importing the CLI, or running a command's argument
parsing, imports any of the heavy modules; ``python -X importtime -m formae.cli.entry --help``
shows what a start costs.
"""
