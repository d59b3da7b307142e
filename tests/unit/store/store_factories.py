"""Small builders so that tests state only the fields they are about."""

from __future__ import annotations

from typing import Any

from formae.model import Mode, Operation
from formae.store import Command, CommandKind, NewResourceVersion, ResourceUpdateRecord, UpdateState, utc_now

BUCKET = "FakeAWS::S3::Bucket"


def a_command(**forma: Any) -> Command:
    return Command.new(CommandKind.APPLY, Mode.RECONCILE, forma or {"resources": []})


def an_update(command: Command, update_id: str = "u1", **changes: Any) -> ResourceUpdateRecord:
    fields: dict[str, Any] = {
        "command_id": command.id,
        "update_id": update_id,
        "operation": Operation.CREATE,
        "stack": "app",
        "type": BUCKET,
        "label": f"bucket-{update_id}",
        "target": "aws-dev",
        "state": UpdateState.PENDING,
        "updated_at": utc_now(),
    }
    fields.update(changes)
    return ResourceUpdateRecord(**fields)


def a_version(label: str = "logs", **changes: Any) -> NewResourceVersion:
    fields: dict[str, Any] = {
        "stack": "app",
        "type": BUCKET,
        "label": label,
        "target": "aws-dev",
        "native_id": f"arn:aws:s3:::{label}",
        "properties": {"BucketName": label, "Versioning": True},
        "desired_properties": {"BucketName": label},
        "command_id": None,
    }
    fields.update(changes)
    return NewResourceVersion(**fields)
