"""Lambda functions. AWS prepares a function asynchronously (State ``Pending``, then ``Active``;
``LastUpdateStatus`` ``InProgress`` after a change), so create and update answer IN_PROGRESS until
it is ready, and configuration changes go in one call, since AWS refuses a second while one runs.

``Code`` is write-only as in CloudFormation (``ZipFile`` is the handler's source text, zipped into
``index.py`` or ``index.js`` by runtime, or ``S3Bucket``/``S3Key``); the read-only ``CodeSha256``
(not in CloudFormation's schema) shows when the code was changed outside formae.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from formae.plugin import ErrorCode, JsonObject, Operation
from formae_aws import schema as js
from formae_aws.errors import aws_code
from formae_aws.handler import (
    AlreadyExists,
    Aws,
    Refused,
    TypeHandler,
    creation_tags,
    drop_empty,
    idempotency_tag,
    tag_changes,
    tags_from_map,
)

_CONFIGURATION = ("Runtime", "Handler", "Role", "Description", "Timeout", "MemorySize", "Environment")


class Function(TypeHandler):
    type_name = "AWS::Lambda::Function"
    description = "A Lambda function"
    identifier = "FunctionName"
    properties = {
        "FunctionName": js.string("Generated when left out", maxLength=64),
        "Runtime": js.string("e.g. python3.12, nodejs20.x"),
        "Handler": js.string("e.g. index.handler"),
        "Role": js.string("The execution role's ARN"),
        "Code": js.obj(
            {
                "ZipFile": js.string("The source of index.py or index.js"),
                "S3Bucket": js.string(),
                "S3Key": js.string(),
                "S3ObjectVersion": js.string(),
            }
        ),
        "Description": js.string(maxLength=256),
        "Timeout": js.integer(minimum=1, maximum=900),
        "MemorySize": js.integer(minimum=128, maximum=10240),
        "Environment": js.obj({"Variables": js.string_map()}),
        "Tags": js.TAGS,
        "Arn": js.string(),
        "CodeSha256": js.string("The deployed code's SHA-256: changes when the code is replaced"),
    }
    required = ("Role", "Code")
    create_only = ("FunctionName",)
    read_only = ("Arn", "CodeSha256")
    write_only = ("Code",)
    mutable = (*_CONFIGURATION, "Code", "Tags")
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "Tags": [],
        "Timeout": 3,
        "MemorySize": 128,
        "Description": "",
        "Environment": {"Variables": {}},
    }
    name_property = "FunctionName"

    def fn(self, aws: Aws) -> Any:
        return aws.client("lambda")

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        arguments: dict[str, Any] = {
            "FunctionName": desired["FunctionName"],
            "Role": desired["Role"],
            "Code": _code(desired["Code"], str(desired.get("Runtime", ""))),
        }
        for name in _CONFIGURATION:
            if name in desired and name != "Role":
                arguments[name] = desired[name]
        tags = {t["Key"]: t["Value"] for t in creation_tags(desired, key)}
        if tags:
            arguments["Tags"] = tags
        try:
            self.fn(aws).create_function(**arguments)
        except ClientError as error:
            if aws_code(error) == "ResourceConflictException":
                raise AlreadyExists(desired["FunctionName"]) from error
            if aws_code(error) == "InvalidParameterValueException" and "cannot be assumed" in str(error):
                # IAM is eventually consistent: a role made a moment ago is not yet visible to Lambda
                raise Refused(ErrorCode.NOT_STABILIZED, f"the role is not usable yet: {error}") from error
            raise
        return str(desired["FunctionName"])

    def find_by_name(self, aws: Aws, desired: JsonObject) -> tuple[str, str | None] | None:
        found = self.fn(aws).get_function(FunctionName=desired["FunctionName"])
        tags = found.get("Tags", {})
        return str(desired["FunctionName"]), idempotency_tag(
            [{"Key": k, "Value": v} for k, v in tags.items()]
        )

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        found = self.fn(aws).get_function(FunctionName=native_id)
        configuration = found["Configuration"]
        variables = configuration.get("Environment", {}).get("Variables") or {}
        return drop_empty(
            {
                "FunctionName": native_id,
                "Arn": configuration["FunctionArn"],
                "Runtime": configuration.get("Runtime"),
                "Handler": configuration.get("Handler"),
                "Role": configuration["Role"],
                "Description": configuration.get("Description") or None,
                "Timeout": configuration.get("Timeout"),
                "MemorySize": configuration.get("MemorySize"),
                "Environment": {"Variables": variables} if variables else None,
                "CodeSha256": configuration.get("CodeSha256"),
                "Tags": tags_from_map(found.get("Tags", {})),
            }
        )

    def apply_changes(self, aws: Aws, native_id: str, changes: dict[str, Any], current: JsonObject) -> None:
        fn = self.fn(aws)
        configuration = {name: changes[name] for name in _CONFIGURATION if name in changes}
        if configuration:
            fn.update_function_configuration(FunctionName=native_id, **configuration)
        if "Code" in changes:
            if configuration:  # AWS takes one change at a time
                fn.get_waiter("function_updated_v2").wait(
                    FunctionName=native_id, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
                )
            code = _code(changes["Code"], str(changes.get("Runtime") or current.get("Runtime", "")))
            fn.update_function_code(FunctionName=native_id, **code)
        if "Tags" in changes:
            to_set, to_remove = tag_changes(current.get("Tags"), changes["Tags"])
            if to_set:
                fn.tag_resource(Resource=current["Arn"], Tags=to_set)
            if to_remove:
                fn.untag_resource(Resource=current["Arn"], TagKeys=to_remove)

    def settled(self, aws: Aws, native_id: str, operation: Operation) -> bool:
        if operation is Operation.DELETE:
            return True
        configuration = self.fn(aws).get_function_configuration(FunctionName=native_id)
        state, update = (
            configuration.get("State", "Active"),
            configuration.get("LastUpdateStatus", "Successful"),
        )
        if state == "Failed" or update == "Failed":
            reason = configuration.get("StateReason") or configuration.get("LastUpdateStatusReason") or ""
            raise Refused(ErrorCode.INVALID_REQUEST, f"function {native_id} failed: {reason}")
        return bool(state == "Active" and update != "InProgress")

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        self.fn(aws).delete_function(FunctionName=native_id)

    def list_ids(self, aws: Aws, token: str, size: int) -> tuple[list[str], str]:
        arguments: dict[str, Any] = {"MaxItems": min(size or 50, 50)}
        if token:
            arguments["Marker"] = token
        found = self.fn(aws).list_functions(**arguments)
        return [f["FunctionName"] for f in found.get("Functions", [])], found.get("NextMarker", "")


def _code(code: JsonObject, runtime: str) -> JsonObject:
    """CloudFormation's ``Code`` as Lambda's: inline source becomes a zip with one file."""
    if "ZipFile" not in code:
        return {k: code[k] for k in ("S3Bucket", "S3Key", "S3ObjectVersion") if k in code}
    filename = "index.js" if runtime.startswith("nodejs") else "index.py"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(filename, date_time=(1980, 1, 1, 0, 0, 0))  # the same source, the same zip
        info.external_attr = 0o644 << 16
        archive.writestr(info, code["ZipFile"])
    return {"ZipFile": buffer.getvalue()}


HANDLERS: tuple[type[TypeHandler], ...] = (Function,)
"""The types this module serves; the plugin makes one handler of each."""
