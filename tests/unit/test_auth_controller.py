from __future__ import annotations

import os
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from services.auth.controller import WRONG_CREDENTIALS, AuthController, bootstrap_demo_user
from services.auth.passwords import Passwords
from services.auth.repository import MemoryUserRepository
from services.common.auth_tokens import KeyRing, StaticKeySource, TokenIssuer, TokenSettings, TokenVerifier
from services.common.errors import ResourceExhausted, Unauthenticated
from services.common.ratelimit import KeyedLimiter
from tests.unit.helpers import Clock

SETTINGS = TokenSettings("firedrill-auth", "firedrill-movie")
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def make(clock: Clock | None = None) -> tuple[AuthController, MemoryUserRepository]:
    keys = StaticKeySource(KeyRing.generate())
    users = MemoryUserRepository()
    controller = AuthController(
        users,
        Passwords(CHEAP),
        TokenIssuer(keys, SETTINGS),
        TokenVerifier(keys, SETTINGS),
        KeyedLimiter(5 / 60, 5, clock=clock or Clock()),
    )
    return controller, users


async def test_correct_password_gets_a_valid_token() -> None:
    ctl, _ = make()
    await ctl.set_password("alice", "s3cret")
    issued = await ctl.get_token("alice", "s3cret")
    assert (await ctl.validate_token(issued.token)).username == "alice"


async def test_passwords_are_stored_as_argon2_hashes() -> None:
    ctl, users = make()
    await ctl.set_password("alice", "s3cret")
    stored = users.users["alice"].password_hash
    assert stored.startswith("$argon2id$")
    assert "s3cret" not in stored


async def test_wrong_password_and_unknown_user_answer_the_same() -> None:
    ctl, _ = make()
    await ctl.set_password("alice", "s3cret")
    with pytest.raises(Unauthenticated) as wrong:
        await ctl.get_token("alice", "nope")
    with pytest.raises(Unauthenticated) as unknown:
        await ctl.get_token("mallory", "nope")
    assert wrong.value.message == unknown.value.message == WRONG_CREDENTIALS


@pytest.mark.parametrize(("user", "password"), [("", "x"), ("a b", "x"), ("alice", ""), ("alice", "x" * 5000)])
async def test_malformed_credentials_look_like_wrong_ones(user: str, password: str) -> None:
    ctl, _ = make()
    with pytest.raises(Unauthenticated) as caught:
        await ctl.get_token(user, password)
    assert caught.value.message == WRONG_CREDENTIALS


@pytest.mark.parametrize("username", ["alice", "ghost"])
async def test_failed_attempts_are_rate_limited_for_existing_and_unknown_users(username: str) -> None:
    clock = Clock()
    ctl, _ = make(clock)
    await ctl.set_password("alice", "s3cret")
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await ctl.get_token(username, "wrong", peer="ipv4:10.0.0.1")
    with pytest.raises(ResourceExhausted):
        await ctl.get_token(username, "s3cret", peer="ipv4:10.0.0.2")
    clock.now = 13.0  # one attempt refills every 12 s
    if username == "alice":
        assert (await ctl.get_token(username, "s3cret", peer="ipv4:10.0.0.2")).token


async def test_token_of_a_deleted_user_is_refused() -> None:
    ctl, users = make()
    await ctl.set_password("alice", "s3cret")
    issued = await ctl.get_token("alice", "s3cret")
    users.users.clear()
    with pytest.raises(Unauthenticated):
        await ctl.validate_token(issued.token)


async def test_demo_user_bootstrap_writes_a_private_password_file_once(tmp_path: Path) -> None:
    ctl, users = make()
    password_file = tmp_path / "secrets" / "auth" / "demo-password"
    assert await bootstrap_demo_user(ctl, users, "demo", password_file) is True
    assert os.stat(password_file).st_mode & 0o777 == 0o600
    password = password_file.read_text().strip()
    assert len(password) >= 24
    assert await bootstrap_demo_user(ctl, users, "demo", password_file) is False
    assert password_file.read_text().strip() == password
    assert (await ctl.get_token("demo", password)).token


async def test_lost_password_file_is_regenerated(tmp_path: Path) -> None:
    ctl, users = make()
    password_file = tmp_path / "demo-password"
    await bootstrap_demo_user(ctl, users, "demo", password_file)
    password_file.unlink()
    assert await bootstrap_demo_user(ctl, users, "demo", password_file) is True
    assert (await ctl.get_token("demo", password_file.read_text().strip())).token
