"""Loading formas from JSON, YAML and (real) Pkl, and the problems reported for bad ones."""

from __future__ import annotations

import copy
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import formae.forma.pkl as pkl_module
from formae.forma import FormaError, Problem, find_pkl, forma_from_json, load_forma
from formae.model import Forma, Reference

pytestmark = pytest.mark.timeout(30)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VPC_REF = {"$res": True, "$label": "vpc", "$type": "FakeAWS::EC2::VPC", "$stack": "net", "$property": "VpcId"}


@pytest.fixture
def pkl_binary() -> str:
    """The real pkl CLI. Skipped on a developer machine without it; CI must have it (.ci/install-pkl)."""
    try:
        return find_pkl("tests")
    except FormaError as error:
        if os.environ.get("CI"):
            pytest.fail(f"pkl is required in CI: {error}")
        pytest.skip(f"pkl not installed (run .ci/install-pkl): {error}")


def network() -> dict[str, Any]:
    return {
        "stacks": [{"label": "net", "description": "An example network"}],
        "targets": [{"label": "local", "namespace": "FakeAWS", "config": {"region": "us-east-1"}}],
        "resources": [
            _resource("vpc", "FakeAWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"}),
            _resource("subnet", "FakeAWS::EC2::Subnet", {"CidrBlock": "10.0.1.0/24", "VpcId": dict(VPC_REF)}),
            _resource("bucket", "FakeAWS::S3::Bucket", {"BucketName": "formae-example-bucket"}),
        ],
    }


def _resource(label: str, type: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"label": label, "type": type, "stack": "net", "target": "local", "properties": properties}


def problems_of(data: Any, source: str = "network.yaml") -> list[str]:
    with pytest.raises(FormaError) as caught:
        forma_from_json(data, source)
    return [str(problem) for problem in caught.value.problems]


def test_json_example_loads_to_the_documented_forma() -> None:
    forma = load_forma(EXAMPLES / "network.json")

    assert forma == forma_from_json(network(), "expected")
    assert [r.label for r in forma.resources] == ["vpc", "subnet", "bucket"]
    assert forma.targets[0].config == {"region": "us-east-1"}


def test_yaml_example_loads_to_the_same_forma_as_json() -> None:
    assert load_forma(EXAMPLES / "network.yaml") == load_forma(EXAMPLES / "network.json")


def test_pkl_example_loads_to_the_same_forma_as_json(pkl_binary: str) -> None:
    assert load_forma(EXAMPLES / "network.pkl") == load_forma(EXAMPLES / "network.json")


def test_example_reference_is_a_reference_to_the_vpc() -> None:
    subnet = load_forma(EXAMPLES / "network.yaml").resources[1]

    assert Reference.from_json(subnet.properties["VpcId"]) == Reference(
        "vpc", "FakeAWS::EC2::VPC", "net", "VpcId"
    )


def test_yml_suffix_is_yaml(tmp_path: Path) -> None:
    path = tmp_path / "forma.yml"
    path.write_text((EXAMPLES / "network.yaml").read_text())

    assert load_forma(path) == load_forma(EXAMPLES / "network.json")


def test_go_style_capitalised_keys_are_normalised() -> None:
    data = {
        "Stacks": [{"Label": "net", "Description": "An example network"}],
        "Targets": [{"Label": "local", "Namespace": "FakeAWS", "Config": {"region": "us-east-1"}}],
        "Resources": [{key.capitalize(): value for key, value in r.items()} for r in network()["resources"]],
    }

    assert forma_from_json(data, "go.json") == forma_from_json(network(), "plain.json")


def test_properties_keep_their_own_capitalisation() -> None:
    forma = forma_from_json(network(), "network.json")

    assert forma.resources[0].properties == {"CidrBlock": "10.0.0.0/16"}


def test_empty_sections_are_allowed() -> None:
    assert forma_from_json({"stacks": [{"label": "net"}], "resources": None}, "f.yaml") == Forma(
        stacks=[{"label": "net"}]  # type: ignore[list-item]
    )


def test_reference_to_a_resource_outside_the_forma_is_allowed() -> None:
    data = network()
    data["resources"] = data["resources"][1:]

    forma = forma_from_json(data, "network.json")

    assert [r.label for r in forma.resources] == ["subnet", "bucket"]


def test_malformed_reference_names_file_resource_and_field() -> None:
    data = network()
    del data["resources"][1]["properties"]["VpcId"]["$property"]

    assert problems_of(data) == [
        'network.yaml: resource "subnet": properties.VpcId: reference is missing $property'
    ]


