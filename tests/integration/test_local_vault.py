"""Vault operations against the real local platform's OpenBao."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from services.common.waiting import wait_until
from tests.integration.conftest import RunningPlatform

pytestmark = pytest.mark.integration


def test_rotate_jwt_key_finds_the_local_openbao_by_itself(local_platform: RunningPlatform) -> None:
    env = {**os.environ, "FIREDRILL_STATE_DIR": str(local_platform.state_dir)}
    for name in ("VAULT_ADDR", "BAO_ADDR", "VAULT_TOKEN", "BAO_TOKEN", "VAULT_TOKEN_FILE"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "scripts.vault.rotate_jwt_key"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r"active JWT key: (\S+) \(was (\S+)\)", done.stdout)
    assert found is not None, done.stdout
    active, previous = found.groups()
    assert active != previous
    root_token = (local_platform.state_dir / "vault" / "root-token").read_text().strip()
    assert root_token not in done.stdout + done.stderr
    # The agent renders the rotated set for auth (which reloads it without a restart).
    keys = local_platform.state_dir / "secrets" / "auth" / "jwt-keys.json"
    wait_until(
        lambda: json.loads(keys.read_text())["active_kid"] == active,
        timeout_s=30,
        interval_s=0.2,
        what="the rotated key set rendered for auth",
    )
