"""The one bounded start-up wait for secret files (admin token, JWT keys, TLS files)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from services.common.secret_files import SecretFileError, read_secret, read_when_present, wait_for_files
from services.common.waiting import wait_until_async


async def test_a_secret_written_after_start_is_read_once_it_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = tmp_path / "response" / "admin-token"
    caplog.set_level(logging.INFO, logger="services.common.secret_files")
    reading = asyncio.create_task(read_when_present(token, what="the admin token", timeout_s=30))
    await wait_until_async(lambda: "waiting for the admin token" in caplog.text, timeout_s=5, interval_s=0.01)
    assert str(token) in caplog.text  # the log names the file: what `make status` shows as the reason
    assert not reading.done()
    token.parent.mkdir()
    token.write_text("s3cr3t\n")
    assert await asyncio.wait_for(reading, 10) == "s3cr3t"
    assert "s3cr3t" not in caplog.text


async def test_the_wait_is_bounded_and_names_what_is_missing(tmp_path: Path) -> None:
    present, absent = tmp_path / "present", tmp_path / "absent"
    present.write_text("x")
    with pytest.raises(SecretFileError, match=f"not rendered after 0s: {absent}$"):
        await wait_for_files((present, absent), what="the files", timeout_s=0.2)


async def test_an_empty_file_counts_as_not_rendered_yet(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(SecretFileError, match="not rendered"):
        await wait_for_files((empty,), what="the files", timeout_s=0.2)


def test_read_secret_strips_and_refuses_blank_or_missing_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  s3cr3t \n")
    assert read_secret(tmp_path / "token") == "s3cr3t"
    (tmp_path / "blank").write_text(" \n")
    with pytest.raises(SecretFileError, match="is empty"):
        read_secret(tmp_path / "blank")
    with pytest.raises(SecretFileError, match="cannot read"):
        read_secret(tmp_path / "missing")


async def test_auth_waits_for_its_rendered_signing_keys_instead_of_exiting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from argon2 import PasswordHasher
    from prometheus_client import CollectorRegistry

    from services.auth.app import build
    from services.auth.config import AuthConfig
    from services.auth.repository import MemoryUserRepository
    from services.common.auth_tokens import KeyRing, write_private_file

    key_file = tmp_path / "secrets" / "auth" / "jwt-keys.json"
    config = AuthConfig.from_env({"FIREDRILL_STATE_DIR": str(tmp_path), "FIREDRILL_JWT_KEY_FILE": str(key_file)})
    assert not config.generate_key
    caplog.set_level(logging.INFO, logger="services.common.secret_files")
    building = asyncio.create_task(
        build(
            config,
            metrics_registry=CollectorRegistry(),
            repository=MemoryUserRepository(),
            hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
        )
    )
    await wait_until_async(lambda: "waiting for the JWT signing keys" in caplog.text, timeout_s=5, interval_s=0.01)
    assert not building.done()
    ring = KeyRing.generate()
    write_private_file(key_file, ring.to_json(include_private=True))
    app = await asyncio.wait_for(building, 10)
    try:
        assert app.keys.current().active_kid == ring.active_kid
    finally:
        await app.close()
