"""The announced schemas are real JSON Schemas, the example forma satisfies them, and its three
spellings (Pkl, JSON, YAML) are one forma."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from formae_aws import AWSPlugin

from formae.forma.loader import load_forma
from formae.model import is_reference

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SCHEMAS = {schema.type: schema for schema in AWSPlugin().schemas()}


def test_every_schema_is_a_json_schema_that_names_its_own_properties() -> None:
    assert len(SCHEMAS) == 15
    for schema in SCHEMAS.values():
        document = schema.json_schema
        jsonschema.Draft7Validator.check_schema(document)
        declared = set(document["properties"])
        assert schema.identifier in declared
        assert set(schema.create_only) <= declared
        assert set(schema.read_only) <= declared
        assert document["primaryIdentifier"] == [f"/properties/{schema.identifier}"]
        assert not set(document["required"]) & set(schema.read_only)


def test_a_misspelled_property_is_refused_by_the_schema() -> None:
    validator = jsonschema.Draft7Validator(SCHEMAS["AWS::SQS::Queue"].json_schema)
    assert not list(validator.iter_errors({"VisibilityTimeout": 30}))
    assert list(validator.iter_errors({"VisiblityTimeout": 30}))
    assert list(validator.iter_errors({"VisibilityTimeout": "thirty"}))


def test_the_secret_value_is_write_only_and_sensitive() -> None:
    document = SCHEMAS["AWS::SecretsManager::Secret"].json_schema
    assert document["writeOnlyProperties"] == ["/properties/SecretString"]
    assert document["properties"]["SecretString"]["writeOnly"] is True
    assert document["properties"]["SecretString"]["x-formae-sensitive"] is True
    assert document["properties"]["SecretString"]["format"] == "password"  # formae's mark: a formae.secret
    jsonschema.validate({"SecretString": "plain"}, document)


def _without_references(value: Any) -> Any:
    """References stand for values of the referred type; the example's all refer to strings."""
    if is_reference(value):
        return "referred-value"
    if isinstance(value, dict):
        return {k: _without_references(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_references(v) for v in value]
    return value


def test_the_example_satisfies_the_schemas() -> None:
    forma = load_forma(EXAMPLES / "aws.json")
    assert {r.type for r in forma.resources} >= set(SCHEMAS) - {
        "AWS::EC2::InternetGateway",
        "AWS::Logs::LogGroup",
        "AWS::SecretsManager::Secret",
    }
    for resource in forma.resources:
        jsonschema.validate(_without_references(resource.properties), SCHEMAS[resource.type].json_schema)


def test_the_example_reads_the_same_in_json_yaml_and_pkl(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_forma(EXAMPLES / "aws.yaml") == load_forma(EXAMPLES / "aws.json")
    if shutil.which("pkl") is None:
        if os.environ.get("CI"):
            raise AssertionError("pkl is required on CI (.ci/install-pkl)")
        pytest.skip("needs the pkl CLI")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert load_forma(EXAMPLES / "aws.pkl") == load_forma(EXAMPLES / "aws.json")
