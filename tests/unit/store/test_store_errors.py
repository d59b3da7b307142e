from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from formae.store import StackRecord, StoreError, mask_url, open_store, sqlite_url
from formae.store.sqlite import SqliteStore
from tests.unit.store.store_factories import a_version


async def test_an_unknown_scheme_says_what_is_expected() -> None:
    with pytest.raises(StoreError, match=r"mysql://root:\*\*\*@db/formae.*sqlite:///.*postgresql://"):
        await open_store("mysql://root:hunter2@db/formae")


async def test_a_relative_sqlite_path_is_refused() -> None:
    with pytest.raises(StoreError, match="absolute"):
        await open_store("sqlite://data/formae.db")


async def test_unreachable_postgres_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        await open_store("postgresql://formae:s3cret@127.0.0.1:1/formae")

    message = str(caught.value)
    assert "postgresql://formae:***@127.0.0.1:1/formae" in message
    assert "s3cret" not in message


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u:p:q@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
        ("postgresql://h/db?user=u&password=p", "postgresql://h/db?user=u&password=%2A%2A%2A"),
        ("sqlite:///var/lib/formae.db", "sqlite:///var/lib/formae.db"),
    ],
)
def test_mask_url_hides_passwords(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder whose files cannot be written, even by root (which ignores chmod)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    yield folder
    if os.geteuid() == 0:
        for path in folder.iterdir():
            subprocess.run(["chattr", "-i", str(path)], check=False)


def _make_read_only(path: Path) -> None:
    if os.geteuid() != 0:
        path.chmod(0o444)
    elif shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a file read-only")
    else:
        subprocess.run(["chattr", "+i", str(path)], check=True)


async def test_a_read_only_sqlite_file_is_a_store_error(read_only: Path) -> None:
    path = read_only / "formae.db"
    async with await open_store(sqlite_url(path)):
        pass
    _make_read_only(path)

    with pytest.raises(StoreError, match=f"{path}.*readonly"):
        await open_store(sqlite_url(path))


async def test_a_full_sqlite_database_is_a_store_error(tmp_path: Path) -> None:
    store = await open_store(sqlite_url(tmp_path / "formae.db"))
    try:
        assert isinstance(store, SqliteStore)
        await store._writer.execute("PRAGMA max_page_count = 1")  # simulates a full disk
        with pytest.raises(StoreError, match="full"):
            await store.put_resource_version(a_version(properties={"blob": "x" * 100_000}))
    finally:
        await store.close()


async def test_a_closed_store_refuses_reads_and_writes(store_url: str) -> None:
    store = await open_store(store_url)
    await store.close()
    await store.close()

    with pytest.raises(StoreError, match="closed"):
        await store.list_stacks()
    with pytest.raises(StoreError, match="closed"):
        await store.upsert_stack(StackRecord("app"))
