"""EC2 networking: VPC, Subnet, SecurityGroup, InternetGateway, RouteTable.

AWS names these resources, so an earlier create with the same idempotency key is found by the
``formae:idempotency-key`` tag, which ``TagSpecifications`` puts on at the moment of creation.
"""

from __future__ import annotations

from typing import Any, ClassVar

from formae.plugin import JsonObject
from formae_aws import schema as js
from formae_aws.handler import (
    IDEMPOTENCY_TAG,
    Aws,
    TypeHandler,
    creation_tags,
    drop_empty,
    tag_changes,
    tags_from,
)

ALL_TRAFFIC = {"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"}


class _Ec2Handler(TypeHandler):
    """What every EC2 type shares: describe by id, tags, finding by the idempotency tag, paging."""

    resource_kind: ClassVar[str]
    """The name in ``TagSpecifications`` (``vpc``, ``subnet``, …)."""
    describe: ClassVar[str]
    """``describe_vpcs`` etc.; the answer's list is named by ``collection``."""
    collection: ClassVar[str]
    id_filter: ClassVar[str]
    DEFAULTS: ClassVar[dict[str, Any]] = {"Tags": []}

    def ec2(self, aws: Aws) -> Any:
        return aws.client("ec2")

    def describe_one(self, aws: Aws, native_id: str) -> JsonObject | None:
        found = getattr(self.ec2(aws), self.describe)(
            Filters=[{"Name": self.id_filter, "Values": [native_id]}]
        )
        items = found[self.collection]
        return items[0] if items else None

    def tag_specification(self, desired: JsonObject, key: str) -> list[JsonObject]:
        tags = creation_tags(desired, key)
        return [{"ResourceType": self.resource_kind, "Tags": tags}] if tags else []

    def find_by_key(self, aws: Aws, key: str) -> str | None:
        found = getattr(self.ec2(aws), self.describe)(
            Filters=[{"Name": f"tag:{IDEMPOTENCY_TAG}", "Values": [key]}]
        )
        items = found[self.collection]
        return str(items[0][self.identifier]) if items else None

    def apply(self, aws: Aws, native_id: str, name: str, value: Any, current: JsonObject) -> None:
        if name != "Tags":
            return super().apply(aws, native_id, name, value, current)
        to_set, to_remove = tag_changes(current.get("Tags"), value)
        if to_set:
            self.ec2(aws).create_tags(
                Resources=[native_id], Tags=[{"Key": k, "Value": v} for k, v in to_set.items()]
            )
        if to_remove:
            self.ec2(aws).delete_tags(Resources=[native_id], Tags=[{"Key": k} for k in to_remove])
        return None

    def list_ids(self, aws: Aws, token: str, size: int) -> tuple[list[str], str]:
        arguments: dict[str, Any] = {"MaxResults": max(5, min(size or 100, 1000))}
        if token:
            arguments["NextToken"] = token
        found = getattr(self.ec2(aws), self.describe)(**arguments)
        return [str(item[self.identifier]) for item in found[self.collection]], found.get("NextToken", "")


