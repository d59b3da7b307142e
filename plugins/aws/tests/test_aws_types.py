"""Every type through formae.plugin.testing against moto's server: create (idempotent), read, update
in place, drift made with boto3 seen by read and undone by update, list, replace refused in place,
delete (twice: NotFound is success)."""

from __future__ import annotations

import pytest
from aws_cases import CASES, Case, Props
from aws_testing import MotoServer
from formae_aws import AWSPlugin

from formae.plugin import ErrorCode, OperationStatus, ProgressResult, ResourceSchema
from formae.plugin.testing import PluginHarness

pytestmark = pytest.mark.timeout(60)


async def _done(cloud: PluginHarness, started: ProgressResult) -> ProgressResult:
    done = await cloud.run_to_completion(started)
    assert done.status is OperationStatus.SUCCESS, done
    return done


def test_every_type_has_a_case() -> None:
    assert {case.type for case in CASES} == set(AWSPlugin().handlers)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_lifecycle(case: Case, cloud: PluginHarness, aws: MotoServer) -> None:
    desired: Props = case.create(case.setup(aws))
    created = await _done(cloud, await cloud.create(case.type, desired, label="it", idempotency_key="key-1"))
    native_id = created.native_id
    assert created.properties is not None
    schema = cloud.plugin.handlers[case.type].schema()  # type: ignore[attr-defined]
    assert created.properties[schema.identifier] == native_id
    assert (await cloud.read(case.type, native_id)).properties == created.properties

    again = await _done(cloud, await cloud.create(case.type, desired, label="it", idempotency_key="key-1"))
    assert again.native_id == native_id, "a create retried with the same key finds the first"

    wanted = {**desired, **case.update}
    updated = await _done(cloud, await cloud.update(case.type, native_id, created.properties, wanted))
    assert updated.native_id == native_id
    for name, value in case.update.items():
        if name not in case_write_only(schema):
            assert _same(updated.properties[name], value), (name, updated.properties)

    case.drift(aws, native_id, updated.properties)
    drifted = await cloud.read(case.type, native_id)
    assert drifted.status is OperationStatus.SUCCESS
    assert case.drifted(drifted.properties), drifted.properties
    assert drifted.properties != updated.properties

    restored = await _done(cloud, await cloud.update(case.type, native_id, updated.properties, wanted))
    assert not case.drifted(restored.properties), "an update brings managed properties back"

    for result in (created, updated, drifted, restored):
        assert not set(case_write_only(schema)) & set(result.properties or {}), "write-only never read back"

    listed = await cloud.list(case.type)
    assert native_id in {r.native_id for r in listed.resources}

    if case.replace:
        refused = await cloud.update(case.type, native_id, restored.properties, {**wanted, **case.replace})
        assert refused.status is OperationStatus.FAILURE
        assert refused.error_code is ErrorCode.INVALID_REQUEST
        for name in case.replace:
            assert name in schema.create_only

    await _done(cloud, await cloud.delete(case.type, native_id))
    gone = await cloud.read(case.type, native_id)
    assert gone.status is OperationStatus.FAILURE
    assert gone.error_code is ErrorCode.NOT_FOUND
    again_deleted = await cloud.delete(case.type, native_id)
    assert again_deleted.status is OperationStatus.SUCCESS, again_deleted


def case_write_only(schema: ResourceSchema) -> list[str]:
    return [pointer.rsplit("/", 1)[-1] for pointer in schema.json_schema["writeOnlyProperties"]]


async def test_a_secret_value_goes_to_aws_but_never_comes_back(cloud: PluginHarness, aws: MotoServer) -> None:
    secret = "Secret"
    desired = {"Name": "app/token", "SecretString": "first"}
    created = await _done(
        cloud, await cloud.create(f"AWS::SecretsManager::{secret}", desired, idempotency_key="s")
    )
    schema = cloud.plugin.handlers["AWS::SecretsManager::Secret"].schema()  # type: ignore[attr-defined]
    assert schema.json_schema["properties"]["SecretString"]["writeOnly"] is True
    assert schema.json_schema["properties"]["SecretString"]["x-formae-sensitive"] is True
    secrets = aws.client("secretsmanager")
    assert secrets.get_secret_value(SecretId=created.native_id)["SecretString"] == "first"
    await _done(
        cloud,
        await cloud.update(
            "AWS::SecretsManager::Secret", created.native_id, desired, {**desired, "SecretString": "second"}
        ),
    )
    assert secrets.get_secret_value(SecretId=created.native_id)["SecretString"] == "second"
    opaque = {"$value": "third", "$visibility": "Opaque"}  # formae's secret value, as in formas
    await _done(
        cloud,
        await cloud.update(
            "AWS::SecretsManager::Secret",
            created.native_id,
            {**desired, "SecretString": "second"},
            {**desired, "SecretString": opaque},
        ),
    )
    assert secrets.get_secret_value(SecretId=created.native_id)["SecretString"] == "third"
    listed = await cloud.list("AWS::SecretsManager::Secret")
    assert "first" not in repr(listed)
    assert "second" not in repr(listed)
    assert "first" not in repr(created)


def _same(read: object, wanted: object) -> bool:
    if isinstance(read, list) and isinstance(wanted, list):
        return sorted(map(repr, read)) == sorted(map(repr, wanted))
    return read == wanted


NAMED = [case for case in CASES if AWSPlugin().handlers[case.type].name_property]


@pytest.mark.parametrize("case", NAMED, ids=[case.id for case in NAMED])
async def test_a_name_taken_by_another_create_is_already_exists(
    case: Case, cloud: PluginHarness, aws: MotoServer
) -> None:
    desired = case.create(case.setup(aws))
    name = cloud.plugin.handlers[case.type].name_property  # type: ignore[attr-defined]
    desired = {**desired, name: desired.get(name) or "taken-name"}
    first = await _done(cloud, await cloud.create(case.type, desired, label="one", idempotency_key="first"))
    other = await cloud.create(case.type, desired, label="two", idempotency_key="second")
    assert other.status is OperationStatus.FAILURE
    assert other.error_code is ErrorCode.ALREADY_EXISTS, other
    assert (await cloud.read(case.type, first.native_id)).properties == first.properties


async def test_a_function_whose_role_is_not_visible_yet_is_retried(cloud: PluginHarness) -> None:
    desired = {
        "FunctionName": "early",
        "Runtime": "python3.12",
        "Handler": "index.handler",
        "Role": "arn:aws:iam::123456789012:role/not-there-yet",
        "Code": {"ZipFile": "def handler(event, context): pass\n"},
    }
    result = await cloud.create("AWS::Lambda::Function", desired, idempotency_key="k")
    assert result.error_code is ErrorCode.NOT_STABILIZED, result
    assert result.error_code.recoverable
