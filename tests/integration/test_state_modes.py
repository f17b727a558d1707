"""On the running local platform, every state file holding a secret or a password hash is 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.integration.conftest import RunningPlatform

pytestmark = pytest.mark.integration

# Where secrets and hashes live: rendered certificates, keys and tokens, the OpenBao token and
# AppRole credentials, and auth's user database (password hashes) with its -wal and -shm files.
SECRET_PLACES = ("secrets", "vault", "data/auth")
# Published on purpose: the JWT verification keys hold no private key.
PUBLIC = frozenset({"verification-keys.json", "jwt-public.json"})


def test_secret_and_hash_files_are_readable_by_their_owner_only(local_platform: RunningPlatform) -> None:
    root = local_platform.state_dir
    files = [
        path
        for place in SECRET_PLACES
        for path in (root / place).rglob("*")
        if path.is_file() and not path.is_symlink() and path.name not in PUBLIC
    ]
    names = {path.name for path in files}
    assert {"auth.sqlite3", "key.pem", "root-token", "jwt-keys.json", "admin-token"} <= names, sorted(names)
    wide = {str(path.relative_to(root)): oct(stat.S_IMODE(path.stat().st_mode)) for path in files if _wide(path)}
    assert not wide, wide


def _wide(path: Path) -> bool:
    return bool(stat.S_IMODE(path.stat().st_mode) & 0o077)