class Vpc(_Ec2Handler):
    type_name = "AWS::EC2::VPC"
    description = "A virtual private cloud"
    identifier = "VpcId"
    resource_kind, describe, collection, id_filter = "vpc", "describe_vpcs", "Vpcs", "vpc-id"
    properties = {
        "CidrBlock": js.string("The primary IPv4 CIDR block, e.g. 10.0.0.0/16"),
        "InstanceTenancy": js.enum("default", "dedicated", "host"),
        "EnableDnsSupport": js.boolean(),
        "EnableDnsHostnames": js.boolean(),
        "Tags": js.TAGS,
        "VpcId": js.string(),
        "DefaultSecurityGroup": js.string("The id of the VPC's default security group"),
    }
    required = ("CidrBlock",)
    create_only = ("CidrBlock", "InstanceTenancy")
    read_only = ("VpcId", "DefaultSecurityGroup")
    mutable = ("EnableDnsSupport", "EnableDnsHostnames", "Tags")
    DEFAULTS: ClassVar[dict[str, Any]] = {"Tags": [], "EnableDnsSupport": True, "EnableDnsHostnames": False}

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        arguments: dict[str, Any] = {
            "CidrBlock": desired["CidrBlock"],
            "TagSpecifications": self.tag_specification(desired, key),
        }
        if desired.get("InstanceTenancy"):
            arguments["InstanceTenancy"] = desired["InstanceTenancy"]
        return str(self.ec2(aws).create_vpc(**arguments)["Vpc"]["VpcId"])

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        vpc = self.describe_one(aws, native_id)
        if vpc is None:
            return None
        ec2 = self.ec2(aws)
        dns_support = ec2.describe_vpc_attribute(VpcId=native_id, Attribute="enableDnsSupport")
        dns_hostnames = ec2.describe_vpc_attribute(VpcId=native_id, Attribute="enableDnsHostnames")
        groups = ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [native_id]}, {"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"]
        return drop_empty(
            {
                "VpcId": native_id,
                "CidrBlock": vpc["CidrBlock"],
                "InstanceTenancy": vpc.get("InstanceTenancy", "default"),
                "EnableDnsSupport": dns_support["EnableDnsSupport"]["Value"],
                "EnableDnsHostnames": dns_hostnames["EnableDnsHostnames"]["Value"],
                "DefaultSecurityGroup": groups[0]["GroupId"] if groups else None,
                "Tags": tags_from(vpc.get("Tags", [])),
            }
        )

    def apply(self, aws: Aws, native_id: str, name: str, value: Any, current: JsonObject) -> None:
        if name in ("EnableDnsSupport", "EnableDnsHostnames"):
            self.ec2(aws).modify_vpc_attribute(VpcId=native_id, **{name: {"Value": bool(value)}})
            return None
        return super().apply(aws, native_id, name, value, current)

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        self.ec2(aws).delete_vpc(VpcId=native_id)


class Subnet(_Ec2Handler):
    type_name = "AWS::EC2::Subnet"
    description = "A range of a VPC's addresses in one availability zone"
    identifier = "SubnetId"
    resource_kind, describe, collection, id_filter = "subnet", "describe_subnets", "Subnets", "subnet-id"
    properties = {
        "VpcId": js.string(),
        "CidrBlock": js.string(),
        "AvailabilityZone": js.string("Chosen by AWS when left out"),
        "MapPublicIpOnLaunch": js.boolean(),
        "Tags": js.TAGS,
        "SubnetId": js.string(),
    }
    required = ("VpcId", "CidrBlock")
    create_only = ("VpcId", "CidrBlock", "AvailabilityZone")
    read_only = ("SubnetId",)
    mutable = ("MapPublicIpOnLaunch", "Tags")
    DEFAULTS: ClassVar[dict[str, Any]] = {"Tags": [], "MapPublicIpOnLaunch": False}

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        arguments: dict[str, Any] = {
            "VpcId": desired["VpcId"],
            "CidrBlock": desired["CidrBlock"],
            "TagSpecifications": self.tag_specification(desired, key),
        }
        if desired.get("AvailabilityZone"):
            arguments["AvailabilityZone"] = desired["AvailabilityZone"]
        return str(self.ec2(aws).create_subnet(**arguments)["Subnet"]["SubnetId"])

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        subnet = self.describe_one(aws, native_id)
        if subnet is None:
            return None
        return drop_empty(
            {
                "SubnetId": native_id,
                "VpcId": subnet["VpcId"],
                "CidrBlock": subnet["CidrBlock"],
                "AvailabilityZone": subnet["AvailabilityZone"],
                "MapPublicIpOnLaunch": subnet.get("MapPublicIpOnLaunch", False),
                "Tags": tags_from(subnet.get("Tags", [])),
            }
        )

    def apply(self, aws: Aws, native_id: str, name: str, value: Any, current: JsonObject) -> None:
        if name == "MapPublicIpOnLaunch":
            self.ec2(aws).modify_subnet_attribute(
                SubnetId=native_id, MapPublicIpOnLaunch={"Value": bool(value)}
            )
            return None
        return super().apply(aws, native_id, name, value, current)

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        self.ec2(aws).delete_subnet(SubnetId=native_id)


