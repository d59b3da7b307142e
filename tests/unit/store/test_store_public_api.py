"""Pins the store's public names: removing or renaming one is a decision, not an accident."""

from __future__ import annotations

import formae.store


def test_public_names() -> None:
    assert sorted(formae.store.__all__) == [
        "AgentRecord",
        "ApiTokenRecord",
        "ClaimPart",
        "ClaimPartKind",
        "Command",
        "CommandKind",
        "CommandState",
        "Datastore",
        "Drift",
        "Fence",
        "GroupCommitter",
        "INCOMPLETE_COMMAND_STATES",
        "JoinRefused",
        "JoinTokenRecord",
        "NewResourceVersion",
        "Observation",
        "PluginProgress",
        "PostgresStore",
        "ResourceChange",
        "ResourceDeletion",
        "ResourceRecord",
        "ResourceUpdateRecord",
        "SqliteStore",
        "StackRecord",
        "StoreError",
        "StoreUnavailable",
        "StoredClaim",
        "SyncRunRecord",
        "TargetRecord",
        "UNMANAGED_STACK",
        "UpdateState",
        "VersionOrigin",
        "WriteStats",
        "mask_url",
        "new_id",
        "open_store",
        "sqlite_url",
        "utc_now",
    ]
    assert all(hasattr(formae.store, name) for name in formae.store.__all__)
