from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.auth_tokens import TokenSettings, public_keys_path, token_settings_from_env
from services.common.config import Env, ServiceConfig, state_dir, variables_read
from services.common.grpc_latency_fault import MAX_FAULT_LATENCY_MS


@dataclass(frozen=True, slots=True)
class MetadataConfig:
    service: ServiceConfig
    data_dir: Path
    cache_ttl_s: float
    cache_max_entries: int
    fault_latency_ms: int
    tokens: TokenSettings
    public_keys_file: Path

    @property
    def database(self) -> Path:
        return self.data_dir / "metadata.sqlite3"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MetadataConfig:
        env = Env(environ)
        service = ServiceConfig.from_env("metadata", environ)
        return cls(
            service=service,
            data_dir=env.path("FIREDRILL_DATA_DIR", state_dir(environ) / "data" / "metadata"),
            cache_ttl_s=env.number("FIREDRILL_CACHE_TTL_S", 30.0, minimum=0.1, maximum=3600.0),
            cache_max_entries=env.integer("FIREDRILL_CACHE_MAX_ENTRIES", 10_000, minimum=1, maximum=1_000_000),
            fault_latency_ms=env.integer("FIREDRILL_FAULT_LATENCY_MS", 0, minimum=0, maximum=MAX_FAULT_LATENCY_MS),
            tokens=token_settings_from_env(env),
            public_keys_file=public_keys_path(env, service.timing.name, environ),
        )


# Every variable the service reads (the local platform and the Nomad job tests check against it).
ENV_VARS = variables_read(MetadataConfig.from_env)
