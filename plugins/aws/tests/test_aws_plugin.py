"""The plugin's own machinery against moto's server: errors, throttling, targets and credentials,
asynchronous operations, paging, and what it must never log."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aws_testing import MotoServer, ThrottlingProxy
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from formae_aws import AWSPlugin
from formae_aws.errors import THROTTLING_BACKOFF, map_error
from formae_aws.handler import Aws
from formae_aws.services.logs import LogGroup
from formae_aws.session import Clients, TargetSettings

from formae.plugin import (
    ErrorCode,
    ListRequest,
    ListResult,
    Operation,
    OperationStatus,
    ProgressResult,
    TargetInfo,
)
from formae.plugin.testing import PluginHarness

pytestmark = pytest.mark.timeout(60)


def _client_error(code: str, status: int = 400, headers: dict[str, str] | None = None) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
    }
    return ClientError(response, "Op")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (_client_error("InvalidVpcID.NotFound"), ErrorCode.NOT_FOUND),
        (_client_error("NoSuchEntity", 404), ErrorCode.NOT_FOUND),
        (_client_error("EntityAlreadyExists", 409), ErrorCode.ALREADY_EXISTS),
        (_client_error("RequestLimitExceeded", 503), ErrorCode.THROTTLING),
        (_client_error("DependencyViolation"), ErrorCode.RESOURCE_CONFLICT),
        (_client_error("UnauthorizedOperation", 403), ErrorCode.ACCESS_DENIED),
        (_client_error("ExpiredToken", 403), ErrorCode.INVALID_CREDENTIALS),
        (_client_error("VpcLimitExceeded"), ErrorCode.SERVICE_LIMIT_EXCEEDED),
        (_client_error("SomethingNew", 503), ErrorCode.SERVICE_INTERNAL_ERROR),
        (_client_error("SomethingNew", 418), ErrorCode.GENERAL_SERVICE_EXCEPTION),
        (NoCredentialsError(), ErrorCode.INVALID_CREDENTIALS),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), ErrorCode.NETWORK_FAILURE),
        (KeyError("x"), ErrorCode.PLUGIN_ERROR),
    ],
)
def test_aws_errors_map_to_formae_codes(error: Exception, code: ErrorCode) -> None:
    assert map_error(error).code is code


def test_throttling_carries_the_services_retry_after() -> None:
    assert map_error(_client_error("Throttling", 400, {"retry-after": "3"})).retry_after == 3.0
    assert map_error(_client_error("Throttling")).retry_after == THROTTLING_BACKOFF
    assert map_error(_client_error("NoSuchEntity")).retry_after == 0.0


async def test_a_throttled_create_fails_with_retry_after_and_its_retry_makes_one(aws: MotoServer) -> None:
    with ThrottlingProxy(aws, {"CreateLogGroup": 1}, retry_after=0.5) as proxy:
        target = TargetInfo("proxy", "AWS", {"region": "us-east-1", "endpoint_url": proxy.url})
        async with PluginHarness(AWSPlugin(), target) as cloud:
            first = await cloud.create("AWS::Logs::LogGroup", {"LogGroupName": "/t"}, idempotency_key="k")
            assert first.status is OperationStatus.FAILURE
            assert first.error_code is ErrorCode.THROTTLING
            assert first.retry_after == 0.5
            second = await cloud.create("AWS::Logs::LogGroup", {"LogGroupName": "/t"}, idempotency_key="k")
            assert second.status is OperationStatus.SUCCESS, second
    assert [g["logGroupName"] for g in aws.client("logs").describe_log_groups()["logGroups"]] == ["/t"]


async def test_an_unreachable_endpoint_is_a_network_failure(aws: MotoServer) -> None:
    target = TargetInfo("nowhere", "AWS", {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:1"})
    async with PluginHarness(AWSPlugin(), target) as cloud:
        result = await cloud.read("AWS::SQS::Queue", "http://127.0.0.1:1/123/q")
    assert result.error_code is ErrorCode.NETWORK_FAILURE


async def test_a_bad_target_config_is_an_invalid_request(aws: MotoServer) -> None:
    async with PluginHarness(AWSPlugin(), TargetInfo("bad", "AWS", {"region": 7})) as cloud:
        result = await cloud.create("AWS::SNS::Topic", {"TopicName": "t"})
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "region" in result.message


async def test_each_target_has_its_region(aws: MotoServer) -> None:
    target = TargetInfo("eu", "AWS", {"region": "eu-west-1", "endpoint_url": aws.url})
    async with PluginHarness(AWSPlugin(), target) as cloud:
        created = await cloud.create("AWS::SNS::Topic", {"TopicName": "here"}, idempotency_key="k")
    assert ":eu-west-1:" in created.native_id
    assert aws.client("sns").list_topics()["Topics"] == []  # the test's client is in us-east-1


def test_role_arn_assumes_the_role(aws: MotoServer) -> None:
    settings = TargetSettings.from_config(
        {
            "region": "us-east-1",
            "endpoint_url": aws.url,
            "role_arn": "arn:aws:iam::123456789012:role/deployer",
        }
    )
    identity = Clients().client(settings, "sts").get_caller_identity()
    assert ":assumed-role/deployer/formae" in identity["Arn"]


def test_profile_chooses_credentials_and_region(
    aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.write_text("[profile other]\nregion = eu-central-1\n")
    credentials = tmp_path / "credentials"
    credentials.write_text("[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = other\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # it would win over the profile's region
    settings = TargetSettings.from_config({"endpoint_url": aws.url, "profile": "other"})
    client = Clients().client(settings, "sqs")
    assert client.meta.region_name == "eu-central-1"
    assert client._request_signer._credentials.access_key == "AKIAOTHER"


class _SlowLogGroup(LogGroup):
    """A log group AWS takes two polls to settle, as DynamoDB tables and Lambda functions do."""

    polls: ClassVar[dict[str, int]] = {}

    def settled(self, aws: Aws, native_id: str, operation: Operation) -> bool:
        seen = self.polls.get(native_id, 0)
        self.polls[native_id] = seen + 1
        return seen >= 2


async def test_asynchronous_operations_answer_in_progress_and_any_plugin_finishes_polling(
    target: TargetInfo,
) -> None:
    async with PluginHarness(AWSPlugin(handlers=[_SlowLogGroup()]), target) as first:
        started = await first.create("AWS::Logs::LogGroup", {"LogGroupName": "/slow"}, idempotency_key="k")
    assert started.status is OperationStatus.IN_PROGRESS
    assert started.request_id
    async with PluginHarness(AWSPlugin(handlers=[_SlowLogGroup()]), target) as restarted:
        done = await restarted.run_to_completion(started)
    assert done.status is OperationStatus.SUCCESS
    assert done.properties is not None
    assert done.properties["LogGroupName"] == "/slow"


async def test_list_pages_through_everything(cloud: PluginHarness, aws: MotoServer) -> None:
    for index in range(7):
        aws.client("logs").create_log_group(logGroupName=f"/paged/{index}")
    seen: list[str] = []
    token = ""
    for _ in range(10):
        page = await cloud.list("AWS::Logs::LogGroup", page_token=token, page_size=3)
        assert len(page.resources) <= 3
        seen += [r.native_id for r in page.resources]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == [f"/paged/{index}" for index in range(7)]


async def test_unknown_types_are_refused(cloud: PluginHarness) -> None:
    result = await cloud.create("AWS::EC2::Instance", {})
    assert result.error_code is ErrorCode.UNSUPPORTED_TYPE


async def test_secrets_are_never_logged(cloud: PluginHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "correct-horse-battery-staple"
    created = await cloud.create("AWS::SecretsManager::Secret", {"Name": "s", "SecretString": secret})
    await cloud.update(
        "AWS::SecretsManager::Secret", created.native_id, {}, {"Name": "s", "SecretString": f"{secret}2"}
    )
    refused = await cloud.create("AWS::SecretsManager::Secret", {"Name": "s", "SecretString": secret})
    assert refused.error_code is ErrorCode.ALREADY_EXISTS
    assert secret not in caplog.text
    assert secret not in repr(created)


async def test_a_throttled_list_answers_throttling_for_discovery_to_retry(aws: MotoServer) -> None:
    with ThrottlingProxy(aws, {"DescribeLogGroups": 1}, retry_after=0.4) as proxy:
        target = TargetInfo("proxy", "AWS", {"region": "us-east-1", "endpoint_url": proxy.url})
        async with PluginHarness(AWSPlugin(), target) as cloud:
            refused = await cloud.call(ListRequest("AWS::Logs::LogGroup", target))
            listed = await cloud.call(ListRequest("AWS::Logs::LogGroup", target))
    assert isinstance(refused, ProgressResult)
    assert (refused.error_code, refused.retry_after) == (ErrorCode.THROTTLING, 0.4)
    assert isinstance(listed, ListResult)
