from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.config import COMMON_ENV_VARS, Env, ServiceConfig

ENV_VARS = (*COMMON_ENV_VARS, "FIREDRILL_ADMIN_TOKEN_FILE", "FIREDRILL_LEAK_CAP_MB")


@dataclass(frozen=True, slots=True)
class ResponseConfig:
    service: ServiceConfig
    # None disables the /admin API: faults can only be switched by someone holding the token.
    admin_token: str | None
    leak_cap_bytes: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ResponseConfig:
        env = Env(environ)
        return cls(
            service=ServiceConfig.from_env("response", environ),
            admin_token=env.secret_file("FIREDRILL_ADMIN_TOKEN_FILE"),
            leak_cap_bytes=env.integer("FIREDRILL_LEAK_CAP_MB", 1024, minimum=1, maximum=8192) * 1024 * 1024,
        )
