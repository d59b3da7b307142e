"""SNS topics and subscriptions.

``CreateTopic`` and ``Subscribe`` are idempotent in AWS itself: the same name (or topic, protocol
and endpoint) answers with the same ARN, so a retried create finds the first. A topic of that name
made by someone else is told apart by the ``formae:idempotency-key`` tag.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from formae.plugin import ErrorCode, JsonObject
from formae_aws import schema as js
from formae_aws.handler import (
    IDEMPOTENCY_TAG,
    Aws,
    Refused,
    TypeHandler,
    creation_tags,
    drop_empty,
    tag_changes,
    tags_from,
)


class Topic(TypeHandler):
    type_name = "AWS::SNS::Topic"
    description = "An SNS topic"
    identifier = "TopicArn"
    properties = {
        "TopicName": js.string("Generated when left out; a FIFO topic's ends in .fifo", maxLength=256),
        "DisplayName": js.string(maxLength=100),
        "FifoTopic": js.boolean(),
        "KmsMasterKeyId": js.string(),
        "Tags": js.TAGS,
        "TopicArn": js.string(),
    }
    create_only = ("TopicName", "FifoTopic")
    read_only = ("TopicArn",)
    mutable = ("DisplayName", "KmsMasterKeyId", "Tags")
    DEFAULTS: ClassVar[dict[str, Any]] = {"Tags": [], "DisplayName": "", "KmsMasterKeyId": ""}
    name_property = "TopicName"
    name_limit = 250

    def named(self, label: str, desired: JsonObject, key: str) -> JsonObject:
        named = super().named(label, desired, key)
        if desired.get("FifoTopic") and not str(named["TopicName"]).endswith(".fifo"):
            named = {**named, "TopicName": f"{named['TopicName']}.fifo"}
        return named

    def sns(self, aws: Aws) -> Any:
        return aws.client("sns")

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        attributes = {"FifoTopic": "true"} if desired.get("FifoTopic") else {}
        arguments: dict[str, Any] = {"Name": desired["TopicName"], "Attributes": attributes}
        tags = creation_tags(desired, key)
        if tags:
            arguments["Tags"] = tags
        arn = str(self.sns(aws).create_topic(**arguments)["TopicArn"])
        if key and self._tags(aws, arn).get(IDEMPOTENCY_TAG) != key:
            raise Refused(ErrorCode.ALREADY_EXISTS, f"AWS::SNS::Topic {desired['TopicName']} already exists")
        return arn

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        attributes = self.sns(aws).get_topic_attributes(TopicArn=native_id)["Attributes"]
        tags = [{"Key": k, "Value": v} for k, v in self._tags(aws, native_id).items()]
        return drop_empty(
            {
                "TopicArn": native_id,
                "TopicName": native_id.rsplit(":", 1)[-1],
                "DisplayName": attributes.get("DisplayName") or None,
                "FifoTopic": True if attributes.get("FifoTopic") == "true" else None,
                "KmsMasterKeyId": attributes.get("KmsMasterKeyId") or None,
                "Tags": tags_from(tags),
            }
        )

    def apply(self, aws: Aws, native_id: str, name: str, value: Any, current: JsonObject) -> None:
        if name != "Tags":
            self.sns(aws).set_topic_attributes(
                TopicArn=native_id, AttributeName=name, AttributeValue=value or ""
            )
            return
        to_set, to_remove = tag_changes(current.get("Tags"), value)
        if to_set:
            self.sns(aws).tag_resource(
                ResourceArn=native_id, Tags=[{"Key": k, "Value": v} for k, v in to_set.items()]
            )
        if to_remove:
            self.sns(aws).untag_resource(ResourceArn=native_id, TagKeys=to_remove)

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        self.sns(aws).get_topic_attributes(TopicArn=native_id)  # NotFound if gone: DeleteTopic never says
        self.sns(aws).delete_topic(TopicArn=native_id)

    def list_ids(self, aws: Aws, token: str, size: int) -> tuple[list[str], str]:
        found = self.sns(aws).list_topics(**({"NextToken": token} if token else {}))
        return [topic["TopicArn"] for topic in found.get("Topics", [])], found.get("NextToken", "")

    def _tags(self, aws: Aws, arn: str) -> dict[str, str]:
        return {
            t["Key"]: t["Value"]
            for t in self.sns(aws).list_tags_for_resource(ResourceArn=arn).get("Tags", [])
        }


_JSON_ATTRIBUTES = ("FilterPolicy", "RedrivePolicy")


class Subscription(TypeHandler):
    type_name = "AWS::SNS::Subscription"
    description = "A subscription of an endpoint (a queue, a function, an address) to a topic"
    identifier = "Arn"
    properties = {
        "TopicArn": js.string(),
        "Protocol": js.enum(
            "http", "https", "email", "email-json", "sms", "sqs", "application", "lambda", "firehose"
        ),
        "Endpoint": js.string("The queue's or function's ARN, the URL or address"),
        "RawMessageDelivery": js.boolean(),
        "FilterPolicy": js.any_object(),
        "FilterPolicyScope": js.enum("MessageAttributes", "MessageBody"),
        "RedrivePolicy": js.obj({"deadLetterTargetArn": js.string()}, "deadLetterTargetArn"),
        "Arn": js.string(),
    }
    required = ("TopicArn", "Protocol")
    create_only = ("TopicArn", "Protocol", "Endpoint")
    read_only = ("Arn",)
    mutable = ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy")
    DEFAULTS: ClassVar[dict[str, Any]] = {"RawMessageDelivery": False}

    def sns(self, aws: Aws) -> Any:
        return aws.client("sns")

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        attributes = {name: _attribute(desired[name]) for name in self.mutable if name in desired}
        subscribed = self.sns(aws).subscribe(
            TopicArn=desired["TopicArn"],
            Protocol=desired["Protocol"],
            Endpoint=desired.get("Endpoint", ""),
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        return str(subscribed["SubscriptionArn"])

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        attributes = self.sns(aws).get_subscription_attributes(SubscriptionArn=native_id)["Attributes"]
        return drop_empty(
            {
                "Arn": native_id,
                "TopicArn": attributes["TopicArn"],
                "Protocol": attributes["Protocol"],
                "Endpoint": attributes.get("Endpoint"),
                "RawMessageDelivery": attributes.get("RawMessageDelivery") == "true",
                "FilterPolicy": json.loads(attributes["FilterPolicy"])
                if attributes.get("FilterPolicy")
                else None,
                "FilterPolicyScope": attributes.get("FilterPolicyScope")
                if attributes.get("FilterPolicy")
                else None,
                "RedrivePolicy": json.loads(attributes["RedrivePolicy"])
                if attributes.get("RedrivePolicy")
                else None,
            }
        )

    def apply(self, aws: Aws, native_id: str, name: str, value: Any, current: JsonObject) -> None:
        self.sns(aws).set_subscription_attributes(
            SubscriptionArn=native_id, AttributeName=name, AttributeValue=_attribute(value)
        )

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        self.sns(aws).get_subscription_attributes(SubscriptionArn=native_id)  # NotFound if gone
        self.sns(aws).unsubscribe(SubscriptionArn=native_id)

    def list_ids(self, aws: Aws, token: str, size: int) -> tuple[list[str], str]:
        found = self.sns(aws).list_subscriptions(**({"NextToken": token} if token else {}))
        arns = [
            s["SubscriptionArn"]
            for s in found.get("Subscriptions", [])
            if s["SubscriptionArn"].startswith("arn:")
        ]
        return arns, found.get("NextToken", "")


def _attribute(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


HANDLERS: tuple[type[TypeHandler], ...] = (Topic, Subscription)
"""The types this module serves; the plugin makes one handler of each."""
