"""Bad input against a real agent and fake-aws, on SQLite and PostgreSQL: refused up front, nothing written.

Each input is sent twice — as a file through the ``formae`` CLI (exit code 3, the problem on
stderr) and as a raw body to the REST API (a 4xx naming the problem) — and after each the store
itself is queried: no stack, no target, no command, and nothing in the fake cloud. One agent per
backend serves every case, so the check also proves that no earlier case left anything behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from formae.cli.client import Rejected
from formae.store import open_store, sqlite_url
from tests.integration.harness import AgentUnderTest, install_fake_aws, network_forma
from tests.postgres import POSTGRES_URL, create_schema, drop_schema, with_search_path

pytestmark = pytest.mark.timeout(120)

FORMAE = Path(sys.executable).parent / "formae"

BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    """The forma as its file holds it (JSON unless ``suffix`` says otherwise), also the API body's forma."""
    problem: str
    suffix: str = ".json"


def forma_text(**changes: Any) -> str:
    """The network forma as JSON text, with ``changes`` applied; raw strings stay raw (escapes, NaN)."""
    forma = network_forma()
    for where, value in changes.items():
        resource, field = where.split("__")
        index = {"vpc": 0, "subnet": 1, "bucket": 2}[resource]
        if field == "label":
            forma["resources"][index]["label"] = "@@RAW@@"
        else:
            forma["resources"][index]["properties"][field] = "@@RAW@@"
        return json.dumps(forma).replace('"@@RAW@@"', value)
    return json.dumps(forma)


