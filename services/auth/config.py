from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.auth_tokens import TokenSettings, jwt_dir, token_settings_from_env
from services.common.config import ConfigError, Env, ServiceConfig, state_dir, variables_read


@dataclass(frozen=True, slots=True)
class AuthConfig:
    service: ServiceConfig
    data_dir: Path
    tokens: TokenSettings
    # The signing key set (private keys; only auth reads it).
    key_file: Path
    # Generate key_file at start-up when missing (drill only, when FIREDRILL_JWT_KEY_FILE is unset).
    generate_key: bool
    # Where to publish the verification (public) keys for the other services; None: someone else does.
    publish_public_keys: Path | None
    # None: no demo user (production without FIREDRILL_DEMO_USER).
    demo_user: str | None
    demo_password_file: Path
    login_failures_per_min: int

    @property
    def database(self) -> Path:
        return self.data_dir / "auth.sqlite3"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AuthConfig:
        env = Env(environ)
        service = ServiceConfig.from_env("auth", environ)
        drill = service.timing.name == "drill"
        key_file = env.optional_path("FIREDRILL_JWT_KEY_FILE")
        if key_file is None and not drill:
            raise ConfigError("FIREDRILL_JWT_KEY_FILE", "required outside the drill profile (Vault renders it)")
        public = env.optional_path("FIREDRILL_JWT_PUBLIC_KEYS_FILE")
        if public is None and drill:
            public = jwt_dir(environ) / "verification-keys.json"
        return cls(
            service=service,
            data_dir=env.path("FIREDRILL_DATA_DIR", state_dir(environ) / "data" / "auth"),
            tokens=token_settings_from_env(env),
            key_file=key_file or jwt_dir(environ) / "signing-keys.json",
            generate_key=key_file is None,
            publish_public_keys=public,
            demo_user=env.optional_str("FIREDRILL_DEMO_USER") or ("demo" if drill else None),
            demo_password_file=env.path(
                "FIREDRILL_DEMO_PASSWORD_FILE", state_dir(environ) / "secrets" / "auth" / "demo-password"
            ),
            login_failures_per_min=env.integer("FIREDRILL_LOGIN_FAILURES_PER_MIN", 5, minimum=1, maximum=1000),
        )


# Every variable the service reads (the local platform and the Nomad job tests check against it).
ENV_VARS = variables_read(AuthConfig.from_env)
