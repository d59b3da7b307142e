"""Secrets Manager secrets. The secret's value (``SecretString``) is write-only and sensitive:
it goes to AWS on create and when the forma changes it, is never read back, never returned to the
agent and never logged; drift of the value itself is therefore not detected, only of the rest. It
may be a plain string or formae's secret value (``formae.secret(…)`` in Pkl:
``{"$value": …, "$visibility": "Opaque"}``).
"""

from __future__ import annotations

import hashlib
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
    tags_from,
)


class Secret(TypeHandler):
    type_name = "AWS::SecretsManager::Secret"
    description = "A Secrets Manager secret"
    identifier = "Id"
    properties = {
        "Name": js.string("Generated when left out", maxLength=512),
        "Description": js.string(maxLength=2048),
        "SecretString": js.string(
            "The secret's value: sent to AWS, never read back or returned", format="password"
        ),
        "KmsKeyId": js.string(),
        "Tags": js.TAGS,
        "Id": js.string("The secret's ARN"),
    }
    create_only = ("Name",)
    read_only = ("Id",)
    write_only = ("SecretString",)
    sensitive = ("SecretString",)
    mutable = ("Description", "SecretString", "KmsKeyId", "Tags")
    name_property = "Name"
    name_limit = 512

    def secrets(self, aws: Aws) -> Any:
        return aws.client("secretsmanager")

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        arguments: dict[str, Any] = {"Name": desired["Name"]}
        if key:  # the first version's token: a retried create cannot make a second version
            arguments["ClientRequestToken"] = hashlib.sha256(key.encode()).hexdigest()[:64]
        for name in ("Description", "SecretString", "KmsKeyId"):
            if desired.get(name):
                arguments[name] = js.plain(desired[name])
        tags = creation_tags(desired, key)
        if tags:
            arguments["Tags"] = tags
        return str(self.secrets(aws).create_secret(**arguments)["ARN"])

    def find_by_name(self, aws: Aws, desired: JsonObject) -> tuple[str, str | None] | None:
        found = self.secrets(aws).describe_secret(SecretId=desired["Name"])
        return str(found["ARN"]), idempotency_tag(found.get("Tags", []))

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        found = self.secrets(aws).describe_secret(SecretId=native_id)
        if found.get("DeletedDate"):  # scheduled for deletion: gone as far as the forma is concerned
            return None
        return drop_empty(
            {
                "Id": found["ARN"],
                "Name": found["Name"],
                "Description": found.get("Description") or None,
                "KmsKeyId": found.get("KmsKeyId"),
                "Tags": tags_from(found.get("Tags", [])),
            }
        )

    def apply(self, aws: Aws, native_id: str, name: str, value: Any, current: JsonObject) -> None:
        secrets = self.secrets(aws)
        match name:
            case "SecretString":
                secrets.put_secret_value(SecretId=native_id, SecretString=js.plain(value) or "")
            case "Description" | "KmsKeyId":
                secrets.update_secret(SecretId=native_id, **{name: value or ""})
            case "Tags":
                to_set, to_remove = tag_changes(current.get("Tags"), value)
                if to_set:
                    secrets.tag_resource(
                        SecretId=native_id, Tags=[{"Key": k, "Value": v} for k, v in to_set.items()]
                    )
                if to_remove:
                    secrets.untag_resource(SecretId=native_id, TagKeys=to_remove)

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        if self.read_resource(aws, native_id) is None:
            return
        self.secrets(aws).delete_secret(SecretId=native_id, ForceDeleteWithoutRecovery=True)

    def list_ids(self, aws: Aws, token: str, size: int) -> tuple[list[str], str]:
        arguments: dict[str, Any] = {"MaxResults": min(size or 100, 100)}
        if token:
            arguments["NextToken"] = token
        found = self.secrets(aws).list_secrets(**arguments)
        return [s["ARN"] for s in found.get("SecretList", [])], found.get("NextToken", "")


HANDLERS: tuple[type[TypeHandler], ...] = (Secret,)
"""The types this module serves; the plugin makes one handler of each."""
