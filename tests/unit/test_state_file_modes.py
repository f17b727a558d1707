"""State files that hold secrets or password hashes are readable by their owner only, from creation."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.auth.model import User
from services.auth.repository import SqliteUserRepository
from services.common.auth_tokens import ensure_key_file, write_private_file
from services.incidents.store import IncidentStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common 022: files a process creates are world-readable unless it asks otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


async def test_the_auth_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    database = tmp_path / "auth" / "auth.sqlite3"
    users = await SqliteUserRepository.open(database)
    try:
        await users.put(User("demo", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA"))
        side_files = [database.with_name(database.name + suffix) for suffix in ("-wal", "-shm")]
        assert all(p.exists() for p in side_files)  # WAL mode, connection open
        assert {p.name: mode(p) for p in (database, *side_files)} == {
            "auth.sqlite3": 0o600,
            "auth.sqlite3-wal": 0o600,
            "auth.sqlite3-shm": 0o600,
        }
    finally:
        await users.close()


async def test_a_database_left_readable_by_an_earlier_run_is_tightened(tmp_path: Path) -> None:
    database = tmp_path / "auth.sqlite3"
    users = await SqliteUserRepository.open(database)
    await users.put(User("demo", "hash"))
    await users.close()
    database.chmod(0o644)
    users = await SqliteUserRepository.open(database)
    try:
        assert mode(database) == 0o600
        assert await users.get("demo") == User("demo", "hash")
    finally:
        await users.close()


def test_signing_keys_and_passwords_are_written_private(tmp_path: Path) -> None:
    key_file = tmp_path / "jwt-keys.json"
    assert ensure_key_file(key_file)
    password_file = tmp_path / "auth" / "demo-password"
    write_private_file(password_file, "secret\n")
    assert mode(key_file) == 0o600
    assert mode(password_file) == 0o600


async def test_the_incident_database_is_private(tmp_path: Path) -> None:
    database = tmp_path / "incidents" / "incidents.sqlite3"
    store = IncidentStore(database, enrichment_enabled=False)
    await store.open()
    try:
        assert mode(database) == 0o600
        assert all(mode(p) == 0o600 for p in database.parent.glob("incidents.sqlite3-*"))
    finally:
        await store.close()
