"""Property-based: no input crashes the forma loader or the planner; they raise only their own errors.

The loader's documented error is :class:`FormaError`, the planner's :class:`PlanError` (and the
DAG's :class:`DagError` for a cycle). Anything else — a RecursionError, a KeyError, a TypeError
from an unexpected shape — would be a 500 from the API or a traceback from the CLI. Examples are
bounded so the whole module runs in a few seconds.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from formae_fake_aws.schemas import BUCKET_SCHEMA, SUBNET_SCHEMA, VPC_SCHEMA
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from formae.forma import FormaError, forma_from_json
from formae.forma.loader import parse_yaml
from formae.model import Forma, Mode
from formae.plan import Dag, DagError, ManagedResource, PlanError, TypeSchema, plan, plan_destroy

pytestmark = pytest.mark.timeout(60)

BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VPC, SUBNET, BUCKET = "FakeAWS::EC2::VPC", "FakeAWS::EC2::Subnet", "FakeAWS::S3::Bucket"
SCHEMAS = {
    VPC: TypeSchema(VPC, "VpcId", frozenset({"CidrBlock"}), frozenset({"VpcId"}), VPC_SCHEMA),
    SUBNET: TypeSchema(SUBNET, "SubnetId", frozenset({"VpcId", "CidrBlock"}), frozenset(), SUBNET_SCHEMA),
    BUCKET: TypeSchema(BUCKET, "BucketName", frozenset({"BucketName"}), frozenset(), BUCKET_SCHEMA),
    "FakeAWS::Odd::Schema": TypeSchema("FakeAWS::Odd::Schema", "Id", json_schema={"type": 12}),
}
LOOSE = {name: TypeSchema(s.type, s.identifier, s.create_only, s.read_only) for name, s in SCHEMAS.items()}
"""The same types without JSON Schemas: random properties then get past validation into planning."""


def mostly(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """Good values thirty times as likely as bad ones, so most formas get past the loader to the planner."""
    return st.sampled_from(good * 30 + bad)


LABELS = mostly(["vpc", "subnet", "b", "c"], ["", "x\x1b", "ü\u202e"])
TYPES = mostly([VPC, SUBNET, BUCKET, "FakeAWS::Odd::Schema", "FakeAWS::No::Schema"], ["x", "AWS::S3::Bucket"])
STACKS = mostly(["net", "app"], ["nowhere"])
PROPERTY_NAMES = mostly(
    ["CidrBlock", "VpcId", "BucketName", "Tags", "Versioning", "Name", "LogsTo", "X"],
    ["$res", "$value", "a\x00"],
)

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | mostly(["10.0.0.0/16", "10.0.1.0/24", "vpc-1"], [float("nan"), float("-inf"), "a\x00", "\ud800"])
)


def json_values(leaves: st.SearchStrategy[Any] = JSON_SCALARS) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=12,
    )


REFERENCES = st.fixed_dictionaries(
    {
        "$res": mostly([True], [1, "yes"]),
        "$label": LABELS,
        "$type": TYPES,
        "$stack": STACKS,
        "$property": PROPERTY_NAMES,
    }
)
PROPERTY_VALUES = JSON_SCALARS | REFERENCES | json_values(JSON_SCALARS | REFERENCES)

RESOURCES = st.fixed_dictionaries(
    {
        "label": LABELS,
        "type": TYPES,
        "stack": STACKS,
        "target": mostly(["local"], ["gone"]),
        "properties": st.dictionaries(PROPERTY_NAMES, PROPERTY_VALUES, max_size=4),
    }
)
FORMAS = st.fixed_dictionaries(
    {
        "stacks": st.just([{"label": "net"}, {"label": "app"}]),
        "targets": st.just([{"label": "local", "namespace": "FakeAWS", "config": {}}]),
        "resources": st.lists(
            RESOURCES, min_size=1, max_size=6, unique_by=lambda r: (r["label"], r["type"], r["stack"])
        ),
    }
)

YAML_TOKENS = st.sampled_from(
    ["a", ": ", "\n", "  ", "- ", "[", "]", "{", "}", ",", "&x ", "*x", "!!str ", "!!binary ", "'", '"',
     "#", "NO", "on", "0755", ".nan", "~", "? ", "|", ">", "%YAML 1.1\n", "---\n", "\t", "\\u0000", "\x00"]
)  # fmt: skip


def loaded(data: Any) -> Forma | None:
    try:
        return forma_from_json(data, "f")
    except FormaError:
        return None


def managed(forma: Forma) -> dict[Any, ManagedResource]:
    return {
        r.key: ManagedResource(r.key, r.target, f"id-{r.label}", dict(r.properties), dict(r.properties))
        for r in forma.resources
    }


@BOUNDED
@given(json_values())
def test_the_loader_raises_only_forma_errors_on_any_json(data: Any) -> None:
    loaded(data)
    loaded({"resources": [data], "stacks": data, "targets": [data]})


@BOUNDED
@given(st.lists(YAML_TOKENS, max_size=40).map("".join) | st.text(max_size=80))
def test_the_yaml_reader_raises_only_forma_errors_on_any_text(text: str) -> None:
    with contextlib.suppress(FormaError):
        loaded(parse_yaml("f.yaml", text))


@BOUNDED
@given(FORMAS, FORMAS, st.sampled_from(Mode), st.sampled_from([SCHEMAS, LOOSE]))
def test_the_planner_raises_only_plan_errors_on_any_forma_and_state(
    data: dict[str, Any], before: dict[str, Any], mode: Mode, schemas: dict[str, TypeSchema]
) -> None:
    forma, earlier = loaded(data), loaded(before)
    if forma is None:
        event("forma refused by the loader")
        return
    current = managed(earlier) if earlier is not None else {}
    try:
        changeset = plan(forma, current, schemas, mode, targets={t.label: t for t in forma.targets})
        Dag(changeset)
        event(f"planned {min(len(changeset.updates), 3)}+ updates")
    except (PlanError, DagError) as error:
        event(f"refused by the {type(error).__name__}")
    Dag(plan_destroy(forma, current, targets={t.label: t for t in forma.targets}))
