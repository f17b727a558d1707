from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.common.config import Env, ServiceConfig, variables_read
from services.response.faults import MAX_LATENCY_MS, FaultSettings


@dataclass(frozen=True, slots=True)
class ResponseConfig:
    service: ServiceConfig
    # The file holding the admin token, read at start-up once rendered (services.common.secret_files).
    # None disables the /admin API: faults can only be switched by someone holding the token.
    admin_token_file: Path | None
    leak_cap_bytes: int
    # A fault built into this instance from its start (a "bad version" for canary drills);
    # the admin API can still change or clear it.
    startup_fault: FaultSettings = field(default_factory=FaultSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ResponseConfig:
        env = Env(environ)
        service = ServiceConfig.from_env("response", environ)
        return cls(
            service=service,
            admin_token_file=service.admin_token_file,
            leak_cap_bytes=env.integer("FIREDRILL_LEAK_CAP_MB", 1024, minimum=1, maximum=8192) * 1024 * 1024,
            startup_fault=FaultSettings(
                latency_ms=env.integer("FIREDRILL_FAULT_LATENCY_MS", 0, minimum=0, maximum=MAX_LATENCY_MS),
                error_ratio=env.number("FIREDRILL_FAULT_ERROR_RATIO", 0.0, minimum=0.0, maximum=1.0),
            ),
        )


# Every variable the service reads (the local platform and the Nomad job tests check against it).
ENV_VARS = variables_read(ResponseConfig.from_env)
