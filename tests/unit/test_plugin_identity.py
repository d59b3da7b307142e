"""The state directory of a joined plugin: what survives a restart, a crash, and a bad directory."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from formae.plugin import identity as identity_module
from formae.plugin.identity import GrantStore, obtain_identity
from formae.plugin.settings import PluginSettings, SettingsError
from formae.wire.join import JoinGrant, JoinToken

pytestmark = pytest.mark.timeout(10)

GRANT = JoinGrant(b"CERT", b"CA", "granted-cookie", ("FakeAWS",))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_saved_grant_loads_for_its_token_only(tmp_path: Path) -> None:
    store = GrantStore(tmp_path / "state")
    store.prepare()
    store.save("token-1", b"KEY", GRANT)

    loaded = store.load("token-1")
    assert loaded is not None
    assert loaded.cookie == "granted-cookie"
    assert loaded.credentials is not None
    assert (loaded.credentials.certificate, loaded.credentials.key) == (b"CERT", b"KEY")
    assert store.load("token-2") is None


def test_private_files_are_0600_even_over_older_looser_files(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    for name in ("plugin.key", "cookie"):
        (directory / name).write_bytes(b"old")
        (directory / name).chmod(0o644)

    GrantStore(directory).save("token-1", b"KEY", GRANT)

    assert (mode(directory / "plugin.key"), mode(directory / "cookie")) == (0o600, 0o600)
    assert (directory / "plugin.key").read_bytes() == b"KEY"
    assert sorted(p.name for p in directory.iterdir()) == [
        "ca.crt",
        "cookie",
        "grant.json",
        "plugin.crt",
        "plugin.key",
    ]


def test_a_save_cut_short_never_passes_for_the_older_grant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new key beside the old token's grant.json would be loaded, and fail TLS forever."""
    store = GrantStore(tmp_path / "state")
    store.prepare()
    store.save("old-token", b"OLD-KEY", GRANT)
    real_write = identity_module._write

    def crash_on_certificate(path: Path, data: bytes, *, private: bool = False) -> None:
        if path.name == "plugin.crt":
            raise OSError("disk full")
        real_write(path, data, private=private)

    monkeypatch.setattr(identity_module, "_write", crash_on_certificate)
    with pytest.raises(OSError, match="disk full"):
        store.save("new-token", b"NEW-KEY", GRANT)

    assert store.load("old-token") is None
    assert store.load("new-token") is None


@pytest.mark.parametrize("content", ["[1, 2]", '"token-1"', "{not json", ""])
def test_a_damaged_grant_file_means_no_grant(tmp_path: Path, content: str) -> None:
    store = GrantStore(tmp_path)
    store.save("token-1", b"KEY", GRANT)
    (tmp_path / "grant.json").write_text(content)

    assert store.load("token-1") is None


async def test_an_unusable_state_directory_is_named_before_the_token_is_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    token = JoinToken("agent:1", "0123456789abcdef", "secret", b"CA", b"CERT", b"KEY")
    settings = PluginSettings(
        "agent:1", "p@host", "", join_token=token, state_dir=tmp_path / "a-file" / "state"
    )

    async def must_not_join(*_: Any) -> JoinGrant:
        raise AssertionError("joined although the grant could not be kept")

    monkeypatch.setattr(identity_module, "join", must_not_join)
    with pytest.raises(SettingsError, match=r"FORMAE_PLUGIN_STATE_DIR=.*a-file/state.* cannot hold"):
        await obtain_identity(settings)


async def test_a_join_keeps_its_grant_for_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = JoinToken("agent:1", "0123456789abcdef", "secret", b"CA", b"CERT", b"KEY")
    settings = PluginSettings("agent:1", "p@host", "", join_token=token, state_dir=tmp_path / "s")
    joins: list[str] = []

    async def join(address: str, token: JoinToken, csr: bytes, node: str) -> JoinGrant:
        joins.append(node)
        return GRANT

    monkeypatch.setattr(identity_module, "join", join)
    first = await obtain_identity(settings)
    second = await obtain_identity(settings)

    assert joins == ["p@host"]
    assert first.cookie == second.cookie == "granted-cookie"
    assert json.loads((tmp_path / "s" / "grant.json").read_text())["token_id"] == "0123456789abcdef"
