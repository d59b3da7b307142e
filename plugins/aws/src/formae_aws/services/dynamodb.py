"""DynamoDB tables: AWS creates, changes and deletes them asynchronously (CREATING, UPDATING,
DELETING), so these operations answer IN_PROGRESS until the table is ACTIVE, or gone.

Key schema and attribute definitions are create-only here: without global secondary indexes (not
served yet) the attributes are exactly the key's, so changing them means a new table.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from formae.plugin import ErrorCode, JsonObject, Operation
from formae_aws import schema as js
from formae_aws.errors import aws_code, map_error
from formae_aws.handler import (
    AlreadyExists,
    Aws,
    Refused,
    TypeHandler,
    creation_tags,
    drop_empty,
    idempotency_tag,
    tag_changes,
    tags_from,
)

_SETTLED = {"ACTIVE"}
_FAILED = {"INACCESSIBLE_ENCRYPTION_CREDENTIALS", "ARCHIVED"}


class Table(TypeHandler):
    type_name = "AWS::DynamoDB::Table"
    description = "A DynamoDB table"
    identifier = "TableName"
    properties = {
        "TableName": js.string("Generated when left out", minLength=3, maxLength=255),
        "AttributeDefinitions": js.array(
            js.obj(
                {"AttributeName": js.string(), "AttributeType": js.enum("S", "N", "B")},
                "AttributeName",
                "AttributeType",
            )
        ),
        "KeySchema": js.array(
            js.obj(
                {"AttributeName": js.string(), "KeyType": js.enum("HASH", "RANGE")},
                "AttributeName",
                "KeyType",
            ),
            minItems=1,
            maxItems=2,
        ),
        "BillingMode": js.enum("PROVISIONED", "PAY_PER_REQUEST"),
        "ProvisionedThroughput": js.obj(
            {"ReadCapacityUnits": js.integer(minimum=1), "WriteCapacityUnits": js.integer(minimum=1)},
            "ReadCapacityUnits",
            "WriteCapacityUnits",
        ),
        "Tags": js.TAGS,
        "Arn": js.string(),
    }
    required = ("KeySchema", "AttributeDefinitions")
    create_only = ("TableName", "KeySchema", "AttributeDefinitions")
    read_only = ("Arn",)
    mutable = ("BillingMode", "ProvisionedThroughput", "Tags")
    DEFAULTS: ClassVar[dict[str, Any]] = {"Tags": [], "BillingMode": "PROVISIONED"}
    name_property = "TableName"
    name_limit = 255
    poll_interval = 2.0

    def ddb(self, aws: Aws) -> Any:
        return aws.client("dynamodb")

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        arguments: dict[str, Any] = {
            "TableName": desired["TableName"],
            "KeySchema": desired["KeySchema"],
            "AttributeDefinitions": desired["AttributeDefinitions"],
            "BillingMode": desired.get("BillingMode", "PROVISIONED"),
        }
        if "ProvisionedThroughput" in desired:
            arguments["ProvisionedThroughput"] = desired["ProvisionedThroughput"]
        tags = creation_tags(desired, key)
        if tags:
            arguments["Tags"] = tags
        try:
            self.ddb(aws).create_table(**arguments)
        except ClientError as error:
            if aws_code(error) in ("ResourceInUseException", "TableAlreadyExistsException"):
                raise AlreadyExists(desired["TableName"]) from error
            raise
        return str(desired["TableName"])

    def find_by_name(self, aws: Aws, desired: JsonObject) -> tuple[str, str | None] | None:
        table = self.ddb(aws).describe_table(TableName=desired["TableName"])["Table"]
        return str(table["TableName"]), idempotency_tag(self._tags(aws, table["TableArn"]))

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        table = self.ddb(aws).describe_table(TableName=native_id)["Table"]
        billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
        throughput = table.get("ProvisionedThroughput", {})
        return drop_empty(
            {
                "TableName": native_id,
                "Arn": table["TableArn"],
                "KeySchema": table["KeySchema"],
                "AttributeDefinitions": sorted(
                    table["AttributeDefinitions"], key=lambda a: str(a["AttributeName"])
                ),
                "BillingMode": billing,
                "ProvisionedThroughput": {
                    "ReadCapacityUnits": throughput.get("ReadCapacityUnits"),
                    "WriteCapacityUnits": throughput.get("WriteCapacityUnits"),
                }
                if billing == "PROVISIONED"
                else None,
                "Tags": tags_from(self._tags(aws, table["TableArn"])),
            }
        )

    def apply_changes(self, aws: Aws, native_id: str, changes: dict[str, Any], current: JsonObject) -> None:
        """One UpdateTable for billing and throughput: AWS refuses a second while the first runs."""
        tags = changes.pop("Tags", None)
        if changes:
            arguments: dict[str, Any] = {"TableName": native_id}
            if "BillingMode" in changes:
                arguments["BillingMode"] = changes["BillingMode"]
            if changes.get("ProvisionedThroughput"):
                arguments["ProvisionedThroughput"] = changes["ProvisionedThroughput"]
            self.ddb(aws).update_table(**arguments)
        if tags is not None:
            arn = current["Arn"]
            to_set, to_remove = tag_changes(current.get("Tags"), tags)
            if to_set:
                self.ddb(aws).tag_resource(
                    ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in to_set.items()]
                )
            if to_remove:
                self.ddb(aws).untag_resource(ResourceArn=arn, TagKeys=to_remove)

    def settled(self, aws: Aws, native_id: str, operation: Operation) -> bool:
        try:
            status = self.ddb(aws).describe_table(TableName=native_id)["Table"]["TableStatus"]
        except ClientError as error:
            if map_error(error).code is ErrorCode.NOT_FOUND:
                return operation is Operation.DELETE
            raise
        if status in _FAILED:
            raise Refused(ErrorCode.GENERAL_SERVICE_EXCEPTION, f"table {native_id} is {status}")
        return operation is not Operation.DELETE and status in _SETTLED

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        self.ddb(aws).delete_table(TableName=native_id)

    def list_ids(self, aws: Aws, token: str, size: int) -> tuple[list[str], str]:
        arguments: dict[str, Any] = {"Limit": min(size or 100, 100)}
        if token:
            arguments["ExclusiveStartTableName"] = token
        found = self.ddb(aws).list_tables(**arguments)
        return list(found.get("TableNames", [])), found.get("LastEvaluatedTableName", "")

    def _tags(self, aws: Aws, arn: str) -> list[JsonObject]:
        return list(self.ddb(aws).list_tags_of_resource(ResourceArn=arn).get("Tags", []))


HANDLERS: tuple[type[TypeHandler], ...] = (Table,)
"""The types this module serves; the plugin makes one handler of each."""