def nested_json(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def reference(to_property: str) -> str:
    return json.dumps(
        {
            "$res": True,
            "$label": "vpc",
            "$type": "FakeAWS::EC2::VPC",
            "$stack": "net",
            "$property": to_property,
        }
    )


CASES = [
    Case("deep", forma_text(bucket__Deep=nested_json(900)), "nested more than 64 levels deep"),
    Case("surrogate", forma_text(bucket__label='"b\\ud800"'), "a lone UTF-16 surrogate"),
    Case("nul", forma_text(bucket__label='"b\\u0000"'), "the NUL character U+0000"),
    Case("nan", forma_text(bucket__Size="NaN"), "nan is not a JSON number"),
    Case("infinity", forma_text(bucket__Size="-Infinity"), "-inf is not a JSON number"),
    Case("ansi", forma_text(bucket__label='"\\u001b[31mred"'), "the escape character U+001B"),
    Case("control", forma_text(vpc__label='"v\\u0007"'), "the control character U+0007"),
    Case(
        "unknown-type",
        forma_text().replace('"FakeAWS::S3::Bucket"', '"FakeAWS::S3::Buckets"'),
        "type FakeAWS::S3::Buckets is not served by the FakeAWS plugin; did you mean FakeAWS::S3::Bucket?",
    ),
    Case(
        "missing-referred-property",
        forma_text(subnet__VpcId=reference("VpcIdd")),
        "properties.VpcId: refers to net/FakeAWS::EC2::VPC/vpc's property 'VpcIdd', "
        "which type FakeAWS::EC2::VPC does not have",
    ),
    Case("schema", forma_text(vpc__CidrBlock="5"), "properties.CidrBlock: 5 is not of type 'string'"),
    Case("alias-bomb", BILLION_LAUGHS, "more than 5,000,000 values (YAML aliases expanded)", ".yaml"),
]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def agent(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentUnderTest]:
    """One agent per backend for every case: nothing any case sends may ever be written."""
    schema = asyncio.run(create_schema()) if request.param == "postgres" else None
    home = tmp_path_factory.mktemp("bad-input") / "home"
    install_fake_aws(home)
    store_url = with_search_path(POSTGRES_URL, schema) if schema else None
    running = AgentUnderTest(home, store_url=store_url)
    try:
        running.start().wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
        yield running
    finally:
        running.cleanup()
        if schema:
            asyncio.run(drop_schema(schema))


def formae(agent: AgentUnderTest, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **agent.cli_env(), "FORMAE_API_URL": agent.runtime["api_url"], "COLUMNS": "300"}
    return subprocess.run(
        [str(FORMAE), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def post_apply(agent: AgentUnderTest, forma_text: str, simulate: bool = False) -> tuple[int, list[str]]:
    """POST the forma as raw JSON, as any client may: nothing on this side parses or checks it."""
    body = f'{{"forma": {forma_text}, "mode": "reconcile", "simulate": {json.dumps(simulate)}}}'
    with agent.client() as client:
        try:
            client.request("POST", "/commands/apply", content=body.encode("utf-8", "surrogatepass"))
        except Rejected as refused:
            return refused.status, refused.problems
    return 202, []


def stored(agent: AgentUnderTest) -> dict[str, int]:
    """What the agent's datastore holds, read from the store itself (not through the agent)."""

    async def count() -> dict[str, int]:
        store = await open_store(agent.store_url or sqlite_url(agent.home / "data" / "formae.db"))
        try:
            return {
                "stacks": len(await store.list_stacks()),
                "targets": len(await store.list_targets()),
                "commands": len(await store.list_commands(limit=100, with_forma=False)),
                "resources": len(await store.current_resources()),
            }
        finally:
            await store.close()

    return asyncio.run(count())


NOTHING = {"stacks": 0, "targets": 0, "commands": 0, "resources": 0}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_the_cli_exits_3_naming_the_problem_and_nothing_is_written(
    agent: AgentUnderTest, case: Case, tmp_path: Path
) -> None:
    path = tmp_path / f"{case.name}{case.suffix}"
    path.write_bytes(case.text.encode("utf-8", "surrogatepass"))

    applied = formae(agent, "apply", str(path))

    assert applied.returncode == 3, applied.stdout + applied.stderr
    assert case.problem in applied.stderr
    assert "Traceback" not in applied.stderr
    assert not {"\x1b", "\x00", "\x07"} & set(applied.stderr)  # escapes are shown, never replayed
    assert stored(agent) == NOTHING
    assert agent.cloud() == {}


@pytest.mark.parametrize("case", [c for c in CASES if c.suffix == ".json"], ids=lambda case: case.name)
def test_the_api_answers_4xx_naming_the_problem_and_nothing_is_written(
    agent: AgentUnderTest, case: Case
) -> None:
    status, problems = post_apply(agent, case.text)

    assert 400 <= status < 500, problems
    assert any(case.problem in problem for problem in problems), problems
    assert stored(agent) == NOTHING
    assert agent.cloud() == {}


def test_the_api_refuses_a_body_nested_past_the_parser(agent: AgentUnderTest) -> None:
    status, _ = post_apply(agent, forma_text(bucket__Deep=nested_json(5000)))

    assert 400 <= status < 500
    assert stored(agent) == NOTHING


def test_simulate_shows_every_problem_at_once_with_where_it_is(agent: AgentUnderTest, tmp_path: Path) -> None:
    forma = network_forma()
    forma["resources"][0]["properties"] = {"CidrBlock": 5, "cidrBlock": "10.0.0.0/16"}
    forma["resources"][1]["properties"]["VpcId"]["$property"] = "Id"
    forma["resources"][2]["type"] = "FakeAWS::S3::Buckt"
    forma["resources"].append(
        {
            "label": "orphan",
            "type": "FakeAWS::EC2::Subnet",
            "stack": "net",
            "target": "local",
            "properties": {
                "CidrBlock": "10.0.2.0/24",
                "VpcId": json.loads(reference("VpcId")) | {"$label": "nope"},
            },
        }
    )
    path = tmp_path / "many.json"
    path.write_text(json.dumps(forma))

    simulated = formae(agent, "apply", "--simulate", str(path))

    assert simulated.returncode == 3
    problems = [line.strip() for line in simulated.stderr.splitlines() if line.strip().startswith("- ")]
    assert problems == [
        "- resource net/FakeAWS::S3::Buckt/bucket: type FakeAWS::S3::Buckt is not served by the FakeAWS "
        "plugin; did you mean FakeAWS::S3::Bucket?",
        "- resource net/FakeAWS::EC2::VPC/vpc: properties: 'cidrBlock' does not match '^[A-Z][A-Za-z0-9]*$'",
        "- resource net/FakeAWS::EC2::VPC/vpc: properties.CidrBlock: 5 is not of type 'string'",
        "- resource net/FakeAWS::EC2::Subnet/subnet: properties.VpcId: refers to "
        "net/FakeAWS::EC2::VPC/vpc's property 'Id', which type FakeAWS::EC2::VPC does not have "
        "(it has CidrBlock, Description, FakeDelayMs, FakeFailTimes, FakeFailWith, "
        "FakeInProgressPolls, Group, Name, Tags, VpcId, cidrBlock)",
        "- resource net/FakeAWS::EC2::Subnet/orphan refers to net/FakeAWS::EC2::VPC/nope (in VpcId), "
        "which is neither in the forma nor managed",
    ]
    assert stored(agent) == NOTHING


def test_a_good_forma_still_applies_after_all_that(agent: AgentUnderTest, tmp_path: Path) -> None:
    """Last in the module: the agent that refused everything above still works, and writes only now."""
    path = tmp_path / "good.yaml"
    path.write_text(json.dumps(network_forma()))  # JSON is YAML 1.2

    applied = formae(agent, "apply", "--watch", str(path))

    assert applied.returncode == 0, applied.stderr
    assert stored(agent) == {"stacks": 1, "targets": 1, "commands": 1, "resources": 3}
    assert len(agent.cloud()) == 3
