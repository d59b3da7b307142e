"""IAM roles and inline policies.

``AWS::IAM::Policy`` is an inline policy put on roles, users and groups. Its id names the policy and
the principals it is on (``name|roles=a,b|users=|groups=``), so a read needs nothing else; changing
the principals therefore replaces it (here they are create-only, unlike in CloudFormation), while
its document changes in place. ``PutRolePolicy`` and kin are idempotent, so a retried create is too.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from formae.plugin import ErrorCode, JsonObject
from formae_aws import schema as js
from formae_aws.errors import map_error
from formae_aws.handler import (
    Aws,
    TypeHandler,
    creation_tags,
    drop_empty,
    idempotency_tag,
    tag_changes,
    tags_from,
)


def _document(value: Any) -> Any:
    """A policy document as JSON: boto3 decodes most, but AWS sends URL-encoded text."""
    if isinstance(value, str):
        return json.loads(urllib.parse.unquote(value))
    return value


class Role(TypeHandler):
    type_name = "AWS::IAM::Role"
    description = "An IAM role"
    identifier = "RoleName"
    properties = {
        "RoleName": js.string("Generated when left out", maxLength=64),
        "Path": js.string(),
        "AssumeRolePolicyDocument": js.any_object("Who may assume the role"),
        "Description": js.string(maxLength=1000),
        "MaxSessionDuration": js.integer(minimum=3600, maximum=43200),
        "ManagedPolicyArns": js.array(js.string()),
        "Tags": js.TAGS,
        "Arn": js.string(),
        "RoleId": js.string(),
    }
    required = ("AssumeRolePolicyDocument",)
    create_only = ("RoleName", "Path")
    read_only = ("Arn", "RoleId")
    mutable = ("AssumeRolePolicyDocument", "Description", "MaxSessionDuration", "ManagedPolicyArns", "Tags")
    DEFAULTS: ClassVar[dict[str, Any]] = {"Tags": [], "ManagedPolicyArns": [], "MaxSessionDuration": 3600}
    name_property = "RoleName"

    def iam(self, aws: Aws) -> Any:
        return aws.client("iam")

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        arguments: dict[str, Any] = {
            "RoleName": desired["RoleName"],
            "AssumeRolePolicyDocument": json.dumps(desired["AssumeRolePolicyDocument"]),
        }
        for name in ("Path", "Description", "MaxSessionDuration"):
            if desired.get(name):
                arguments[name] = desired[name]
        tags = creation_tags(desired, key)
        if tags:
            arguments["Tags"] = tags
        return str(self.iam(aws).create_role(**arguments)["Role"]["RoleName"])

    def find_by_name(self, aws: Aws, desired: JsonObject) -> tuple[str, str | None] | None:
        role = self.iam(aws).get_role(RoleName=desired["RoleName"])["Role"]
        return str(role["RoleName"]), idempotency_tag(role.get("Tags", []))

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        iam = self.iam(aws)
        role = iam.get_role(RoleName=native_id)["Role"]
        attached = iam.list_attached_role_policies(RoleName=native_id).get("AttachedPolicies", [])
        return drop_empty(
            {
                "RoleName": native_id,
                "Arn": role["Arn"],
                "RoleId": role["RoleId"],
                "Path": role.get("Path", "/"),
                "AssumeRolePolicyDocument": _document(role["AssumeRolePolicyDocument"]),
                "Description": role.get("Description") or None,
                "MaxSessionDuration": role.get("MaxSessionDuration", 3600),
                "ManagedPolicyArns": sorted(p["PolicyArn"] for p in attached),
                "Tags": tags_from(role.get("Tags", [])),
            }
        )

    def apply_changes(self, aws: Aws, native_id: str, changes: dict[str, Any], current: JsonObject) -> None:
        """Description and session duration in one UpdateRole, which may clear what it is not sent."""
        if "Description" in changes or "MaxSessionDuration" in changes:
            self.iam(aws).update_role(
                RoleName=native_id,
                Description=changes.pop("Description", current.get("Description")) or "",
                MaxSessionDuration=changes.pop("MaxSessionDuration", current.get("MaxSessionDuration", 3600)),
            )
        super().apply_changes(aws, native_id, changes, current)

    def apply(self, aws: Aws, native_id: str, name: str, value: Any, current: JsonObject) -> None:
        iam = self.iam(aws)
        match name:
            case "AssumeRolePolicyDocument":
                iam.update_assume_role_policy(RoleName=native_id, PolicyDocument=json.dumps(value))
            case "ManagedPolicyArns":
                have, want = set(current.get("ManagedPolicyArns", [])), set(value or [])
                for arn in sorted(want - have):
                    iam.attach_role_policy(RoleName=native_id, PolicyArn=arn)
                for arn in sorted(have - want):
                    iam.detach_role_policy(RoleName=native_id, PolicyArn=arn)
            case "Tags":
                to_set, to_remove = tag_changes(current.get("Tags"), value)
                if to_set:
                    iam.tag_role(RoleName=native_id, Tags=[{"Key": k, "Value": v} for k, v in to_set.items()])
                if to_remove:
                    iam.untag_role(RoleName=native_id, TagKeys=to_remove)

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        """Detaches the managed policies first, as AWS requires; inline ones are other resources."""
        iam = self.iam(aws)
        for policy in iam.list_attached_role_policies(RoleName=native_id).get("AttachedPolicies", []):
            iam.detach_role_policy(RoleName=native_id, PolicyArn=policy["PolicyArn"])
        iam.delete_role(RoleName=native_id)

    def list_ids(self, aws: Aws, token: str, size: int) -> tuple[list[str], str]:
        arguments: dict[str, Any] = {"MaxItems": min(size or 100, 1000)}
        if token:
            arguments["Marker"] = token
        found = self.iam(aws).list_roles(**arguments)
        return [r["RoleName"] for r in found["Roles"]], found.get("Marker", "") if found.get(
            "IsTruncated"
        ) else ""


_PRINCIPALS = ("Roles", "Users", "Groups")


class Policy(TypeHandler):
    type_name = "AWS::IAM::Policy"
    description = "An inline IAM policy on roles, users and groups"
    identifier = "Id"
    properties = {
        "PolicyName": js.string(maxLength=128),
        "PolicyDocument": js.any_object(),
        "Roles": js.array(js.string(), "Role names"),
        "Users": js.array(js.string(), "User names"),
        "Groups": js.array(js.string(), "Group names"),
        "Id": js.string(),
    }
    required = ("PolicyName", "PolicyDocument")
    create_only = ("PolicyName", "Roles", "Users", "Groups")
    read_only = ("Id",)
    mutable = ("PolicyDocument",)

    def iam(self, aws: Aws) -> Any:
        return aws.client("iam")

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        principals = {kind: sorted(desired.get(kind) or []) for kind in _PRINCIPALS}
        native_id = _policy_id(str(desired["PolicyName"]), principals)
        self._put(aws, native_id, desired["PolicyDocument"])
        return native_id

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        name, principals = _parse_policy_id(native_id)
        found: dict[str, list[str]] = {kind: [] for kind in _PRINCIPALS}
        document: Any = None
        for kind, principal in _each(principals):
            try:
                answer = _CALLS[kind][1](self.iam(aws))(**{_ARGUMENT[kind]: principal, "PolicyName": name})
            except ClientError as error:
                if map_error(error).code is ErrorCode.NOT_FOUND:
                    continue
                raise
            found[kind].append(principal)
            document = document if document is not None else _document(answer["PolicyDocument"])
        if document is None:
            return None
        return drop_empty({"Id": native_id, "PolicyName": name, "PolicyDocument": document, **found})

    def apply(self, aws: Aws, native_id: str, name: str, value: Any, current: JsonObject) -> None:
        self._put(aws, native_id, value)

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        name, principals = _parse_policy_id(native_id)
        missing = 0
        for kind, principal in _each(principals):
            try:
                _CALLS[kind][2](self.iam(aws))(**{_ARGUMENT[kind]: principal, "PolicyName": name})
            except ClientError as error:
                if map_error(error).code is not ErrorCode.NOT_FOUND:
                    raise
                missing += 1
        if missing and missing == len(list(_each(principals))):
            raise ClientError(
                {"Error": {"Code": "NoSuchEntity", "Message": f"policy {name} not found"}}, "DeleteRolePolicy"
            )

    def list_ids(self, aws: Aws, token: str, size: int) -> tuple[list[str], str]:
        """The inline policies of roles (the principals formae manages); one id per role and policy."""
        roles, next_token = Role().list_ids(aws, token, size)
        ids = [
            _policy_id(name, {"Roles": [role], "Users": [], "Groups": []})
            for role in roles
            for name in self.iam(aws).list_role_policies(RoleName=role).get("PolicyNames", [])
        ]
        return ids, next_token

    def _put(self, aws: Aws, native_id: str, document: Any) -> None:
        name, principals = _parse_policy_id(native_id)
        for kind, principal in _each(principals):
            _CALLS[kind][0](self.iam(aws))(
                **{_ARGUMENT[kind]: principal, "PolicyName": name, "PolicyDocument": json.dumps(document)}
            )


_CALLS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], Callable[[Any], Any]]] = {
    "Roles": (lambda c: c.put_role_policy, lambda c: c.get_role_policy, lambda c: c.delete_role_policy),
    "Users": (lambda c: c.put_user_policy, lambda c: c.get_user_policy, lambda c: c.delete_user_policy),
    "Groups": (lambda c: c.put_group_policy, lambda c: c.get_group_policy, lambda c: c.delete_group_policy),
}
_ARGUMENT = {"Roles": "RoleName", "Users": "UserName", "Groups": "GroupName"}


def _policy_id(name: str, principals: dict[str, list[str]]) -> str:
    return "|".join([name, *(f"{kind.lower()}={','.join(principals[kind])}" for kind in _PRINCIPALS)])


def _parse_policy_id(native_id: str) -> tuple[str, dict[str, list[str]]]:
    name, *parts = native_id.split("|")
    principals: dict[str, list[str]] = {kind: [] for kind in _PRINCIPALS} | {
        kind.capitalize(): [p for p in names.split(",") if p]
        for kind, names in (part.split("=", 1) for part in parts)
    }
    return name, principals


def _each(principals: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(kind, principal) for kind in _PRINCIPALS for principal in principals.get(kind, [])]


HANDLERS: tuple[type[TypeHandler], ...] = (Role, Policy)
"""The types this module serves; the plugin makes one handler of each."""
