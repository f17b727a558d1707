"""Build service configuration the way production does, from an environment mapping."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from services.common.config import ServiceConfig


def service_config(name: str, tmp_path: Path, **overrides: object) -> ServiceConfig:
    base = ServiceConfig.from_env(name, {"FIREDRILL_STATE_DIR": str(tmp_path)})
    return replace(base, **overrides)  # type: ignore[arg-type]


class Clock:
    """A clock a test moves by hand: ``clock.now += 5``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