_RULE = js.obj(
    {
        "IpProtocol": js.string("tcp, udp, icmp, a protocol number, or -1 for all"),
        "FromPort": js.integer(),
        "ToPort": js.integer(),
        "CidrIp": js.string(),
        "CidrIpv6": js.string(),
        "SourceSecurityGroupId": js.string(),
        "DestinationSecurityGroupId": js.string(),
        "Description": js.string(),
    },
    "IpProtocol",
)


class SecurityGroup(_Ec2Handler):
    type_name = "AWS::EC2::SecurityGroup"
    description = "A VPC security group with its ingress and egress rules"
    identifier = "GroupId"
    resource_kind, describe, collection, id_filter = (
        "security-group",
        "describe_security_groups",
        "SecurityGroups",
        "group-id",
    )
    properties = {
        "GroupName": js.string("Generated when left out"),
        "GroupDescription": js.string(),
        "VpcId": js.string(),
        "SecurityGroupIngress": js.array(_RULE),
        "SecurityGroupEgress": js.array(_RULE, "Left out: everything may leave"),
        "Tags": js.TAGS,
        "GroupId": js.string(),
    }
    required = ("GroupDescription", "VpcId")
    create_only = ("GroupName", "GroupDescription", "VpcId")
    read_only = ("GroupId",)
    mutable = ("SecurityGroupIngress", "SecurityGroupEgress", "Tags")
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "Tags": [],
        "SecurityGroupIngress": [],
        "SecurityGroupEgress": [ALL_TRAFFIC],
    }
    name_property = "GroupName"
    name_limit = 255

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        return str(
            self.ec2(aws).create_security_group(
                GroupName=desired["GroupName"],
                Description=desired["GroupDescription"],
                VpcId=desired["VpcId"],
                TagSpecifications=self.tag_specification(desired, key),
            )["GroupId"]
        )

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        group = self.describe_one(aws, native_id)
        if group is None:
            return None
        return drop_empty(
            {
                "GroupId": native_id,
                "GroupName": group["GroupName"],
                "GroupDescription": group["Description"],
                "VpcId": group.get("VpcId"),
                "SecurityGroupIngress": _rules_from(group.get("IpPermissions", []), "SourceSecurityGroupId"),
                "SecurityGroupEgress": _rules_from(
                    group.get("IpPermissionsEgress", []), "DestinationSecurityGroupId"
                ),
                "Tags": tags_from(group.get("Tags", [])),
            }
        ) | ({"SecurityGroupEgress": []} if not group.get("IpPermissionsEgress") else {})

    def apply(self, aws: Aws, native_id: str, name: str, value: Any, current: JsonObject) -> None:
        if name not in ("SecurityGroupIngress", "SecurityGroupEgress"):
            return super().apply(aws, native_id, name, value, current)
        ingress = name == "SecurityGroupIngress"
        peer = "SourceSecurityGroupId" if ingress else "DestinationSecurityGroupId"
        have = [_canonical_rule(r, peer) for r in current.get(name, self.DEFAULTS[name])]
        want = [_canonical_rule(r, peer) for r in value or []]
        ec2 = self.ec2(aws)
        revoke = ec2.revoke_security_group_ingress if ingress else ec2.revoke_security_group_egress
        authorize = ec2.authorize_security_group_ingress if ingress else ec2.authorize_security_group_egress
        gone = [_permission(r, peer) for r in have if r not in want]
        new = [_permission(r, peer) for r in want if r not in have]
        if gone:
            revoke(GroupId=native_id, IpPermissions=gone)
        if new:
            authorize(GroupId=native_id, IpPermissions=new)
        return None

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        self.ec2(aws).delete_security_group(GroupId=native_id)


def _canonical_rule(rule: JsonObject, peer: str) -> JsonObject:
    """A rule as read back: protocol as AWS spells it, ports only where they mean something."""
    protocol = str(rule["IpProtocol"]).lower()
    protocol = {"6": "tcp", "17": "udp", "1": "icmp", "all": "-1"}.get(protocol, protocol)
    canonical: JsonObject = {"IpProtocol": protocol}
    if protocol != "-1":
        canonical["FromPort"] = int(rule.get("FromPort", -1))
        canonical["ToPort"] = int(rule.get("ToPort", -1))
    for name in ("CidrIp", "CidrIpv6", peer, "Description"):
        if rule.get(name):
            canonical[name] = rule[name]
    return canonical


