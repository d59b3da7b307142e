"""Values no store, wire or terminal can take are refused by the forma loader, each named where it sits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from formae.forma import FormaError, forma_from_json, load_forma
from formae.model.text import name_problem, shown, text_problem

pytestmark = pytest.mark.timeout(10)


def forma(label: str = "bucket", **properties: Any) -> dict[str, Any]:
    return {
        "stacks": [{"label": "net"}],
        "targets": [{"label": "local", "namespace": "FakeAWS"}],
        "resources": [
            {
                "label": label,
                "type": "FakeAWS::S3::Bucket",
                "stack": "net",
                "target": "local",
                "properties": properties,
            }
        ],
    }


def problems_of(data: Any) -> list[str]:
    with pytest.raises(FormaError) as caught:
        forma_from_json(data, "f.json")
    return [str(problem) for problem in caught.value.problems]


@pytest.mark.parametrize(
    ("label", "problem"),
    [
        ("a\x00b", "contains the NUL character U+0000, which a name may not hold"),
        ("\x1b[31mred", "contains the escape character U+001B (an ANSI escape sequence)"),
        ("bell\x07", "contains the control character U+0007"),
        ("line\nbreak", "contains the control character U+000A"),
        ("\u202eevil", "contains the invisible format character U+202E"),
        ("half\ud800", "contains a lone UTF-16 surrogate, which cannot be stored"),
    ],
)
def test_labels_must_be_printable(label: str, problem: str) -> None:
    (found,) = problems_of(forma(label))

    assert found.startswith("f.json: resources[0].label: " + problem)
    assert not {"\x1b", "\x00"} & set(found)


def test_every_name_is_checked_and_every_problem_reported_at_once() -> None:
    data = forma()
    data["stacks"][0]["label"] = "n\x1bet"
    data["targets"][0]["namespace"] = "Fake\x00AWS"
    data["resources"][0]["target"] = "lo\x7fcal"

    problems = problems_of(data)

    assert [p.split(": contains")[0] for p in problems] == [
        "f.json: stacks[0].label",
        "f.json: targets[0].namespace",
        'f.json: resource "bucket": target',
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (float("nan"), "properties.Size: nan is not a JSON number"),
        (float("inf"), "properties.Size: inf is not a JSON number"),
        ([1, float("-inf")], "properties.Size[1]: -inf is not a JSON number"),
        ("a\x00b", "properties.Size: contains the NUL character U+0000, which cannot be stored"),
        (
            {"x": "\udfff"},
            "properties.Size.x: contains a lone UTF-16 surrogate U+DFFF, which cannot be stored",
        ),
    ],
)
def test_property_values_no_store_can_hold_are_refused(value: Any, problem: str) -> None:
    assert problems_of(forma(Size=value)) == [f'f.json: resource "bucket": {problem}']


def test_property_values_may_hold_tabs_newlines_and_any_printable_text() -> None:
    text = "line one\n\tline two\r\n« ü 中 🙂 »\x1b"  # an escape in data is the plugin's business

    assert forma_from_json(forma(Policy=text), "f.json").resources[0].properties == {"Policy": text}


def test_property_keys_are_names() -> None:
    key: dict[str, Any] = {"Bad\x1bKey": 1}
    assert problems_of(forma(**key)) == [
        'f.json: resource "bucket": properties: key "Bad\\u001bKey" contains the escape character '
        "U+001B (an ANSI escape sequence), which a name may not hold"
    ]


def test_target_configuration_is_checked_like_properties() -> None:
    data = forma()
    data["targets"][0]["config"] = {"region": "eu\x00", "ratio": float("nan")}

    assert sorted(problems_of(data)) == [
        "f.json: targets[0].config.ratio: nan is not a JSON number",
        "f.json: targets[0].config.region: contains the NUL character U+0000, which cannot be stored",
    ]


def test_nan_in_a_json_file_is_refused_not_turned_into_null(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(forma(Size=float("nan"))))  # Python writes NaN, as some tools do

    with pytest.raises(FormaError, match=r"properties.Size: nan is not a JSON number"):
        load_forma(path)


def test_yaml_infinities_and_nan_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "inf.yaml"
    path.write_text(
        "stacks: [{label: net}]\ntargets: [{label: local, namespace: FakeAWS}]\n"
        "resources: [{label: b, type: FakeAWS::S3::Bucket, stack: net, target: local,"
        " properties: {A: .inf, B: .nan}}]\n"
    )

    with pytest.raises(FormaError) as caught:
        load_forma(path)

    assert sorted(p.message for p in caught.value.problems) == [
        "inf is not a JSON number",
        "nan is not a JSON number",
    ]


def test_shown_escapes_what_a_name_may_not_hold_and_nothing_else() -> None:
    assert shown("a\x1b[0mb\u202e ü") == "a\\u001b[0mb\\u202e ü"
    assert name_problem("vpc-1 ü 中") is None
    assert text_problem("tab\tnewline\n") is None
