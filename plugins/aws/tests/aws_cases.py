"""One case per resource type: what to create, what to change in place, what to change that forces a
replacement, and an out-of-band change made with boto3 that a read must see."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_testing import MotoServer

Props = dict[str, Any]

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
READ_LOGS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}
CASE_POLICY = "arn:aws:iam::123456789012:policy/case-read"
READ_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}


@dataclass
class Case:
    type: str
    create: Callable[[Props], Props]
    """The properties to create with, given what ``setup`` made."""
    update: Props
    """Merged into the created properties: changes AWS makes in place."""
    drift: Callable[[MotoServer, str, Props], None]
    """Changes the resource behind formae's back (native id, created properties)."""
    drifted: Callable[[Props], bool]
    """True when a read's properties show that change."""
    replace: Props = field(default_factory=dict)
    """A change to a create-only property (the agent replaces the resource)."""
    setup: Callable[[MotoServer], Props] = lambda _: {}

    @property
    def id(self) -> str:
        return self.type.split("::", 1)[1].replace("::", "-")


def _vpc(aws: MotoServer) -> Props:
    return {"vpc": aws.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]}


def _role(aws: MotoServer) -> Props:
    role = aws.client("iam").create_role(RoleName="case-role", AssumeRolePolicyDocument=json.dumps(TRUST))[
        "Role"
    ]
    return {"role": role["RoleName"], "role_arn": role["Arn"]}


def _role_and_policy(aws: MotoServer) -> Props:
    policy = aws.client("iam").create_policy(PolicyName="case-read", PolicyDocument=json.dumps(READ_S3))
    return {"policy_arn": policy["Policy"]["Arn"]}


def _topic_and_queue(aws: MotoServer) -> Props:
    topic = aws.client("sns").create_topic(Name="case-topic")["TopicArn"]
    url = aws.client("sqs").create_queue(QueueName="case-queue")["QueueUrl"]
    arn = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return {"topic": topic, "queue_arn": arn}


def _tags(props: Props) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in props.get("Tags", [])}


