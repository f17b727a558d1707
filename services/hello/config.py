from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.config import Env, ServiceConfig, variables_read


@dataclass(frozen=True, slots=True)
class HelloConfig:
    service: ServiceConfig
    upstream_deadline_s: float
    upstream_attempts: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> HelloConfig:
        env = Env(environ)
        return cls(
            service=ServiceConfig.from_env("hello", environ),
            upstream_deadline_s=env.integer("FIREDRILL_UPSTREAM_DEADLINE_MS", 2000, minimum=50, maximum=30000) / 1000,
            upstream_attempts=env.integer("FIREDRILL_UPSTREAM_ATTEMPTS", 3, minimum=1, maximum=5),
        )


# Every variable the service reads (the local platform and the Nomad job tests check against it).
ENV_VARS = variables_read(HelloConfig.from_env)
