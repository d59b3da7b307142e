"""The JSON Schemas fake-aws announces for its types, so the agent refuses bad properties before running.

Shaped like CloudFormation's resource schemas: each type lists its properties with their JSON
types, says which are required, and allows no others (``additionalProperties: false``), so a
misspelt property is refused at plan time with its path instead of reaching the cloud. Every type
also takes the ``Fake*`` properties that make the fake misbehave on purpose (``behaviour.py``),
and ``Name``, ``Tags`` and ``Group`` that tests and the benchmark set.
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
        "additionalProperties": False,
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