def test_reference_nested_in_lists_is_checked() -> None:
    data = network()
    ref = dict(VPC_REF, **{"$type": "not-a-type"})
    data["resources"][2]["properties"]["Tags"] = [{"Key": "vpc", "Value": ref}]

    [problem] = problems_of(data)

    assert problem.startswith('network.yaml: resource "bucket": properties.Tags[0].Value: resource type')


def test_res_marker_must_be_true() -> None:
    data = network()
    data["resources"][1]["properties"]["VpcId"]["$res"] = "true"

    assert problems_of(data) == [
        'network.yaml: resource "subnet": properties.VpcId: $res must be true in a reference'
    ]


def test_self_reference_is_refused() -> None:
    data = network()
    data["resources"][0]["properties"]["Self"] = dict(VPC_REF, **{"$property": "Arn"})

    assert problems_of(data) == [
        'network.yaml: resource "vpc": properties.Self: a resource cannot refer to itself'
    ]


def test_invalid_type_names_the_resource_and_field() -> None:
    data = network()
    data["resources"][2]["type"] = "S3Bucket"

    [problem] = problems_of(data)

    assert problem.startswith('network.yaml: resource "bucket": type: resource type')
    assert "Namespace::Service::Kind" in problem
    assert "pydantic" not in problem


def test_duplicate_resource_keys_are_refused() -> None:
    data = network()
    data["resources"].append(copy.deepcopy(data["resources"][2]))

    assert problems_of(data) == [
        'network.yaml: resource "bucket": declared twice in stack "net" with type FakeAWS::S3::Bucket'
    ]


def test_same_label_with_another_type_is_a_different_resource() -> None:
    data = network()
    data["resources"].append(_resource("bucket", "FakeAWS::S3::BucketPolicy", {}))

    assert len(forma_from_json(data, "f.json").resources) == 4


def test_undeclared_stack_and_target_are_refused() -> None:
    data = network()
    data["resources"][2].update(stack="storage", target="prod")

    assert problems_of(data) == [
        'network.yaml: resource "bucket": stack: stack "storage" is not declared in the forma\'s stacks',
        'network.yaml: resource "bucket": target: target "prod" is not declared in the forma\'s targets',
    ]


def test_resource_type_must_match_the_target_namespace() -> None:
    data = network()
    data["resources"][2]["type"] = "AWS::S3::Bucket"

    assert problems_of(data) == [
        'network.yaml: resource "bucket": target: target "local" is for namespace FakeAWS, '
        "but type AWS::S3::Bucket belongs to namespace AWS"
    ]


def test_missing_fields_are_reported_by_position_when_there_is_no_label() -> None:
    data = network()
    data["resources"].append({"type": "FakeAWS::S3::Bucket", "stack": "net", "target": "local"})
    data["targets"].append({"label": "other"})

    assert problems_of(data) == [
        "network.yaml: targets[1].namespace: is required",
        "network.yaml: resources[3].label: is required",
    ]


def test_unknown_fields_are_reported_and_the_rest_still_checked() -> None:
    data = network()
    data["targets"][0]["region"] = "eu-west-1"
    data["resources"][0]["propertes"] = {}

    assert problems_of(data) == [
        "network.yaml: targets[0].region: unknown field (expected one of: label, namespace, config)",
        'network.yaml: resource "vpc": propertes: unknown field '
        "(expected one of: label, type, stack, target, properties)",
    ]


def test_duplicate_stack_and_target_labels_are_refused() -> None:
    data = network()
    data["stacks"].append({"label": "net"})
    data["targets"].append(dict(data["targets"][0]))

    assert problems_of(data) == [
        'network.yaml: stacks[1].label: "net" is declared twice in stacks',
        'network.yaml: targets[1].label: "local" is declared twice in targets',
    ]


def test_several_problems_are_reported_at_once() -> None:
    data = network()
    data["resources"][0]["type"] = "bad"
    data["resources"][1]["properties"]["VpcId"]["$label"] = ""
    data["resources"][2]["stack"] = "nope"

    problems = problems_of(data)

    assert len(problems) == 3
    assert [p.split(":")[1] for p in problems] == [
        ' resource "vpc"',
        ' resource "subnet"',
        ' resource "bucket"',
    ]


def test_problems_are_structured() -> None:
    data = network()
    del data["resources"][1]["properties"]["VpcId"]["$stack"]

    with pytest.raises(FormaError) as caught:
        forma_from_json(data, "network.json")

    assert caught.value.problems == [
        Problem("network.json", "subnet", "properties.VpcId", "reference is missing $stack")
    ]


@pytest.mark.parametrize("data", [[], "forma", None, 3])
def test_a_forma_must_be_an_object(data: Any) -> None:
    assert problems_of(data, "f.json") == [
        "f.json: a forma must be an object with stacks, targets and resources"
    ]


