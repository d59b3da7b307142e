"""What the ``formae`` command imports before it runs: none of the heavy modules (see ``formae.cli``).

Each test imports the CLI afresh in this process with the heavy modules taken out of
``sys.modules`` and any attempt to import one refused and recorded, then puts every module back.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(30)

HEAVY = (
    "rich",
    "httpx",
    "pydantic",
    "pydantic_core",
    "yaml",
    "asyncio",
    "grpc",
    "google.protobuf",
    "jsonschema",
    "fastapi",
    "formae.forma",
    "formae.model.forma",  # the pydantic models; the vocabulary (states, operations) is light
    "formae.wire",
    "formae._proto",
    "formae.agent",
    "formae.store",
    "formae.installer",
    "formae.schema",
    "formae.plan",
    "typer._adapters",
    "prometheus_client",
    "opentelemetry",
    "ruamel",
    "cryptography",
)
"""Modules that cost tens of milliseconds each (or pull in those that do)."""


class _Refuse(MetaPathFinder):
    def __init__(self, blocked: Sequence[str]) -> None:
        self.blocked = blocked
        self.refused: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if _under(fullname, self.blocked):
            self.refused.append(fullname)
            raise ImportError(f"{fullname} imported while the CLI starts")
        return None


def _under(name: str, roots: Sequence[str]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


@contextmanager
def afresh(blocked: Sequence[str] = HEAVY) -> Iterator[list[str]]:
    """Import the CLI anew inside; the heavy modules it tried to import."""
    saved = dict(sys.modules)
    for name in list(sys.modules):
        if _under(name, ("formae", "typer", *blocked)):
            del sys.modules[name]
    finder = _Refuse(blocked)
    sys.meta_path.insert(0, finder)
    try:
        yield finder.refused
    finally:
        sys.meta_path.remove(finder)
        sys.modules.clear()
        sys.modules.update(saved)


def test_importing_the_cli_imports_nothing_heavy() -> None:
    with afresh() as refused:
        try:
            import formae.cli.entry
            import formae.cli.main  # noqa: F401
        except ImportError:
            pass

    assert refused == []


def test_the_refusal_catches_a_heavy_import() -> None:
    with afresh(("json",)) as refused, pytest.raises(ImportError):
        import formae.cli.client  # noqa: F401

    assert refused == ["json"]


def test_parsing_a_status_command_needs_no_pydantic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """typer converts option values with pydantic unless ``formae.cli.params`` can; it can here."""
    monkeypatch.setenv("FORMAE_HOME", str(tmp_path))
    monkeypatch.delenv("FORMAE_API_URL", raising=False)
    with afresh(("pydantic", "typer._adapters")) as refused:
        from typer.testing import CliRunner

        from formae.cli import main

        result = CliRunner().invoke(main.app, ["status", "command", "01J", "-o", "json", "--watch"])

    assert refused == []
    assert result.exit_code == 4, result.output  # no agent under that home: parsed, then refused


def test_prune_keeps_only_the_commands_named() -> None:
    from formae.cli import main
    from formae.cli.startup import prune

    app: Any = _copy(main.app)
    prune(app, ["--no-color", "status", "command", "01J", "--watch"])

    assert [g.name for g in app.registered_groups] == ["status"]
    assert app.registered_commands == []
    status = app.registered_groups[0].typer_instance
    assert [c.name for c in status.registered_commands] == ["command"]


def test_prune_leaves_a_level_whole_when_nothing_is_named() -> None:
    from formae.cli import main
    from formae.cli.startup import prune

    for argv in ([], ["--help"], ["nosuch", "x"]):
        app: Any = _copy(main.app)
        prune(app, argv)
        assert len(app.registered_commands) == len(main.app.registered_commands)
        assert len(app.registered_groups) == len(main.app.registered_groups)


def _copy(app: Any) -> Any:
    """A shallow copy whose lists prune may replace (groups below are copied as they are reached)."""
    import copy

    copied = copy.copy(app)
    copied.registered_groups = [copy.copy(g) for g in app.registered_groups]
    for group in copied.registered_groups:
        group.typer_instance = copy.copy(group.typer_instance)
    return copied
