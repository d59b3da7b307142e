"""CloudWatch Logs log groups: a name, a retention, tags."""

from __future__ import annotations

from typing import Any

from formae.plugin import JsonObject
from formae_aws import schema as js
from formae_aws.handler import (
    Aws,
    TypeHandler,
    creation_tags,
    drop_empty,
    idempotency_tag,
    tag_changes,
    tags_from_map,
)

RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


class LogGroup(TypeHandler):
    type_name = "AWS::Logs::LogGroup"
    description = "A CloudWatch Logs log group"
    identifier = "LogGroupName"
    properties = {
        "LogGroupName": js.string("Generated when left out", maxLength=512),
        "RetentionInDays": {
            "type": "integer",
            "enum": list(RETENTION_DAYS),
            "description": "Left out: kept forever",
        },
        "KmsKeyId": js.string(),
        "Tags": js.TAGS,
        "Arn": js.string(),
    }
    create_only = ("LogGroupName",)
    read_only = ("Arn",)
    mutable = ("RetentionInDays", "KmsKeyId", "Tags")
    name_property = "LogGroupName"
    name_limit = 512

    def logs(self, aws: Aws) -> Any:
        return aws.client("logs")

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        name = str(desired["LogGroupName"])
        arguments: dict[str, Any] = {"logGroupName": name}
        tags = {t["Key"]: t["Value"] for t in creation_tags(desired, key)}
        if tags:
            arguments["tags"] = tags
        if desired.get("KmsKeyId"):
            arguments["kmsKeyId"] = desired["KmsKeyId"]
        self.logs(aws).create_log_group(**arguments)
        return name

    def find_by_name(self, aws: Aws, desired: JsonObject) -> tuple[str, str | None] | None:
        name = str(desired["LogGroupName"])
        tags = self.logs(aws).list_tags_log_group(logGroupName=name).get("tags", {})
        return name, idempotency_tag([{"Key": k, "Value": v} for k, v in tags.items()])

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        found = self.logs(aws).describe_log_groups(logGroupNamePrefix=native_id)["logGroups"]
        group = next((g for g in found if g["logGroupName"] == native_id), None)
        if group is None:
            return None
        tags = self.logs(aws).list_tags_log_group(logGroupName=native_id).get("tags", {})
        return drop_empty(
            {
                "LogGroupName": native_id,
                "Arn": group["arn"],
                "RetentionInDays": group.get("retentionInDays"),
                "KmsKeyId": group.get("kmsKeyId"),
                "Tags": tags_from_map(tags),
            }
        )

    def apply(self, aws: Aws, native_id: str, name: str, value: Any, current: JsonObject) -> None:
        logs = self.logs(aws)
        match name:
            case "RetentionInDays" if value:
                logs.put_retention_policy(logGroupName=native_id, retentionInDays=value)
            case "RetentionInDays":
                logs.delete_retention_policy(logGroupName=native_id)
            case "KmsKeyId" if value:
                logs.associate_kms_key(logGroupName=native_id, kmsKeyId=value)
            case "KmsKeyId":
                logs.disassociate_kms_key(logGroupName=native_id)
            case "Tags":
                to_set, to_remove = tag_changes(current.get("Tags"), value)
                if to_set:
                    logs.tag_log_group(logGroupName=native_id, tags=to_set)
                if to_remove:
                    logs.untag_log_group(logGroupName=native_id, tags=to_remove)

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        self.logs(aws).delete_log_group(logGroupName=native_id)

    def list_ids(self, aws: Aws, token: str, size: int) -> tuple[list[str], str]:
        arguments: dict[str, Any] = {"limit": min(size or 50, 50)}
        if token:
            arguments["nextToken"] = token
        found = self.logs(aws).describe_log_groups(**arguments)
        return [g["logGroupName"] for g in found["logGroups"]], found.get("nextToken", "")


HANDLERS: tuple[type[TypeHandler], ...] = (LogGroup,)
"""The types this module serves; the plugin makes one handler of each."""
