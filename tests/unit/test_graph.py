"""The graph model and its DOT and SVG texts: nodes, edges, colours, clusters, folding, escaping."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from formae.graph import (
    PALETTE,
    Format,
    Held,
    Mark,
    RenderError,
    Step,
    command_graph,
    inventory_graph,
    plan_graph,
    render,
    to_dot,
    to_svg,
    view,
)
from formae.model import ResourceKey

VPC = ResourceKey("net", "FakeAWS::EC2::VPC", "vpc")
SUBNET = ResourceKey("net", "FakeAWS::EC2::Subnet", "subnet")
BUCKET = ResourceKey("net", "FakeAWS::S3::Bucket", "bucket")
OLD = ResourceKey("net", "FakeAWS::S3::Bucket", "old")
_NODE = re.compile(r'^\s*"([^"]+)" \[label="((?:[^"\\]|\\.)*)", fillcolor="(#\w+)", color="(#\w+)"', re.M)
_EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)"', re.M)


def _plan() -> list[Step]:
    """A VPC updated, its subnet replaced (delete then create), a bucket created, an old one deleted."""
    return [
        Step("u1", "update", VPC, native_id="vpc-1"),
        Step("u2", "delete", SUBNET, replace=True, native_id="subnet-1"),
        Step("u3", "create", SUBNET, frozenset({"u1", "u2"}), replace=True),
        Step("u4", "create", BUCKET, adopt=True, native_id="bucket"),
        Step("u5", "delete", OLD, native_id="old-bucket"),
    ]


def _nodes(dot: str) -> dict[str, tuple[str, str]]:
    return {m[1]: (m[2], m[3]) for m in _NODE.finditer(dot) if not m[1].startswith("legend:")}


def test_a_plan_has_one_node_per_resource_coloured_by_operation_and_edges_from_references() -> None:
    dot = to_dot(view(plan_graph(_plan(), "plan of net.json")))

    nodes = _nodes(dot)
    assert nodes[str(VPC)] == ("vpc\\nFakeAWS::EC2::VPC\\nvpc-1\\n[update]", PALETTE[Mark.UPDATE].fill)
    assert nodes[str(SUBNET)] == (
        "subnet\\nFakeAWS::EC2::Subnet\\nsubnet-1\\n[replace]",
        PALETTE[Mark.REPLACE].fill,
    )
    assert nodes[str(BUCKET)][1] == PALETTE[Mark.ADOPT].fill
    assert nodes[str(OLD)][1] == PALETTE[Mark.DELETE].fill
    assert _EDGE.findall(dot) == [(str(VPC), str(SUBNET))]
    assert 'label="plan of net.json"' in dot


def test_resources_sit_in_a_cluster_per_stack_holding_one_per_type() -> None:
    steps = [*_plan(), Step("u6", "create", ResourceKey("app", "FakeAWS::S3::Bucket", "logs"))]
    dot = to_dot(view(plan_graph(steps)))

    assert re.findall(r'label="(stack \w+)"', dot) == ["stack app", "stack net"]
    assert len(re.findall(r'subgraph "cluster_\d+_\d+"', dot)) == 4  # app: Bucket; net: Subnet, VPC, Bucket
    net = dot[dot.index('label="stack net"') :]
    bucket_cluster = net[net.index('label="FakeAWS::S3::Bucket"') :].split("}")[0]
    assert str(BUCKET) in bucket_cluster
    assert str(OLD) in bucket_cluster


def test_the_legend_names_every_mark_drawn_and_no_other() -> None:
    dot = to_dot(view(plan_graph(_plan())))

    legend = dot[dot.index("cluster_legend") :]
    assert re.findall(r'"legend:([^"]+)"', legend) == ["update", "replace", "delete", "adopt"]


def test_a_delete_waiting_for_the_delete_of_its_referrer_draws_the_reference_the_right_way() -> None:
    steps = [Step("d1", "delete", SUBNET), Step("d2", "delete", VPC, frozenset({"d1"}))]

    graph = plan_graph(steps)

    assert [(e.needed, e.needed_by) for e in graph.edges] == [(VPC, SUBNET)]


def test_a_running_command_is_coloured_by_state_and_a_replace_by_its_least_advanced_half() -> None:
    steps = [
        Step("u1", "update", VPC, state="Success"),
        Step("u2", "delete", SUBNET, replace=True, state="Success"),
        Step("u3", "create", SUBNET, frozenset({"u1", "u2"}), replace=True, state="InProgress"),
        Step("u4", "create", BUCKET, state="Failed"),
    ]

    marks = {n.key: n.mark for n in command_graph(steps).nodes}

    assert marks == {VPC: Mark.SUCCESS, SUBNET: Mark.RUNNING, BUCKET: Mark.FAILED}


def test_the_inventory_is_coloured_by_drift_and_keeps_references_to_resources_outside_the_query() -> None:
    held = [
        Held(SUBNET, "subnet-1", (VPC,), "changed"),
        Held(BUCKET, "bucket", (), None),
        Held(OLD, None, (), "deleted"),
    ]

    graph = inventory_graph(held)

    marks = {n.key: n.mark for n in graph.nodes}
    assert marks == {VPC: Mark.OUTSIDE, SUBNET: Mark.DRIFTED, BUCKET: Mark.IN_SYNC, OLD: Mark.GONE}
    assert 'style="rounded,filled,dashed"' in to_dot(view(graph))  # gone and outside are dashed


def test_a_large_group_is_folded_into_one_box_counting_its_marks_and_its_edges() -> None:
    buckets = [
        Step(f"b{i}", "create", ResourceKey("net", "FakeAWS::S3::Bucket", f"b{i:02}")) for i in range(30)
    ]
    subnets = [
        Step(f"s{i}", "update", ResourceKey("net", "FakeAWS::EC2::Subnet", f"s{i}"), frozenset({"v"}))
        for i in range(3)
    ]
    steps = [Step("v", "update", VPC), *buckets, *subnets, Step("b30", "delete", OLD)]

    shown = view(plan_graph(steps), collapse_above=25)
    dot = to_dot(shown)

    [folded] = [b for b in shown.boxes if b.members > 1]
    assert (folded.id, folded.members) == ("group:net/FakeAWS::S3::Bucket", 31)
    assert folded.lines == ("31 resources", "FakeAWS::S3::Bucket", "30 create, 1 delete")
    assert folded.mark is Mark.CREATE
    assert len(_nodes(dot)) == 1 + 3 + 1  # the VPC, three subnets, the folded buckets
    assert len(_EDGE.findall(dot)) == 3


def test_edges_between_folded_groups_are_counted_once_per_pair() -> None:
    vpcs = [Step(f"v{i}", "create", ResourceKey("net", "FakeAWS::EC2::VPC", f"v{i}")) for i in range(5)]
    subnets = [
        Step(f"s{i}", "create", ResourceKey("net", "FakeAWS::EC2::Subnet", f"s{i}"), frozenset({f"v{i}"}))
        for i in range(5)
    ]

    dot = to_dot(view(plan_graph([*vpcs, *subnets]), collapse_above=2))

    assert _EDGE.findall(dot) == [("group:net/FakeAWS::EC2::VPC", "group:net/FakeAWS::EC2::Subnet")]
    assert 'label="5 references"' in dot


def test_quotes_and_backslashes_in_labels_cannot_break_the_dot_file() -> None:
    odd = ResourceKey("net", "FakeAWS::S3::Bucket", 'say "hi" \\ bye')
    dot = to_dot(view(plan_graph([Step("u", "create", odd, native_id='id"1')])))

    assert '"net/FakeAWS::S3::Bucket/say \\"hi\\" \\\\ bye"' in dot
    assert 'id\\"1' in dot
    assert re.sub(r"\\.", "", dot).count('"') % 2 == 0  # every unescaped quote is closed


def test_the_svg_is_well_formed_with_a_box_per_resource_a_path_per_edge_and_mark_classes() -> None:
    svg = to_svg(view(plan_graph(_plan(), "plan")))

    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    boxes = root.findall("s:g", ns)
    assert {b.get("data-key") for b in boxes} == {str(k) for k in (VPC, SUBNET, BUCKET, OLD)}
    assert {b.get("data-key"): b.get("class") for b in boxes}[str(SUBNET)] == "box m-replace"
    assert len(root.findall("s:path", ns)) == 1
    assert root.get("aria-label") == "plan: dependency graph of 4 resources"
    x = {b.get("data-key"): float(b.find("s:rect", ns).get("x", "")) for b in boxes}  # type: ignore[union-attr]
    assert x[str(VPC)] < x[str(SUBNET)]  # the work flows left to right


def test_an_empty_graph_still_draws() -> None:
    shown = view(plan_graph([], "nothing to do"))

    assert to_dot(shown).startswith("digraph formae {")
    ET.fromstring(to_svg(shown))


def test_dot_text_needs_no_graphviz_and_a_missing_dot_says_how_to_install_it() -> None:
    assert render("digraph {}", Format.DOT, program="no-such-dot") == b"digraph {}"
    with pytest.raises(RenderError, match="apt-get install graphviz"):
        render("digraph {}", Format.PNG, program="no-such-dot")


def test_the_package_binds_the_view_function_not_the_module_of_that_name() -> None:
    import types

    import formae.graph

    assert not isinstance(formae.graph.view, types.ModuleType)
    assert not isinstance(formae.graph.render, types.ModuleType)
