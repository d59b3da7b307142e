"""YAML formas read as YAML 1.2, and the forma shapes no reader may be handed: too deep, too big, cyclic."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from formae.forma import FormaError, forma_from_json, load_forma
from formae.forma.limits import MAX_DEPTH, check_shape

pytestmark = pytest.mark.timeout(30)

BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def a_yaml_forma(tmp_path: Path, properties: str) -> Path:
    path = tmp_path / "forma.yaml"
    path.write_text(
        "stacks: [{label: net}]\n"
        "targets: [{label: local, namespace: FakeAWS}]\n"
        "resources:\n"
        "  - label: bucket\n"
        "    type: FakeAWS::S3::Bucket\n"
        "    stack: net\n"
        "    target: local\n"
        "    properties:\n" + "".join(f"      {line}\n" for line in properties.splitlines())
    )
    return path


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_yaml_is_read_as_yaml_1_2(tmp_path: Path) -> None:
    path = a_yaml_forma(tmp_path, "Country: NO\nVersioning: on\nMode: 0755\nOctal: 0o755\nEnabled: true")

    properties = load_forma(path).resources[0].properties

    assert properties == {"Country": "NO", "Versioning": "on", "Mode": 755, "Octal": 493, "Enabled": True}


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    assert len(path.read_bytes()) < 500

    with pytest.raises(FormaError, match=r"bomb.yaml: more than 5,000,000 values \(YAML aliases expanded\)"):
        load_forma(path)


def test_aliases_that_expand_modestly_are_fine(tmp_path: Path) -> None:
    path = a_yaml_forma(tmp_path, "Tags: &tags {team: infra}\nCopy: *tags")

    assert load_forma(path).resources[0].properties == {"Tags": {"team": "infra"}, "Copy": {"team": "infra"}}


def test_a_yaml_alias_inside_its_own_node_is_refused(tmp_path: Path) -> None:
    path = a_yaml_forma(tmp_path, "Loop: &loop [*loop]")

    with pytest.raises(FormaError, match=r"resources\[0\]\.properties\.Loop\[0\]: contains itself"):
        load_forma(path)


def test_a_reused_yaml_anchor_names_its_latest_node_without_a_warning(tmp_path: Path) -> None:
    """YAML 1.2 lets an anchor be redefined: an alias refers to the latest one."""
    path = a_yaml_forma(tmp_path, "First: &x 1\nSecond: &x 2\nCopy: *x")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        properties = load_forma(path).resources[0].properties

    assert properties == {"First": 1, "Second": 2, "Copy": 2}


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    path = a_yaml_forma(tmp_path, "BucketName: a\nBucketName: b")

    with pytest.raises(FormaError, match=r'invalid YAML: .*duplicate key "BucketName"'):
        load_forma(path)


def test_properties_nested_too_deep_are_refused_with_their_path() -> None:
    forma = {"resources": [{"label": "bucket", "properties": nested(900)}]}

    with pytest.raises(FormaError) as caught:
        forma_from_json(forma, "deep.json")

    (problem,) = caught.value.problems
    assert str(problem).startswith("deep.json: resources[0].properties.a.a.a")
    assert problem.message == f"nested more than {MAX_DEPTH} levels deep"


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_files_nested_past_the_parsers_limits_are_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text("[" * 5000 + "]" * 5000)

    with pytest.raises(FormaError, match=r"nested too deep"):
        load_forma(path)


def test_nesting_up_to_the_limit_is_fine() -> None:
    check_shape(nested(MAX_DEPTH - 1), "f.json")


def test_a_shared_value_is_counted_each_time_it_is_used() -> None:
    shared = list(range(1000))
    fine = [shared] * 4000  # four million values
    check_shape(fine, "f.yaml")

    with pytest.raises(FormaError, match="more than 5,000,000 values"):
        check_shape([fine, fine], "f.yaml")


def test_a_file_too_large_is_refused_before_it_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("formae.forma.loader.MAX_TEXT_BYTES", 100)
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"stacks": [{"label": "x" * 200}]}))

    with pytest.raises(FormaError, match=r"big.json: larger than"):
        load_forma(path)
