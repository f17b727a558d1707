from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.config import ConfigError, Env, ServiceConfig, state_dir, variables_read


@dataclass(frozen=True, slots=True)
class IncidentsConfig:
    service: ServiceConfig
    # Holds incidents.sqlite3 and the incidents/incident-<id>.json files.
    data_dir: Path
    # None: enrichment from Prometheus is skipped (and recorded as skipped).
    prometheus_url: str | None
    enrich_timeout_s: float
    enrich_queue_size: int
    # Most notifications committed together in one transaction (group commit).
    write_batch: int

    @property
    def database(self) -> Path:
        return self.data_dir / "incidents.sqlite3"

    @property
    def export_dir(self) -> Path:
        return self.data_dir / "incidents"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> IncidentsConfig:
        env = Env(environ)
        prometheus = env.optional_str("FIREDRILL_PROMETHEUS_URL")
        if prometheus is not None and not prometheus.startswith(("http://", "https://")):
            raise ConfigError("FIREDRILL_PROMETHEUS_URL", f"expected an http(s) URL, got {prometheus!r}")
        return cls(
            service=ServiceConfig.from_env("incidents", environ),
            data_dir=env.path("FIREDRILL_DATA_DIR", state_dir(environ) / "data" / "incidents"),
            prometheus_url=prometheus.rstrip("/") if prometheus else None,
            enrich_timeout_s=env.integer("FIREDRILL_ENRICH_TIMEOUT_MS", 2000, minimum=50, maximum=30000) / 1000,
            enrich_queue_size=env.integer("FIREDRILL_ENRICH_QUEUE", 1000, minimum=1, maximum=100_000),
            write_batch=env.integer("FIREDRILL_WRITE_BATCH", 256, minimum=1, maximum=10_000),
        )


# Every variable the service reads (the local platform and the Nomad job tests check against it).
ENV_VARS = variables_read(IncidentsConfig.from_env)