def _rules_from(permissions: list[JsonObject], peer: str) -> list[JsonObject]:
    """AWS's grouped permissions as CloudFormation's one-rule-per-source list, in a stable order."""
    rules: list[JsonObject] = []
    for permission in permissions:
        base: JsonObject = {k: permission[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in permission}
        for source in permission.get("IpRanges", []):
            rules.append({**base, "CidrIp": source["CidrIp"], "Description": source.get("Description")})
        for source in permission.get("Ipv6Ranges", []):
            rules.append({**base, "CidrIpv6": source["CidrIpv6"], "Description": source.get("Description")})
        for source in permission.get("UserIdGroupPairs", []):
            rules.append({**base, peer: source["GroupId"], "Description": source.get("Description")})
    return sorted((_canonical_rule(r, peer) for r in rules), key=lambda r: sorted(r.items(), key=str))


def _permission(rule: JsonObject, peer: str) -> JsonObject:
    permission: JsonObject = {k: rule[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in rule}
    extra = {"Description": rule["Description"]} if rule.get("Description") else {}
    if rule.get("CidrIp"):
        permission["IpRanges"] = [{"CidrIp": rule["CidrIp"], **extra}]
    if rule.get("CidrIpv6"):
        permission["Ipv6Ranges"] = [{"CidrIpv6": rule["CidrIpv6"], **extra}]
    if rule.get(peer):
        permission["UserIdGroupPairs"] = [{"GroupId": rule[peer], **extra}]
    return permission


class InternetGateway(_Ec2Handler):
    type_name = "AWS::EC2::InternetGateway"
    description = "An internet gateway (attach it to a VPC with AWS::EC2::VPCGatewayAttachment)"
    identifier = "InternetGatewayId"
    resource_kind, describe, collection, id_filter = (
        "internet-gateway",
        "describe_internet_gateways",
        "InternetGateways",
        "internet-gateway-id",
    )
    properties = {"Tags": js.TAGS, "InternetGatewayId": js.string()}
    read_only = ("InternetGatewayId",)
    mutable = ("Tags",)

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        created = self.ec2(aws).create_internet_gateway(
            TagSpecifications=self.tag_specification(desired, key)
        )
        return str(created["InternetGateway"]["InternetGatewayId"])

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        gateway = self.describe_one(aws, native_id)
        if gateway is None:
            return None
        return drop_empty({"InternetGatewayId": native_id, "Tags": tags_from(gateway.get("Tags", []))})

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        ec2 = self.ec2(aws)
        gateway = self.describe_one(aws, native_id)
        for attachment in (gateway or {}).get("Attachments", []):
            ec2.detach_internet_gateway(InternetGatewayId=native_id, VpcId=attachment["VpcId"])
        ec2.delete_internet_gateway(InternetGatewayId=native_id)


class RouteTable(_Ec2Handler):
    type_name = "AWS::EC2::RouteTable"
    description = "A VPC route table (its routes and subnet associations are resources of their own)"
    identifier = "RouteTableId"
    resource_kind, describe, collection, id_filter = (
        "route-table",
        "describe_route_tables",
        "RouteTables",
        "route-table-id",
    )
    properties = {"VpcId": js.string(), "Tags": js.TAGS, "RouteTableId": js.string()}
    required = ("VpcId",)
    create_only = ("VpcId",)
    read_only = ("RouteTableId",)
    mutable = ("Tags",)

    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        created = self.ec2(aws).create_route_table(
            VpcId=desired["VpcId"], TagSpecifications=self.tag_specification(desired, key)
        )
        return str(created["RouteTable"]["RouteTableId"])

    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        table = self.describe_one(aws, native_id)
        if table is None:
            return None
        return drop_empty(
            {"RouteTableId": native_id, "VpcId": table["VpcId"], "Tags": tags_from(table.get("Tags", []))}
        )

    def delete_resource(self, aws: Aws, native_id: str) -> None:
        self.ec2(aws).delete_route_table(RouteTableId=native_id)


HANDLERS: tuple[type[TypeHandler], ...] = (Vpc, Subnet, SecurityGroup, InternetGateway, RouteTable)
"""The types this module serves; the plugin makes one handler of each."""
