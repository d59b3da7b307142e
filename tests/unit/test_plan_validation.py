"""Plan-time validation against the plugins' announcements: every problem at once, each with where it is."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from formae.forma import forma_from_json
from formae.model import Forma, Mode
from formae.plan import ManagedResource, PlanError, TypeSchema, plan
from formae.plan.validation import _Checker, _validator, property_problems, type_problems

pytestmark = pytest.mark.timeout(10)

VPC, SUBNET = "Cloud::Net::VPC", "Cloud::Net::Subnet"
VPC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"CidrBlock": {"type": "string"}, "Tags": {"type": "object"}, "VpcId": {"type": "string"}},
    "required": ["CidrBlock"],
    "additionalProperties": False,
}
SUBNET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "VpcId": {"type": "string", "minLength": 5},
        "Ports": {"type": "array", "items": {"type": "integer", "maximum": 65535}},
        "Secret": {"type": "string", "minLength": 3},
    },
    "required": ["VpcId"],
}
SCHEMAS = {
    VPC: TypeSchema(VPC, "VpcId", read_only=frozenset({"VpcId"}), json_schema=VPC_SCHEMA),
    SUBNET: TypeSchema(SUBNET, "SubnetId", json_schema=SUBNET_SCHEMA),
}


def ref(prop: str, label: str = "vpc") -> dict[str, Any]:
    return {"$res": True, "$label": label, "$type": VPC, "$stack": "net", "$property": prop}


def forma(*resources: tuple[str, str, dict[str, Any]]) -> Forma:
    return forma_from_json(
        {
            "stacks": [{"label": "net"}],
            "targets": [{"label": "t", "namespace": "Cloud"}],
            "resources": [
                {"label": label, "type": kind, "stack": "net", "target": "t", "properties": properties}
                for label, kind, properties in resources
            ],
        },
        "f",
    )


def test_properties_are_checked_against_the_schema_with_their_paths() -> None:
    problems = property_problems(
        forma(
            ("vpc", VPC, {"CidrBlock": 10, "Cidr": "x"}),
            ("subnet", SUBNET, {"VpcId": "vpc-123", "Ports": [80, "http", 70000]}),
        ),
        SCHEMAS,
        {},
    )

    assert problems == [
        "resource net/Cloud::Net::VPC/vpc: properties: Additional properties are not allowed "
        "('Cidr' was unexpected)",
        "resource net/Cloud::Net::VPC/vpc: properties.CidrBlock: 10 is not of type 'string'",
        "resource net/Cloud::Net::Subnet/subnet: properties.Ports[1]: 'http' is not of type 'integer'",
        "resource net/Cloud::Net::Subnet/subnet: properties.Ports[2]: 70000 is greater than the maximum "
        "of 65535",
    ]


def test_a_reference_satisfies_any_schema_and_a_secret_is_checked_as_its_value() -> None:
    subnet = {
        "VpcId": ref("VpcId"),
        "Ports": [ref("VpcId")],
        "Secret": {"$value": "s3cret", "$visibility": "Opaque"},
    }

    assert (
        property_problems(
            forma(("vpc", VPC, {"CidrBlock": "10.0.0.0/16"}), ("subnet", SUBNET, subnet)), SCHEMAS, {}
        )
        == []
    )

    short = {"VpcId": ref("VpcId"), "Secret": {"$value": "s", "$visibility": "Opaque"}}
    assert property_problems(
        forma(("vpc", VPC, {"CidrBlock": "x"}), ("subnet", SUBNET, short)), SCHEMAS, {}
    ) == ["resource net/Cloud::Net::Subnet/subnet: properties.Secret: 's' is too short"]


def test_a_reference_must_name_a_property_the_referred_type_has() -> None:
    subnet = {"VpcId": ref("VpcID")}

    (problem,) = property_problems(
        forma(("vpc", VPC, {"CidrBlock": "x"}), ("subnet", SUBNET, subnet)), SCHEMAS, {}
    )

    assert problem == (
        "resource net/Cloud::Net::Subnet/subnet: properties.VpcId: refers to net/Cloud::Net::VPC/vpc's "
        "property 'VpcID', which type Cloud::Net::VPC does not have (it has CidrBlock, Tags, VpcId)"
    )


def test_a_property_set_on_a_managed_referred_resource_counts_as_one_it_has() -> None:
    schemas = {**SCHEMAS, VPC: TypeSchema(VPC, "VpcId", json_schema={"properties": {"CidrBlock": {}}})}
    vpc = forma(("vpc", VPC, {"CidrBlock": "x"})).resources[0]
    current = {vpc.key: ManagedResource(vpc.key, "t", "vpc-1", {"Arn": "arn:vpc-1"}, {"CidrBlock": "x"})}

    assert property_problems(forma(("subnet", SUBNET, {"VpcId": ref("Arn")})), schemas, current) == []


def test_types_without_a_schema_are_not_checked() -> None:
    assert (
        property_problems(forma(("x", "Cloud::Other::Thing", {"Anything": [1, {"at": "all"}]})), SCHEMAS, {})
        == []
    )


def test_an_invalid_schema_from_a_plugin_is_reported_not_raised() -> None:
    schemas = {VPC: TypeSchema(VPC, "VpcId", json_schema={"type": "nonsense"})}

    (problem,) = property_problems(forma(("vpc", VPC, {"CidrBlock": "x"})), schemas, {})

    assert problem.startswith(
        "resource net/Cloud::Net::VPC/vpc: the plugin announced an invalid JSON Schema for Cloud::Net::VPC: "
    )


def test_a_type_its_plugin_does_not_serve_is_named_with_the_closest_one() -> None:
    announced = {"Cloud": {VPC, SUBNET}}

    assert type_problems(
        forma(("a", "Cloud::Net::Subnett", {}), ("b", "Cloud::Dns::Zone", {})), announced
    ) == [
        "resource net/Cloud::Net::Subnett/a: type Cloud::Net::Subnett is not served by the Cloud plugin; "
        "did you mean Cloud::Net::Subnet?",
        "resource net/Cloud::Dns::Zone/b: type Cloud::Dns::Zone is not served by the Cloud plugin; "
        "it serves Cloud::Net::Subnet, Cloud::Net::VPC",
    ]


def test_the_planner_raises_schema_and_reference_problems_together() -> None:
    bad = forma(("vpc", VPC, {}), ("subnet", SUBNET, {"VpcId": ref("VpcId", label="missing")}))

    with pytest.raises(PlanError) as raised:
        plan(bad, {}, SCHEMAS, Mode.RECONCILE)

    assert raised.value.problems == [
        "resource net/Cloud::Net::VPC/vpc: properties: 'CidrBlock' is a required property",
        "resource net/Cloud::Net::Subnet/subnet refers to net/Cloud::Net::VPC/missing (in VpcId), "
        "which is neither in the forma nor managed",
    ]


def test_a_sealed_secret_or_one_the_agent_resolves_satisfies_any_schema() -> None:
    sealed = {"$visibility": "Opaque", "$sealed": "b64…", "$hash": "h"}
    subnet = {"VpcId": {"$secret": {"env": "VPC_ID"}}, "Secret": sealed}

    assert property_problems(forma(("subnet", SUBNET, subnet)), SCHEMAS, {}) == []


# ---------------------------------------------------- the compiled fast path agrees with the full one

FAST_PATH_SCHEMAS: list[dict[str, Any]] = [
    SUBNET_SCHEMA,
    {  # like fake-aws's: capitalised names, a oneOf inside one property, a required reference
        "type": "object",
        "properties": {
            "VpcId": {"type": "string"},
            "Tags": {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "string"}}]},
        },
        "required": ["VpcId"],
        "propertyNames": {"pattern": "^[A-Z][A-Za-z]*$"},
        "maxProperties": 3,
    },
    {"type": "object", "not": {"properties": {"VpcId": {"type": "integer"}}, "required": ["VpcId"]}},
    {"type": "object", "patternProperties": {"^V": {"type": "integer"}}, "additionalProperties": False},
    {
        "type": "object",
        "properties": {"VpcId": {"type": "string"}},
        "oneOf": [{"properties": {"VpcId": {"type": "integer"}}}, {"required": ["Ports"]}],
    },
    {"const": {"VpcId": ""}},
    {"properties": {"VpcId": {"enum": ["a", "b"]}, "Ports": {"type": ["array", "null"]}}},
]

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.sampled_from(["", "vpc-12345", "x"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["Key", "a"]), inner, max_size=2)
    ),
    max_leaves=4,
)
_markers = st.sampled_from(
    [ref("VpcId"), {"$value": "s3cret", "$visibility": "Opaque"}, {"$value": 7}, {"$secret": {"env": "X"}}]
)
_properties = st.dictionaries(
    st.sampled_from(["VpcId", "Ports", "Secret", "Tags", "lower", "Vx"]), _values | _markers, max_size=4
)


@given(schema=st.sampled_from(FAST_PATH_SCHEMAS), properties=_properties)
@example(schema=FAST_PATH_SCHEMAS[2], properties={"VpcId": ref("VpcId")})  # under not
@example(schema=FAST_PATH_SCHEMAS[4], properties={"VpcId": ref("VpcId"), "Ports": 1})  # under oneOf
@example(schema=FAST_PATH_SCHEMAS[5], properties={"VpcId": ref("VpcId")})  # a const
@example(
    schema=FAST_PATH_SCHEMAS[3], properties={"Vx": {"$value": "s"}}
)  # a clear secret, checked as its value
@settings(max_examples=400, deadline=None)
def test_the_compiled_fast_path_never_accepts_what_the_full_validator_refuses(
    schema: dict[str, Any], properties: dict[str, Any]
) -> None:
    checker = _validator(TypeSchema(VPC, "VpcId", json_schema=schema))
    assert isinstance(checker, _Checker)
    assert checker.fast is not None

    fast = checker.problems(properties) is None
    full = not list(checker.full.iter_errors(properties))

    assert fast == full


def test_a_top_level_reference_is_judged_by_the_fast_path_with_a_stand_in() -> None:
    checker = _validator(TypeSchema(SUBNET, "SubnetId", json_schema=SUBNET_SCHEMA))
    assert isinstance(checker, _Checker)

    assert checker.stand_ins.without_markers({"VpcId": ref("VpcId")}) is None  # minLength: no stand-in
    typed = _validator(TypeSchema(VPC, "VpcId", json_schema=VPC_SCHEMA))
    assert isinstance(typed, _Checker)
    assert typed.stand_ins.without_markers({"CidrBlock": "x", "VpcId": ref("VpcId")}) == {
        "CidrBlock": "x",
        "VpcId": "",
    }
