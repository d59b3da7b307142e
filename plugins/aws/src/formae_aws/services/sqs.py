"""SQS queues. A queue is named (by the user, or by the plugin from the idempotency key);
``CreateQueue`` answers with the existing queue when the name is taken with the same attributes, so
the plugin looks the name up first and adopts a queue of that name only when its
``formae:idempotency-key`` tag is the create's key.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from formae.plugin import ErrorCode, JsonObject
from formae_aws import schema as js
from formae_aws.errors import map_error
from formae_aws.handler import (
    IDEMPOTENCY_TAG,
    AlreadyExists,
    Aws,
    TypeHandler,
    creation_tags,
    drop_empty,
    tag_changes,
    tags_from_map,
)

_NUMBERS = {
    "DelaySeconds": 0,
    "MaximumMessageSize": 262144,
    "MessageRetentionPeriod": 345600,
    "ReceiveMessageWaitTimeSeconds": 0,
    "VisibilityTimeout": 30,
}
_JSON = ("RedrivePolicy",)
_STRINGS = ("KmsMasterKeyId",)
_BOOLEANS = ("ContentBasedDeduplication",)


class Queue(TypeHandler):
    type_name = "AWS::SQS::Queue"
    description = "An SQS queue"
    identifier = "QueueUrl"
    properties = {
        "QueueName": js.string("Generated when left out; a FIFO queue's ends in .fifo", maxLength=80),
        "FifoQueue": js.boolean(),
        "ContentBasedDeduplication": js.boolean(),
        **{name: js.integer() for name in _NUMBERS},
        "RedrivePolicy": js.obj(
            {"deadLetterTargetArn": js.string(), "maxReceiveCount": js.integer(minimum=1)},
            "deadLetterTargetArn",
        ),
        "KmsMasterKeyId": js.string(),
        "Tags": js.TAGS,
        "QueueUrl": js.string(),
        "Arn": js.string(),
    }
    create_only = ("QueueName", "FifoQueue")
    read_only = ("QueueUrl", "Arn")
    mutable = (*_NUMBERS, "ContentBasedDeduplication", "RedrivePolicy", "KmsMasterKeyId", "Tags")
    DEFAULTS: ClassVar[dict[str, Any]] = {**_NUMBERS, "Tags": []}
    name_property = "QueueName"
    name_limit = 75

    def named(self, label: str, desired: JsonObject, key: str) -> JsonObject:
        named = super().named(label, desired, key)
        if desired.get("FifoQueue") and not str(named["QueueName"]).endswith(".fifo"):
            named = {**named, "QueueName": f"{named['QueueName']}.fifo"}
        return named

    def sqs(self, aws: Aws) -> Any:
        return aws.client("sqs")

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        attributes = _to_attributes(
            {k: v for k, v in desired.items() if k in self.mutable or k == "FifoQueue"}
        )
        if self._url_of(aws, str(desired["QueueName"])):  # CreateQueue would answer with it
            raise AlreadyExists(desired["QueueName"])
        tags = {t["Key"]: t["Value"] for t in creation_tags(desired, key)}
        created = self.sqs(aws).create_queue(QueueName=desired["QueueName"], Attributes=attributes, tags=tags)
        return str(created["QueueUrl"])

    def find_by_name(self, aws: Aws, desired: JsonObject) -> tuple[str, str | None] | None:
        url = self._url_of(aws, str(desired["QueueName"]))
        return (url, self._tags(aws, url).get(IDEMPOTENCY_TAG)) if url else None

    def _url_of(self, aws: Aws, name: str) -> str | None:
        try:
            return str(self.sqs(aws).get_queue_url(QueueName=name)["QueueUrl"])
        except ClientError as error:
            if map_error(error).code is ErrorCode.NOT_FOUND:
                return None
            raise

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        attributes = self.sqs(aws).get_queue_attributes(QueueUrl=native_id, AttributeNames=["All"])[
            "Attributes"
        ]
        properties: JsonObject = {
            "QueueUrl": native_id,
            "QueueName": native_id.rstrip("/").rsplit("/", 1)[-1],
            "Arn": attributes["QueueArn"],
            "Tags": tags_from_map(self._tags(aws, native_id)),
        }
        if attributes.get("FifoQueue") == "true":
            properties["FifoQueue"] = True
            properties["ContentBasedDeduplication"] = attributes.get("ContentBasedDeduplication") == "true"
        for name in _NUMBERS:
            if name in attributes:
                properties[name] = int(attributes[name])
        for name in _JSON:
            if attributes.get(name):
                properties[name] = json.loads(attributes[name])
        for name in _STRINGS:
            properties[name] = attributes.get(name)
        return drop_empty(properties)

    def apply_changes(self, aws: Aws, native_id: str, changes: dict[str, Any], current: JsonObject) -> None:
        tags = changes.pop("Tags", None)
        if changes:
            attributes = _to_attributes({k: v if v is not None else "" for k, v in changes.items()})
            self.sqs(aws).set_queue_attributes(QueueUrl=native_id, Attributes=attributes)
        if tags is not None:
            to_set, to_remove = tag_changes(current.get("Tags"), tags)
            if to_set:
                self.sqs(aws).tag_queue(QueueUrl=native_id, Tags=to_set)
            if to_remove:
                self.sqs(aws).untag_queue(QueueUrl=native_id, TagKeys=to_remove)

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        self.sqs(aws).get_queue_attributes(
            QueueUrl=native_id, AttributeNames=["QueueArn"]
        )  # NotFound if gone
        self.sqs(aws).delete_queue(QueueUrl=native_id)

    def list_ids(self, aws: Aws, token: str, size: int) -> tuple[list[str], str]:
        arguments: dict[str, Any] = {"MaxResults": min(size or 1000, 1000)}
        if token:
            arguments["NextToken"] = token
        found = self.sqs(aws).list_queues(**arguments)
        return list(found.get("QueueUrls", [])), found.get("NextToken", "")

    def _tags(self, aws: Aws, url: str) -> dict[str, str]:
        return dict(self.sqs(aws).list_queue_tags(QueueUrl=url).get("Tags", {}))


def _to_attributes(properties: JsonObject) -> dict[str, str]:
    """CloudFormation's typed values as SQS's string attributes."""
    attributes: dict[str, str] = {}
    for name, value in properties.items():
        if isinstance(value, bool):
            attributes[name] = "true" if value else "false"
        elif isinstance(value, dict):
            attributes[name] = json.dumps(value)
        else:
            attributes[name] = str(value)
    return attributes


HANDLERS: tuple[type[TypeHandler], ...] = (Queue,)
"""The types this module serves; the plugin makes one handler of each."""
