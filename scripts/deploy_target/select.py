"""Pick the platform: a Nomad cluster when NOMAD_ADDR is set, else the local platform."""

from __future__ import annotations

import os
from pathlib import Path

from scripts.deploy_target.interface import Platform
from services.common.config import state_dir


def current_platform(state: Path | None = None) -> Platform:
    if os.environ.get("NOMAD_ADDR"):
        from scripts.deploy_target.nomad import NomadPlatform

        return NomadPlatform.from_env()  # type: ignore[no-any-return,unused-ignore]
    from scripts.local.stack import LocalPlatform

    return LocalPlatform(state or state_dir())
