"""Pins the store's public names: removing or renaming one is a decision, not an accident."""

from __future__ import annotations

import formae.store


def test_public_names() -> None:
    assert sorted(formae.store.__all__) == [
        "ApiTokenRecord",
        "Command",
        "CommandKind",
        "CommandState",
        "Datastore",
        "Drift",
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