def test_sections_must_be_lists_of_objects() -> None:
    assert problems_of({"stacks": {"label": "net"}, "resources": ["vpc"]}, "f.json") == [
        "f.json: stacks: must be a list",
        "f.json: resources[0]: must be an object",
    ]


def test_yaml_values_that_are_not_json_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dated.yaml"
    text = (
        (EXAMPLES / "network.yaml")
        .read_text()
        .replace("BucketName: formae-example-bucket", "Expires: 2030-01-01")
    )
    path.write_text(text)

    with pytest.raises(
        FormaError, match=r'resource "bucket": properties.Expires: a date is not a JSON value'
    ):
        load_forma(path)


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"stacks": [}')

    with pytest.raises(FormaError, match=r"broken.json: invalid JSON: .*line 1 column 13"):
        load_forma(path)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("stacks: [\n")

    with pytest.raises(FormaError, match=r"broken.yaml: invalid YAML"):
        load_forma(path)


@pytest.mark.parametrize("text", ["? - : ", "? - - ", "? [[a]]\n: 1"])
def test_a_yaml_key_that_is_a_nested_collection_is_refused_as_invalid_yaml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(text)

    with pytest.raises(FormaError, match=r"keys.yaml: invalid YAML: .*key"):
        load_forma(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FormaError, match=r"nope.json: no such file"):
        load_forma(tmp_path / "nope.json")


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "forma.toml"
    path.write_text("")

    with pytest.raises(FormaError, match=r"unsupported forma file type '.toml'"):
        load_forma(path)


def test_pkl_forma_with_a_bad_reference_names_the_pkl_file(pkl_binary: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.pkl"
    example = (EXAMPLES / "network.pkl").read_text().replace('"../', f'"{EXAMPLES.parent}/')
    path.write_text(example.replace('vpc.ref("VpcId")', 'formae.ref("", "F::E::V", "vpc", "VpcId")'))

    with pytest.raises(FormaError) as caught:
        load_forma(path)

    assert str(caught.value) == f'{path}: resource "subnet": properties.VpcId: reference is missing $stack'


def test_pkl_evaluation_error_is_shown(pkl_binary: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.pkl"
    path.write_text("stacks = undefinedThing\n")

    with pytest.raises(
        FormaError, match=r"(?s)broken.pkl: pkl eval failed:\n.*Cannot find property `undefinedThing`"
    ):
        load_forma(path)


def test_pkl_missing_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORMAE_PKL", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(pkl_module, "_beside_python", lambda: None)

    with pytest.raises(FormaError) as caught:
        load_forma(EXAMPLES / "network.pkl")

    message = str(caught.value)
    assert message.startswith(f"{EXAMPLES / 'network.pkl'}: cannot evaluate a Pkl forma: pkl is not on PATH")
    assert "https://pkl-lang.org/main/current/pkl-cli/index.html#installation" in message
    assert ".ci/install-pkl" in message


def test_formae_pkl_names_an_explicit_binary(
    pkl_binary: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("FORMAE_PKL", pkl_binary)

    assert load_forma(EXAMPLES / "network.pkl") == load_forma(EXAMPLES / "network.json")


def test_formae_pkl_that_is_not_executable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORMAE_PKL", str(tmp_path / "missing-pkl"))

    with pytest.raises(
        FormaError, match=r"FORMAE_PKL=.*missing-pkl is not an executable; install the pkl CLI"
    ):
        load_forma(EXAMPLES / "network.pkl")


def test_pkl_that_hangs_is_stopped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = _script(tmp_path / "slow-pkl", "exec sleep 30")
    monkeypatch.setenv("FORMAE_PKL", str(fake))

    with pytest.raises(FormaError, match=r"network.pkl: pkl eval did not finish within 0.2s"):
        load_forma(EXAMPLES / "network.pkl", pkl_timeout=0.2)


def test_pkl_output_that_is_not_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORMAE_PKL", str(_script(tmp_path / "odd-pkl", "echo 'stacks = 1'")))

    with pytest.raises(FormaError, match=r"pkl eval printed invalid JSON"):
        load_forma(EXAMPLES / "network.pkl")


def test_pkl_is_run_as_eval_with_json_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shown = json.dumps(network())
    fake = _script(tmp_path / "echo-pkl", f'[ "$1 $2 $3" = "eval -f json" ] || exit 3\necho \'{shown}\'')
    monkeypatch.setenv("FORMAE_PKL", str(fake))

    assert load_forma(EXAMPLES / "network.pkl") == forma_from_json(network(), "expected")


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path
