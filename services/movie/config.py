from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common import catalog
from services.common.auth_tokens import TokenSettings, public_keys_path, token_settings_from_env
from services.common.config import Env, ServiceConfig, state_dir, variables_read
from services.common.ratelimit import Budget


@dataclass(frozen=True, slots=True)
class MovieConfig:
    service: ServiceConfig
    http_port: int
    data_dir: Path
    # Used when the caller set no deadline; a caller's own deadline is propagated instead.
    default_deadline_s: float
    attempts: int
    attempt_timeout_s: float
    # The longest the gateway waits for rating before answering without it.
    rating_budget_s: float
    # Admission (docs/movie.md "Rate limits"): the budget every caller shares, each authenticated
    # caller's own, and each client address's budget of refused tokens; keyed budgets kept per key.
    rate_limit: Budget
    caller_rate_limit: Budget
    anonymous_rate_limit: Budget
    rate_limit_max_keys: int
    upload_max_bytes: int
    token_cache_ttl_s: float
    tokens: TokenSettings
    public_keys_file: Path

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MovieConfig:
        env = Env(environ)
        service = ServiceConfig.from_env("movie", environ)
        spec_http = catalog.service("movie").http_port
        assert spec_http is not None
        return cls(
            service=service,
            http_port=env.port("FIREDRILL_HTTP_PORT", catalog.port(spec_http, environ)),
            data_dir=env.path("FIREDRILL_DATA_DIR", state_dir(environ) / "data" / "movie"),
            default_deadline_s=env.integer("FIREDRILL_UPSTREAM_DEADLINE_MS", 2000, minimum=50, maximum=30000) / 1000,
            attempts=env.integer("FIREDRILL_UPSTREAM_ATTEMPTS", 3, minimum=1, maximum=3),
            attempt_timeout_s=env.integer("FIREDRILL_UPSTREAM_ATTEMPT_TIMEOUT_MS", 800, minimum=10, maximum=30000)
            / 1000,
            rating_budget_s=env.integer("FIREDRILL_RATING_BUDGET_MS", 300, minimum=10, maximum=30000) / 1000,
            rate_limit=_budget(env, "FIREDRILL_RATE_LIMIT", 100.0, 100),
            caller_rate_limit=_budget(env, "FIREDRILL_RATE_LIMIT_CALLER", 20.0, 40),
            anonymous_rate_limit=_budget(env, "FIREDRILL_RATE_LIMIT_ANONYMOUS", 2.0, 20),
            rate_limit_max_keys=env.integer("FIREDRILL_RATE_LIMIT_MAX_KEYS", 10_000, minimum=1, maximum=1_000_000),
            upload_max_bytes=env.integer(
                "FIREDRILL_UPLOAD_MAX_BYTES", 10 * 1024 * 1024, minimum=1, maximum=1024 * 1024 * 1024
            ),
            token_cache_ttl_s=env.number("FIREDRILL_TOKEN_CACHE_TTL_S", 30.0, minimum=0.0, maximum=3600.0),
            tokens=token_settings_from_env(env),
            public_keys_file=public_keys_path(env, service.timing.name, environ),
        )


def _budget(env: Env, prefix: str, rate: float, burst: int) -> Budget:
    """``<prefix>_RPS`` and ``<prefix>_BURST``."""
    return Budget(
        env.number(f"{prefix}_RPS", rate, minimum=0.1, maximum=1_000_000.0),
        env.integer(f"{prefix}_BURST", burst, minimum=1, maximum=1_000_000),
    )


# Every variable the service reads (the local platform and the Nomad job tests check against it).
ENV_VARS = variables_read(MovieConfig.from_env)
