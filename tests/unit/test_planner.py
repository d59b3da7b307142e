"""Planning: creates, updates with patches, replacements, reconcile deletes, destroy, and their order."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from formae.forma import forma_from_json
from formae.model import Forma, Mode, Operation, ResourceKey, Target
from formae.plan import (
    Changeset,
    Dag,
    ManagedResource,
    PlanError,
    PlannedUpdate,
    TypeSchema,
    plan,
    plan_destroy,
)
from formae.plan.planner import _patch

pytestmark = pytest.mark.timeout(10)

VPC = ResourceKey("net", "FakeAWS::EC2::VPC", "vpc")
SUBNET = ResourceKey("net", "FakeAWS::EC2::Subnet", "subnet")
BUCKET = ResourceKey("net", "FakeAWS::S3::Bucket", "bucket")
LOCAL = Target(label="local", namespace="FakeAWS", config={"region": "us-east-1"})
SCHEMAS = {
    "FakeAWS::EC2::VPC": TypeSchema(
        "FakeAWS::EC2::VPC", "VpcId", frozenset({"CidrBlock"}), frozenset({"VpcId"})
    ),
    "FakeAWS::EC2::Subnet": TypeSchema("FakeAWS::EC2::Subnet", "SubnetId", frozenset({"CidrBlock"})),
    "FakeAWS::S3::Bucket": TypeSchema("FakeAWS::S3::Bucket", "BucketName", frozenset({"BucketName"})),
}


def ref(key: ResourceKey, prop: str) -> dict[str, Any]:
    return {"$res": True, "$label": key.label, "$type": key.type, "$stack": key.stack, "$property": prop}


def network_json() -> dict[str, Any]:
    return {
        "stacks": [{"label": "net"}],
        "targets": [{"label": "local", "namespace": "FakeAWS", "config": {"region": "us-east-1"}}],
        "resources": [
            _resource(VPC, {"CidrBlock": "10.0.0.0/16"}),
            _resource(SUBNET, {"CidrBlock": "10.0.1.0/24", "VpcId": ref(VPC, "VpcId")}),
            _resource(BUCKET, {"BucketName": "formae-example-bucket", "Versioning": False}),
        ],
    }


def _resource(key: ResourceKey, properties: dict[str, Any], target: str = "local") -> dict[str, Any]:
    return {
        "label": key.label,
        "type": key.type,
        "stack": key.stack,
        "target": target,
        "properties": properties,
    }


def forma_of(data: dict[str, Any]) -> Forma:
    return forma_from_json(data, "test.json")


def applied(forma: Forma) -> dict[ResourceKey, ManagedResource]:
    """What the agent would store after applying ``forma``: references resolved, read-only values added."""
    current = {}
    for resource in forma.resources:
        native_id = f"{resource.label}-id"
        properties = {**resource.properties, "Arn": f"arn:{native_id}"}
        if "VpcId" in properties:
            properties["VpcId"] = "vpc-id"
        current[resource.key] = ManagedResource(
            resource.key, resource.target, native_id, properties, copy.deepcopy(resource.properties)
        )
    return current


def with_property(data: dict[str, Any], label: str, name: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    for resource in changed["resources"]:
        if resource["label"] == label:
            resource["properties"][name] = value
    return changed


def without(data: dict[str, Any], *labels: str) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    changed["resources"] = [r for r in changed["resources"] if r["label"] not in labels]
    return changed


def deps(changeset: Changeset) -> dict[str, set[str]]:
    return {update.id: set(update.depends_on) for update in changeset.updates}


def ids(changeset: Changeset) -> list[str]:
    return [update.id for update in changeset.updates]


def run_order(changeset: Changeset) -> list[str]:
    """The ids in an order the DAG allows, one at a time."""
    dag, order = Dag(changeset), []
    while not dag.is_done():
        update = dag.ready()[0]
        dag.mark_started(update.id)
        dag.mark_succeeded(update.id)
        order.append(update.id)
    return order


def test_everything_new_is_created_in_reference_order() -> None:
    changeset = plan(forma_of(network_json()), {}, SCHEMAS, Mode.RECONCILE)

    assert deps(changeset) == {
        "create:net/FakeAWS::EC2::VPC/vpc": set(),
        "create:net/FakeAWS::EC2::Subnet/subnet": {"create:net/FakeAWS::EC2::VPC/vpc"},
        "create:net/FakeAWS::S3::Bucket/bucket": set(),
    }
    assert changeset.summary() == {"create": 3, "update": 0, "replace": 0, "delete": 0}


def test_a_create_carries_the_desired_properties_with_references_unresolved() -> None:
    changeset = plan(forma_of(network_json()), {}, SCHEMAS, Mode.RECONCILE)

    subnet = changeset.by_id("create:net/FakeAWS::EC2::Subnet/subnet")

    assert subnet == PlannedUpdate(
        id="create:net/FakeAWS::EC2::Subnet/subnet",
        operation=Operation.CREATE,
        key=SUBNET,
        target=LOCAL,
        desired_properties={"CidrBlock": "10.0.1.0/24", "VpcId": ref(VPC, "VpcId")},
        prior_properties=None,
        patch=None,
        native_id=None,
        replace=False,
        depends_on=frozenset({"create:net/FakeAWS::EC2::VPC/vpc"}),
    )


def test_nothing_changed_means_an_empty_changeset_despite_resolved_and_read_only_values() -> None:
    forma = forma_of(network_json())

    changeset = plan(forma, applied(forma), SCHEMAS, Mode.RECONCILE)

    assert changeset.is_empty()
    assert changeset.summary() == {"create": 0, "update": 0, "replace": 0, "delete": 0}


def test_a_changed_property_is_an_update_with_a_patch() -> None:
    data = network_json()
    current = applied(forma_of(data))

    changeset = plan(
        forma_of(with_property(data, "bucket", "Versioning", True)), current, SCHEMAS, Mode.PATCH
    )

    [update] = changeset.updates
    assert update.id == "update:net/FakeAWS::S3::Bucket/bucket"
    assert update.operation is Operation.UPDATE
    assert update.native_id == "bucket-id"
    assert update.prior_properties == current[BUCKET].properties
    assert update.desired_properties == {"BucketName": "formae-example-bucket", "Versioning": True}
    assert update.patch == [{"op": "replace", "path": "/Versioning", "value": True}]
    assert changeset.summary()["update"] == 1


def test_added_and_removed_properties_show_in_the_patch() -> None:
    data = network_json()
    current = applied(forma_of(data))
    changed = with_property(data, "bucket", "Tags", [{"Key": "team", "Value": "infra"}])
    del changed["resources"][2]["properties"]["Versioning"]

    [update] = plan(forma_of(changed), current, SCHEMAS, Mode.PATCH).updates

    assert sorted(update.patch or [], key=lambda op: op["path"]) == [
        {"op": "add", "path": "/Tags", "value": [{"Key": "team", "Value": "infra"}]},
        {"op": "remove", "path": "/Versioning"},
    ]


def test_a_type_change_of_a_value_is_a_change() -> None:
    data = network_json()
    current = applied(forma_of(data))

    changeset = plan(forma_of(with_property(data, "bucket", "Versioning", 0)), current, SCHEMAS, Mode.PATCH)

    assert ids(changeset) == ["update:net/FakeAWS::S3::Bucket/bucket"]


def test_an_update_waits_for_the_update_of_what_it_refers_to() -> None:
    data = with_property(network_json(), "vpc", "EnableDns", True)
    data = with_property(data, "subnet", "MapPublicIp", True)

    changeset = plan(forma_of(data), applied(forma_of(network_json())), SCHEMAS, Mode.PATCH)

    assert deps(changeset) == {
        "update:net/FakeAWS::EC2::VPC/vpc": set(),
        "update:net/FakeAWS::EC2::Subnet/subnet": {"update:net/FakeAWS::EC2::VPC/vpc"},
    }


def test_a_new_resource_waits_for_the_update_of_what_it_refers_to() -> None:
    data = with_property(network_json(), "vpc", "EnableDns", True)
    current = applied(forma_of(without(network_json(), "subnet")))

    changeset = plan(forma_of(data), current, SCHEMAS, Mode.PATCH)

    assert deps(changeset)["create:net/FakeAWS::EC2::Subnet/subnet"] == {"update:net/FakeAWS::EC2::VPC/vpc"}


def test_create_only_change_replaces_delete_first_and_updates_referrers_after_the_create() -> None:
    data = network_json()
    current = applied(forma_of(data))

    changeset = plan(
        forma_of(with_property(data, "vpc", "CidrBlock", "10.1.0.0/16")), current, SCHEMAS, Mode.PATCH
    )

    assert deps(changeset) == {
        "delete:net/FakeAWS::EC2::VPC/vpc": set(),
        "create:net/FakeAWS::EC2::VPC/vpc": {"delete:net/FakeAWS::EC2::VPC/vpc"},
        "update:net/FakeAWS::EC2::Subnet/subnet": {"create:net/FakeAWS::EC2::VPC/vpc"},
    }
    assert changeset.summary() == {"create": 0, "update": 1, "replace": 1, "delete": 0}


def test_replace_halves_carry_old_and_new() -> None:
    data = network_json()
    current = applied(forma_of(data))

    changeset = plan(
        forma_of(with_property(data, "vpc", "CidrBlock", "10.1.0.0/16")), current, SCHEMAS, Mode.PATCH
    )

    delete = changeset.by_id("delete:net/FakeAWS::EC2::VPC/vpc")
    create = changeset.by_id("create:net/FakeAWS::EC2::VPC/vpc")
    assert (delete.replace, delete.native_id, delete.prior_properties) == (
        True,
        "vpc-id",
        current[VPC].properties,
    )
    assert (create.replace, create.native_id, create.desired_properties) == (
        True,
        None,
        {"CidrBlock": "10.1.0.0/16"},
    )


def test_referrer_of_a_replaced_resource_gets_a_patch_that_re_resolves_the_reference() -> None:
    data = network_json()
    current = applied(forma_of(data))

    changeset = plan(
        forma_of(with_property(data, "vpc", "CidrBlock", "10.1.0.0/16")), current, SCHEMAS, Mode.PATCH
    )

    subnet = changeset.by_id("update:net/FakeAWS::EC2::Subnet/subnet")
    assert subnet.patch == [{"op": "replace", "path": "/VpcId", "value": ref(VPC, "VpcId")}]
    assert subnet.native_id == "subnet-id"


def test_replacement_cascades_through_create_only_references() -> None:
    schemas = dict(SCHEMAS)
    schemas[SUBNET.type] = TypeSchema(SUBNET.type, "SubnetId", frozenset({"CidrBlock", "VpcId"}))
    data = network_json()

    changeset = plan(
        forma_of(with_property(data, "vpc", "CidrBlock", "10.1.0.0/16")),
        applied(forma_of(data)),
        schemas,
        Mode.PATCH,
    )

    assert deps(changeset) == {
        "delete:net/FakeAWS::EC2::Subnet/subnet": set(),
        "delete:net/FakeAWS::EC2::VPC/vpc": {"delete:net/FakeAWS::EC2::Subnet/subnet"},
        "create:net/FakeAWS::EC2::VPC/vpc": {"delete:net/FakeAWS::EC2::VPC/vpc"},
        "create:net/FakeAWS::EC2::Subnet/subnet": {
            "create:net/FakeAWS::EC2::VPC/vpc",
            "delete:net/FakeAWS::EC2::Subnet/subnet",
        },
    }
    assert changeset.summary() == {"create": 0, "update": 0, "replace": 2, "delete": 0}
    assert run_order(changeset) == [
        "delete:net/FakeAWS::EC2::Subnet/subnet",
        "delete:net/FakeAWS::EC2::VPC/vpc",
        "create:net/FakeAWS::EC2::VPC/vpc",
        "create:net/FakeAWS::EC2::Subnet/subnet",
    ]


def test_both_replaced_by_the_forma_delete_referrer_first() -> None:
    data = with_property(network_json(), "vpc", "CidrBlock", "10.1.0.0/16")
    data = with_property(data, "subnet", "CidrBlock", "10.1.1.0/24")

    changeset = plan(forma_of(data), applied(forma_of(network_json())), SCHEMAS, Mode.PATCH)

    assert deps(changeset)["delete:net/FakeAWS::EC2::VPC/vpc"] == {"delete:net/FakeAWS::EC2::Subnet/subnet"}
    assert deps(changeset)["create:net/FakeAWS::EC2::Subnet/subnet"] == {
        "create:net/FakeAWS::EC2::VPC/vpc",
        "delete:net/FakeAWS::EC2::Subnet/subnet",
    }


def test_moving_to_another_target_is_a_replace() -> None:
    data = network_json()
    current = applied(forma_of(data))
    moved = copy.deepcopy(data)
    moved["targets"].append({"label": "west", "namespace": "FakeAWS", "config": {"region": "us-west-2"}})
    moved["resources"][2]["target"] = "west"

    changeset = plan(forma_of(moved), current, SCHEMAS, Mode.PATCH)

    assert changeset.by_id("delete:net/FakeAWS::S3::Bucket/bucket").target == LOCAL
    assert changeset.by_id("create:net/FakeAWS::S3::Bucket/bucket").target.label == "west"


def test_types_without_a_schema_have_no_create_only_properties() -> None:
    data = network_json()

    changeset = plan(
        forma_of(with_property(data, "vpc", "CidrBlock", "10.1.0.0/16")),
        applied(forma_of(data)),
        {},
        Mode.PATCH,
    )

    assert ids(changeset) == ["update:net/FakeAWS::EC2::VPC/vpc"]


def test_reconcile_deletes_what_the_forma_no_longer_lists_referrers_first() -> None:
    data = network_json()

    changeset = plan(
        forma_of(without(data, "vpc", "subnet")), applied(forma_of(data)), SCHEMAS, Mode.RECONCILE
    )

    assert deps(changeset) == {
        "delete:net/FakeAWS::EC2::VPC/vpc": {"delete:net/FakeAWS::EC2::Subnet/subnet"},
        "delete:net/FakeAWS::EC2::Subnet/subnet": set(),
    }
    delete = changeset.by_id("delete:net/FakeAWS::EC2::Subnet/subnet")
    assert (delete.desired_properties, delete.native_id, delete.target) == (None, "subnet-id", LOCAL)
    assert changeset.summary() == {"create": 0, "update": 0, "replace": 0, "delete": 2}


def test_reconcile_of_a_stack_with_no_resources_left_deletes_all_of_it() -> None:
    data = network_json()
    data_empty = {**data, "resources": []}

    changeset = plan(forma_of(data_empty), applied(forma_of(data)), SCHEMAS, Mode.RECONCILE)

    assert changeset.summary()["delete"] == 3


def test_reconcile_leaves_other_stacks_alone() -> None:
    data = network_json()
    other = ResourceKey("storage", "FakeAWS::S3::Bucket", "logs")
    current = applied(forma_of(data))
    current[other] = ManagedResource(other, "local", "logs-id", {}, {})

    assert plan(forma_of(data), current, SCHEMAS, Mode.RECONCILE).is_empty()


def test_patch_mode_deletes_nothing() -> None:
    data = network_json()

    assert plan(forma_of(without(data, "subnet")), applied(forma_of(data)), SCHEMAS, Mode.PATCH).is_empty()


def test_reconcile_refuses_to_delete_what_the_forma_still_refers_to() -> None:
    data = network_json()

    with pytest.raises(
        PlanError, match=r"refers to net/FakeAWS::EC2::VPC/vpc \(in VpcId\), which reconcile would delete"
    ):
        plan(forma_of(without(data, "vpc")), applied(forma_of(data)), SCHEMAS, Mode.RECONCILE)


def test_reference_to_an_unknown_resource_is_refused() -> None:
    with pytest.raises(
        PlanError, match=r"refers to net/FakeAWS::EC2::VPC/vpc \(in VpcId\), which is neither in"
    ):
        plan(forma_of(without(network_json(), "vpc")), {}, SCHEMAS, Mode.PATCH)


def test_reference_to_a_resource_managed_elsewhere_needs_no_dependency() -> None:
    shared_vpc = ResourceKey("shared", "FakeAWS::EC2::VPC", "main")
    data = with_property(without(network_json(), "vpc"), "subnet", "VpcId", ref(shared_vpc, "VpcId"))
    current = {shared_vpc: ManagedResource(shared_vpc, "local", "main-id", {"VpcId": "vpc-1"}, {})}

    changeset = plan(forma_of(data), current, SCHEMAS, Mode.RECONCILE)

    assert deps(changeset)["create:net/FakeAWS::EC2::Subnet/subnet"] == set()


def test_delete_waits_for_the_update_that_stops_referring_to_it() -> None:
    data = network_json()
    new_vpc = ResourceKey("net", "FakeAWS::EC2::VPC", "vpc2")
    moved = without(data, "vpc")
    moved["resources"].append(_resource(new_vpc, {"CidrBlock": "10.2.0.0/16"}))
    moved = with_property(moved, "subnet", "VpcId", ref(new_vpc, "VpcId"))

    changeset = plan(forma_of(moved), applied(forma_of(data)), {}, Mode.RECONCILE)

    assert deps(changeset) == {
        "update:net/FakeAWS::EC2::Subnet/subnet": {"create:net/FakeAWS::EC2::VPC/vpc2"},
        "create:net/FakeAWS::EC2::VPC/vpc2": set(),
        "delete:net/FakeAWS::EC2::VPC/vpc": {"update:net/FakeAWS::EC2::Subnet/subnet"},
    }


def test_referrers_outside_the_forma_are_refreshed_after_a_replace() -> None:
    data = network_json()
    other = ResourceKey("apps", "FakeAWS::EC2::Subnet", "app")
    current = applied(forma_of(data))
    current[other] = ManagedResource(
        other, "local", "app-id", {"VpcId": "vpc-id"}, {"VpcId": ref(VPC, "VpcId")}
    )

    changeset = plan(
        forma_of(with_property(data, "vpc", "CidrBlock", "10.1.0.0/16")), current, SCHEMAS, Mode.PATCH
    )

    update = changeset.by_id("update:apps/FakeAWS::EC2::Subnet/app")
    assert update.depends_on == {"create:net/FakeAWS::EC2::VPC/vpc"}
    assert update.desired_properties == {"VpcId": ref(VPC, "VpcId")}


def test_delete_on_an_unknown_target_is_refused_unless_the_target_is_given() -> None:
    data = network_json()
    current = applied(forma_of(data))
    elsewhere = {**data, "targets": [{"label": "west", "namespace": "FakeAWS"}], "resources": []}

    with pytest.raises(PlanError, match=r'is on target "local", which is neither in the forma nor known'):
        plan(forma_of(elsewhere), current, SCHEMAS, Mode.RECONCILE)
    changeset = plan(forma_of(elsewhere), current, SCHEMAS, Mode.RECONCILE, targets={"local": LOCAL})
    assert changeset.summary()["delete"] == 3


def test_destroy_deletes_given_resources_referrers_first() -> None:
    current = applied(forma_of(network_json()))

    changeset = plan_destroy(
        [VPC, SUBNET, ResourceKey("net", "FakeAWS::S3::Bucket", "gone")], current, targets={"local": LOCAL}
    )

    assert deps(changeset) == {
        "delete:net/FakeAWS::EC2::VPC/vpc": {"delete:net/FakeAWS::EC2::Subnet/subnet"},
        "delete:net/FakeAWS::EC2::Subnet/subnet": set(),
    }


def test_destroy_a_forma_deletes_what_it_describes() -> None:
    forma = forma_of(network_json())

    changeset = plan_destroy(forma, applied(forma))

    assert changeset.summary() == {"create": 0, "update": 0, "replace": 0, "delete": 3}
    assert run_order(changeset).index("delete:net/FakeAWS::EC2::Subnet/subnet") < run_order(changeset).index(
        "delete:net/FakeAWS::EC2::VPC/vpc"
    )


def test_destroy_of_nothing_managed_is_empty() -> None:
    assert plan_destroy(forma_of(network_json()), {}).is_empty()


def test_by_id_of_an_unknown_update_raises_key_error() -> None:
    with pytest.raises(KeyError):
        Changeset().by_id("create:net/FakeAWS::S3::Bucket/nope")


def test_a_large_plan_runs_through_the_dag() -> None:
    resources = [_resource(ResourceKey("net", "FakeAWS::EC2::VPC", "vpc0"), {})]
    for index in range(1, 2000):
        previous = ResourceKey("net", "FakeAWS::EC2::VPC", f"vpc{index - 1}")
        resources.append(
            _resource(
                ResourceKey("net", "FakeAWS::EC2::VPC", f"vpc{index}"), {"Peer": ref(previous, "VpcId")}
            )
        )
    data = {**network_json(), "resources": resources}

    changeset = plan(forma_of(data), {}, SCHEMAS, Mode.RECONCILE)

    assert len(run_order(changeset)) == 2000


def test_re_pointing_a_reference_replaces_it_whole_in_the_patch() -> None:
    def ref(label: str) -> dict[str, Any]:
        vpc = {"$type": "FakeAWS::EC2::VPC", "$stack": "net", "$property": "VpcId"}
        return {"$res": True, "$label": label, **vpc}

    operations = _patch({"VpcId": ref("a"), "Tags": {"x": 1}}, {"VpcId": ref("b"), "Tags": {"x": 2}}, set())

    assert {"op": "replace", "path": "/VpcId", "value": ref("b")} in operations
    assert {"op": "replace", "path": "/Tags/x", "value": 2} in operations
    assert all(not op["path"].startswith("/VpcId/") for op in operations)
