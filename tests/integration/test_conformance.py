"""``formae plugin conformance`` on real plugin processes: fake-aws, the PostgreSQL plugin (on a real
server) and the TypeScript example pass it; a plugin that breaks the rules fails it on exactly those.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.harness import FAKE_AWS
from tests.integration.typescript import NOTES_EXAMPLE, wrapper
from tests.postgres import POSTGRES_URL, admin_connection

pytestmark = pytest.mark.timeout(120)

SLOPPY = Path(__file__).parent / "plugins" / "sloppy_plugin.py"
POSTGRES_PLUGIN = Path(sys.executable).parent / "postgres-plugin"


Scenario = tuple[str, dict[str, Any], dict[str, Any]]


def conformance(
    executable: Path, tmp_path: Path, *scenarios: Scenario, target: dict[str, Any] | None = None
) -> Any:
    args = [sys.executable, "-m", "formae", "plugin", "conformance", str(executable), "--output", "json"]
    if target is not None:
        (tmp_path / "target.json").write_text(json.dumps(target))
        args += ["--target-config", str(tmp_path / "target.json")]
    for i, (type, properties, update) in enumerate(scenarios):
        (tmp_path / f"create-{i}.json").write_text(json.dumps(properties))
        (tmp_path / f"update-{i}.json").write_text(json.dumps(update))
        args += ["--type", type, "--properties", str(tmp_path / f"create-{i}.json")]
        args += ["--update-properties", str(tmp_path / f"update-{i}.json")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=110, check=False)
    report = json.loads(done.stdout)
    return done.returncode, {c["name"]: c for c in report["checks"]}


def failures(checks: dict[str, Any]) -> dict[str, str]:
    return {name: c["detail"] for name, c in checks.items() if c["outcome"] == "fail"}


def test_fake_aws_conforms_including_in_progress_and_dependent_types(tmp_path: Path) -> None:
    code, checks = conformance(
        FAKE_AWS,
        tmp_path,
        (
            "FakeAWS::S3::Bucket",
            {"BucketName": "conformance", "FakeInProgressPolls": 2},
            {"Versioning": True},
        ),
        ("FakeAWS::EC2::VPC", {"CidrBlock": "10.9.0.0/16"}, {"Tags": [{"Key": "k", "Value": "v"}]}),
    )

    assert failures(checks) == {}
    assert code == 0
    assert len(checks) == 27
    assert checks["IN_PROGRESS then status"]["detail"].endswith("each polled to its end")


@pytest.mark.postgres
def test_the_postgresql_plugin_conforms_on_a_real_server(tmp_path: Path) -> None:
    url = urlsplit(POSTGRES_URL)
    asyncio.run(_reachable())
    role, database = f"formae_conf_{secrets.token_hex(4)}", f"formae_conf_{secrets.token_hex(4)}"
    target = {"host": url.hostname, "port": url.port or 5432, "user": url.username, "database": url.path[1:]}
    try:
        code, checks = conformance(
            POSTGRES_PLUGIN,
            tmp_path,
            ("PostgreSQL::Role", {"Name": role, "Login": True}, {"ConnectionLimit": 5}),
            ("PostgreSQL::Database", {"Name": database}, {"ConnectionLimit": 7}),
            target=target,
        )
    finally:
        asyncio.run(_drop(role, database))

    assert failures(checks) == {}
    assert code == 0
    assert checks["PostgreSQL::Role: read after update"]["outcome"] == "pass"


async def _reachable() -> None:
    await (await admin_connection()).close()


async def _drop(role: str, database: str) -> None:
    """Whatever a failed run left behind: roles and databases are the whole cluster's."""
    admin = await admin_connection()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await admin.close()


def test_the_typescript_example_conforms(tmp_path: Path) -> None:
    plugin = wrapper(tmp_path / "notes-plugin", NOTES_EXAMPLE)

    code, checks = conformance(
        plugin, tmp_path, ("Notes::Pad::Note", {"Title": "conformance", "Text": "a"}, {"Text": "b"})
    )

    assert failures(checks) == {}
    assert code == 0
    assert checks["dies with its agent"]["outcome"] == "pass"  # without prctl: it watches its parent


def test_a_plugin_that_breaks_the_rules_fails_on_those_rules(tmp_path: Path) -> None:
    plugin = tmp_path / "sloppy-plugin"
    plugin.write_text(f'#!/bin/sh\nexec {sys.executable} {SLOPPY} "$@"\n')
    plugin.chmod(0o755)

    code, checks = conformance(plugin, tmp_path, ("Sloppy::Thing::Item", {"Name": "x"}, {"Name": "y"}))

    assert code == 1
    assert set(failures(checks)) == {
        "Sloppy::Thing::Item: create retried with the same idempotency key",
        "Sloppy::Thing::Item: read after delete is NotFound",
        "errors carry codes",
    }
    assert "made a second resource item-2 instead of answering with item-1" in str(failures(checks))
    assert checks["IN_PROGRESS then status"]["outcome"] == "skip"