CASES = [
    Case(
        "AWS::EC2::VPC",
        lambda _: {
            "CidrBlock": "10.0.0.0/16",
            "EnableDnsHostnames": False,
            "Tags": [{"Key": "env", "Value": "dev"}],
        },
        {"EnableDnsHostnames": True, "Tags": [{"Key": "env", "Value": "prod"}]},
        lambda aws, id, _: aws.client("ec2").modify_vpc_attribute(
            VpcId=id, EnableDnsHostnames={"Value": False}
        ),
        lambda props: props["EnableDnsHostnames"] is False,
        replace={"CidrBlock": "10.1.0.0/16"},
    ),
    Case(
        "AWS::EC2::Subnet",
        lambda deps: {"VpcId": deps["vpc"], "CidrBlock": "10.0.1.0/24"},
        {"MapPublicIpOnLaunch": True},
        lambda aws, id, _: aws.client("ec2").create_tags(Resources=[id], Tags=[{"Key": "oob", "Value": "1"}]),
        lambda props: _tags(props).get("oob") == "1",
        replace={"CidrBlock": "10.0.2.0/24"},
        setup=_vpc,
    ),
    Case(
        "AWS::EC2::SecurityGroup",
        lambda deps: {
            "GroupDescription": "web",
            "VpcId": deps["vpc"],
            "SecurityGroupIngress": [
                {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}
            ],
        },
        {
            "SecurityGroupIngress": [
                {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"},
                {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "10.0.0.0/8"},
            ]
        },
        lambda aws, id, _: aws.client("ec2").authorize_security_group_ingress(
            GroupId=id,
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
            ],
        ),
        lambda props: any(rule.get("FromPort") == 22 for rule in props["SecurityGroupIngress"]),
        replace={"GroupDescription": "web servers"},
        setup=_vpc,
    ),
    Case(
        "AWS::EC2::InternetGateway",
        lambda _: {"Tags": [{"Key": "Name", "Value": "igw"}]},
        {"Tags": [{"Key": "Name", "Value": "gateway"}, {"Key": "team", "Value": "net"}]},
        lambda aws, id, _: aws.client("ec2").delete_tags(Resources=[id], Tags=[{"Key": "team"}]),
        lambda props: "team" not in _tags(props),
    ),
    Case(
        "AWS::EC2::RouteTable",
        lambda deps: {"VpcId": deps["vpc"]},
        {"Tags": [{"Key": "Name", "Value": "private"}]},
        lambda aws, id, _: aws.client("ec2").create_tags(
            Resources=[id], Tags=[{"Key": "Name", "Value": "public"}]
        ),
        lambda props: _tags(props)["Name"] == "public",
        setup=_vpc,
    ),
    Case(
        "AWS::S3::Bucket",
        lambda _: {
            "BucketName": "formae-case-bucket",
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "Tags": [{"Key": "env", "Value": "dev"}],
        },
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "LifecycleConfiguration": {
                "Rules": [{"Id": "expire", "Status": "Enabled", "Prefix": "tmp/", "ExpirationInDays": 7}]
            },
        },
        lambda aws, id, _: aws.client("s3").put_bucket_versioning(
            Bucket=id, VersioningConfiguration={"Status": "Suspended"}
        ),
        lambda props: props["VersioningConfiguration"] == {"Status": "Suspended"},
        replace={"BucketName": "formae-case-bucket-2"},
    ),
    Case(
        "AWS::SQS::Queue",
        lambda _: {
            "QueueName": "case-queue",
            "VisibilityTimeout": 30,
            "Tags": [{"Key": "env", "Value": "dev"}],
        },
        {"VisibilityTimeout": 60, "DelaySeconds": 5},
        lambda aws, id, _: aws.client("sqs").set_queue_attributes(
            QueueUrl=id, Attributes={"VisibilityTimeout": "10"}
        ),
        lambda props: props["VisibilityTimeout"] == 10,
        replace={"QueueName": "case-queue-2"},
    ),
    Case(
        "AWS::SNS::Topic",
        lambda _: {"TopicName": "case-topic", "DisplayName": "Case"},
        {"DisplayName": "Case two", "Tags": [{"Key": "env", "Value": "dev"}]},
        lambda aws, id, _: aws.client("sns").set_topic_attributes(
            TopicArn=id, AttributeName="DisplayName", AttributeValue="x"
        ),
        lambda props: props["DisplayName"] == "x",
        replace={"TopicName": "case-topic-2"},
    ),
    Case(
        "AWS::SNS::Subscription",
        lambda deps: {"TopicArn": deps["topic"], "Protocol": "sqs", "Endpoint": deps["queue_arn"]},
        {"RawMessageDelivery": True},
        lambda aws, id, _: aws.client("sns").set_subscription_attributes(
            SubscriptionArn=id, AttributeName="RawMessageDelivery", AttributeValue="false"
        ),
        lambda props: props["RawMessageDelivery"] is False,
        setup=_topic_and_queue,
    ),
    Case(
        "AWS::DynamoDB::Table",
        lambda _: {
            "TableName": "case-table",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
        {
            "BillingMode": "PROVISIONED",
            "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        },
        lambda aws, id, _: aws.client("dynamodb").update_table(
            TableName=id, ProvisionedThroughput={"ReadCapacityUnits": 9, "WriteCapacityUnits": 9}
        ),
        lambda props: props["ProvisionedThroughput"]["ReadCapacityUnits"] == 9,
        replace={
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        },
    ),
    Case(
        "AWS::IAM::Role",
        lambda _: {"RoleName": "case-app", "AssumeRolePolicyDocument": TRUST, "Description": "app"},
        {"Description": "the app", "MaxSessionDuration": 7200, "ManagedPolicyArns": [CASE_POLICY]},
        lambda aws, id, _: aws.client("iam").update_role(RoleName=id, Description="changed"),
        lambda props: props["Description"] == "changed",
        replace={"Path": "/apps/"},
        setup=_role_and_policy,
    ),
    Case(
        "AWS::IAM::Policy",
        lambda deps: {"PolicyName": "logs", "PolicyDocument": READ_LOGS, "Roles": [deps["role"]]},
        {"PolicyDocument": READ_S3},
        lambda aws, id, props: aws.client("iam").put_role_policy(
            RoleName=props["Roles"][0], PolicyName="logs", PolicyDocument=json.dumps(READ_LOGS)
        ),
        lambda props: props["PolicyDocument"] == READ_LOGS,
        replace={"PolicyName": "logs2"},
        setup=_role,
    ),
    Case(
        "AWS::Logs::LogGroup",
        lambda _: {"LogGroupName": "/case/app", "RetentionInDays": 7},
        {"RetentionInDays": 14, "Tags": [{"Key": "env", "Value": "dev"}]},
        lambda aws, id, _: aws.client("logs").put_retention_policy(logGroupName=id, retentionInDays=30),
        lambda props: props["RetentionInDays"] == 30,
        replace={"LogGroupName": "/case/app2"},
    ),
    Case(
        "AWS::SecretsManager::Secret",
        lambda _: {"Name": "case/db", "SecretString": "hunter2", "Description": "db password"},
        {"Description": "the db password", "SecretString": "hunter3"},
        lambda aws, id, _: aws.client("secretsmanager").update_secret(SecretId=id, Description="changed"),
        lambda props: props["Description"] == "changed",
        replace={"Name": "case/db2"},
    ),
    Case(
        "AWS::Lambda::Function",
        lambda deps: {
            "FunctionName": "case-fn",
            "Runtime": "python3.12",
            "Handler": "index.handler",
            "Role": deps["role_arn"],
            "Code": {"ZipFile": "def handler(event, context):\n    return 1\n"},
        },
        {"Timeout": 10, "Code": {"ZipFile": "def handler(event, context):\n    return 2\n"}},
        lambda aws, id, _: aws.client("lambda").update_function_configuration(FunctionName=id, Timeout=20),
        lambda props: props["Timeout"] == 20,
        replace={"FunctionName": "case-fn-2"},
        setup=_role,
    ),
]
