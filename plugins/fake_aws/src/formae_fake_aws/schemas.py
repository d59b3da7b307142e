"""The JSON Schemas fake-aws announces for its types, so the agent refuses bad properties before running.

Shaped like CloudFormation's resource schemas: each type lists its properties with their JSON
types and says which are required, so a property of the wrong type or a missing one is refused at
plan time with its path instead of reaching the cloud. Unlike CloudFormation, other properties are
allowed (the fake stores whatever it is given, and tests give it secrets and nested values under
names of their own), as long as they are capitalised like the rest. Every type also takes the
``Fake*`` properties that make the fake misbehave on purpose (``behaviour.py``), and ``Name``,
``Tags`` and ``Group`` that tests and the benchmark set.
"""

from __future__ import annotations

from typing import Any

from formae.plugin import JsonObject

_STRING: JsonObject = {"type": "string"}
_COUNT: JsonObject = {"type": "integer", "minimum": 0}
_CIDR: JsonObject = {"type": "string", "pattern": r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$"}

_COMMON: dict[str, Any] = {
    "Name": _STRING,
    "Description": _STRING,
    "Group": {"type": ["integer", "string"]},
    "Tags": {
        "oneOf": [
            {"type": "object", "additionalProperties": _STRING},
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"Key": _STRING, "Value": _STRING},
                    "required": ["Key", "Value"],
                    "additionalProperties": False,
                },
            },
        ]
    },
    "FakeInProgressPolls": _COUNT,
    "FakeFailWith": _STRING,
    "FakeFailTimes": _COUNT,
    "FakeDelayMs": _COUNT,
}


def _schema(type_name: str, required: list[str], **properties: JsonObject) -> JsonObject:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": type_name,
        "type": "object",
        "properties": {**_COMMON, **properties},
        "required": required,
        "propertyNames": {"pattern": "^[A-Z][A-Za-z0-9]*$"},
    }


VPC_SCHEMA = _schema("FakeAWS::EC2::VPC", ["CidrBlock"], CidrBlock=_CIDR, VpcId=_STRING)
SUBNET_SCHEMA = _schema(
    "FakeAWS::EC2::Subnet", ["CidrBlock", "VpcId"], CidrBlock=_CIDR, VpcId=_STRING, SubnetId=_STRING
)
BUCKET_SCHEMA = _schema(
    "FakeAWS::S3::Bucket",
    ["BucketName"],
    BucketName={"type": "string", "minLength": 1, "maxLength": 63},
    Versioning={"type": "boolean"},
    LogsTo=_STRING,
    Policy=_STRING,
)
