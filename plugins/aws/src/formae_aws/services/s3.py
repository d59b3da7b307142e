"""S3 buckets with their versioning, default encryption, public access block, lifecycle rules and tags.

A bucket is named by the user (or by the plugin, from the idempotency key), so a create retried
after a crash finds the bucket (``HeadBucket``, since us-east-1 answers a second create of one's
own bucket with success) and adopts it when its tags carry the key.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from formae.plugin import ErrorCode, JsonObject
from formae_aws import schema as js
from formae_aws.errors import aws_code, map_error
from formae_aws.handler import (
    AlreadyExists,
    Aws,
    TypeHandler,
    creation_tags,
    drop_empty,
    idempotency_tag,
    page,
    tags_from,
)

_ABSENT = (
    "NoSuchTagSet",
    "NoSuchTagSetError",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchPublicAccessBlockConfiguration",
    "NoSuchLifecycleConfiguration",
)

_PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")

_RULE = js.obj(
    {
        "Id": js.string(),
        "Status": js.enum("Enabled", "Disabled"),
        "Prefix": js.string(),
        "ExpirationInDays": js.integer(minimum=1),
        "NoncurrentVersionExpirationInDays": js.integer(minimum=1),
        "AbortIncompleteMultipartUpload": js.obj(
            {"DaysAfterInitiation": js.integer(minimum=1)}, "DaysAfterInitiation"
        ),
    },
    "Id",
    "Status",
)


class Bucket(TypeHandler):
    type_name = "AWS::S3::Bucket"
    description = "An S3 bucket"
    identifier = "BucketName"
    properties = {
        "BucketName": js.string("Generated when left out", pattern="^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
        "VersioningConfiguration": js.obj({"Status": js.enum("Enabled", "Suspended")}, "Status"),
        "BucketEncryption": js.obj(
            {
                "ServerSideEncryptionConfiguration": js.array(
                    js.obj(
                        {
                            "ServerSideEncryptionByDefault": js.obj(
                                {
                                    "SSEAlgorithm": js.enum("AES256", "aws:kms", "aws:kms:dsse"),
                                    "KMSMasterKeyID": js.string(),
                                },
                                "SSEAlgorithm",
                            ),
                            "BucketKeyEnabled": js.boolean(),
                        }
                    )
                )
            },
            "ServerSideEncryptionConfiguration",
        ),
        "PublicAccessBlockConfiguration": js.obj({flag: js.boolean() for flag in _PUBLIC_ACCESS_FLAGS}),
        "LifecycleConfiguration": js.obj({"Rules": js.array(_RULE)}, "Rules"),
        "Tags": js.TAGS,
        "Arn": js.string(),
        "DomainName": js.string(),
        "RegionalDomainName": js.string(),
    }
    create_only = ("BucketName",)
    read_only = ("Arn", "DomainName", "RegionalDomainName")
    mutable = (
        "VersioningConfiguration",
        "BucketEncryption",
        "PublicAccessBlockConfiguration",
        "LifecycleConfiguration",
        "Tags",
    )
    DEFAULTS: ClassVar[dict[str, Any]] = {"Tags": []}
    name_property = "BucketName"
    name_limit = 63

    def shape_name(self, name: str) -> str:
        return name.lower()

    def s3(self, aws: Aws) -> Any:
        return aws.client("s3")

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        name = str(desired["BucketName"])
        arguments: dict[str, Any] = {"Bucket": name}
        region = aws.region
        if region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if key and self._exists(aws, name):  # us-east-1 answers 200 to creating a bucket one owns
            raise AlreadyExists(name)
        try:
            self.s3(aws).create_bucket(**arguments)
        except ClientError as error:
            if aws_code(error) == "BucketAlreadyOwnedByYou":
                raise AlreadyExists(name) from error
            raise
        tags = creation_tags(desired, key)
        if tags:  # S3 takes no tags at creation: a crash between the two leaves an untagged bucket
            self.s3(aws).put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
        return name

    def find_by_name(self, aws: Aws, desired: JsonObject) -> tuple[str, str | None] | None:
        name = str(desired["BucketName"])
        return name, idempotency_tag(self._tag_set(aws, name))

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        s3 = self.s3(aws)
        s3.head_bucket(Bucket=native_id)
        region = s3.get_bucket_location(Bucket=native_id).get("LocationConstraint") or "us-east-1"
        versioning = s3.get_bucket_versioning(Bucket=native_id).get("Status")
        return drop_empty(
            {
                "BucketName": native_id,
                "Arn": f"arn:aws:s3:::{native_id}",
                "DomainName": f"{native_id}.s3.amazonaws.com",
                "RegionalDomainName": f"{native_id}.s3.{region}.amazonaws.com",
                "VersioningConfiguration": {"Status": versioning} if versioning else None,
                "BucketEncryption": self._encryption(aws, native_id),
                "PublicAccessBlockConfiguration": self._optional(
                    lambda: s3.get_public_access_block(Bucket=native_id)["PublicAccessBlockConfiguration"]
                ),
                "LifecycleConfiguration": self._lifecycle(aws, native_id),
                "Tags": tags_from(self._tag_set(aws, native_id)),
            }
        )

    def apply(self, aws: Aws, native_id: str, name: str, value: Any, current: JsonObject) -> None:
        s3 = self.s3(aws)
        match name:
            case "VersioningConfiguration":
                status = (value or {}).get("Status", "Suspended")
                s3.put_bucket_versioning(Bucket=native_id, VersioningConfiguration={"Status": status})
            case "BucketEncryption" if value:
                rules = [_encryption_rule_to_aws(rule) for rule in value["ServerSideEncryptionConfiguration"]]
                s3.put_bucket_encryption(Bucket=native_id, ServerSideEncryptionConfiguration={"Rules": rules})
            case "BucketEncryption":
                s3.delete_bucket_encryption(Bucket=native_id)
            case "PublicAccessBlockConfiguration" if value:
                flags = {flag: bool(value.get(flag, False)) for flag in _PUBLIC_ACCESS_FLAGS}
                s3.put_public_access_block(Bucket=native_id, PublicAccessBlockConfiguration=flags)
            case "PublicAccessBlockConfiguration":
                s3.delete_public_access_block(Bucket=native_id)
            case "LifecycleConfiguration" if value:
                rules = [_rule_to_aws(rule) for rule in value["Rules"]]
                s3.put_bucket_lifecycle_configuration(
                    Bucket=native_id, LifecycleConfiguration={"Rules": rules}
                )
            case "LifecycleConfiguration":
                s3.delete_bucket_lifecycle(Bucket=native_id)
            case "Tags":
                reserved = [
                    t for t in self._tag_set(aws, native_id) if t["Key"].startswith(("aws:", "formae:"))
                ]
                tag_set = [*reserved, *({"Key": t["Key"], "Value": t["Value"]} for t in value or [])]
                if tag_set:
                    s3.put_bucket_tagging(Bucket=native_id, Tagging={"TagSet": tag_set})
                else:
                    s3.delete_bucket_tagging(Bucket=native_id)

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        self.s3(aws).delete_bucket(Bucket=native_id)

    def list_ids(self, aws: Aws, token: str, size: int) -> tuple[list[str], str]:
        names = sorted(bucket["Name"] for bucket in self.s3(aws).list_buckets().get("Buckets", []))
        return page(names, token, size)

    # ------------------------------------------------------------ reading the sub-configurations

    def _exists(self, aws: Aws, name: str) -> bool:
        try:
            self.s3(aws).head_bucket(Bucket=name)
        except ClientError as error:
            if map_error(error).code in (ErrorCode.NOT_FOUND, ErrorCode.ACCESS_DENIED):  # 403: someone else's
                return False
            raise
        return True

    def _tag_set(self, aws: Aws, name: str) -> list[JsonObject]:
        return self._optional(lambda: self.s3(aws).get_bucket_tagging(Bucket=name)["TagSet"]) or []

    def _encryption(self, aws: Aws, name: str) -> JsonObject | None:
        found = self._optional(
            lambda: self.s3(aws).get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
        )
        if not found:
            return None
        rules = [
            drop_empty(
                {
                    "ServerSideEncryptionByDefault": rule.get("ApplyServerSideEncryptionByDefault"),
                    "BucketKeyEnabled": rule.get("BucketKeyEnabled") or None,
                }
            )
            for rule in found["Rules"]
        ]
        return {"ServerSideEncryptionConfiguration": rules}

    def _lifecycle(self, aws: Aws, name: str) -> JsonObject | None:
        rules = self._optional(lambda: self.s3(aws).get_bucket_lifecycle_configuration(Bucket=name)["Rules"])
        return {"Rules": [_rule_from_aws(rule) for rule in rules]} if rules else None

    @staticmethod
    def _optional(read: Any) -> Any:
        """A sub-configuration that may not be set: None then."""
        try:
            return read()
        except ClientError as error:
            if aws_code(error) in _ABSENT:
                return None
            raise


def _encryption_rule_to_aws(rule: JsonObject) -> JsonObject:
    aws: JsonObject = {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
    if "BucketKeyEnabled" in rule:
        aws["BucketKeyEnabled"] = rule["BucketKeyEnabled"]
    return aws


def _rule_to_aws(rule: JsonObject) -> JsonObject:
    aws: JsonObject = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        aws["Expiration"] = {"Days": rule["ExpirationInDays"]}
    if "NoncurrentVersionExpirationInDays" in rule:
        aws["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["NoncurrentVersionExpirationInDays"]}
    if "AbortIncompleteMultipartUpload" in rule:
        aws["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    return aws


def _rule_from_aws(aws: JsonObject) -> JsonObject:
    prefix = aws.get("Filter", {}).get("Prefix", aws.get("Prefix"))
    return drop_empty(
        {
            "Id": aws.get("ID"),
            "Status": aws["Status"],
            "Prefix": prefix or None,
            "ExpirationInDays": aws.get("Expiration", {}).get("Days"),
            "NoncurrentVersionExpirationInDays": aws.get("NoncurrentVersionExpiration", {}).get(
                "NoncurrentDays"
            ),
            "AbortIncompleteMultipartUpload": aws.get("AbortIncompleteMultipartUpload"),
        }
    )


HANDLERS: tuple[type[TypeHandler], ...] = (Bucket,)
"""The types this module serves; the plugin makes one handler of each."""
