"""Find the third-party binaries the local platform runs, with an actionable error when absent."""

from __future__ import annotations

import shutil

from scripts.deploy_target.interface import PlatformError


def find_binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_binary(*names: str) -> str:
    found = find_binary(*names)
    if found:
        return found
    raise PlatformError(
        f"{' or '.join(names)} not found on PATH: run `make setup` (installs the Debian packages "
        "prometheus and prometheus-alertmanager)"
    )
