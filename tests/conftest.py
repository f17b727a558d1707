from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def require_binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed on this machine (run `make setup`)")
    return found


@pytest.fixture(autouse=True)
def _no_port_offset_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests see catalog ports; the integration fixture sets its own offset in subprocesses."""
    if "FIREDRILL_PORT_OFFSET" in os.environ:
        monkeypatch.delenv("FIREDRILL_PORT_OFFSET")
