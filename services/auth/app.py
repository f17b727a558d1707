"""Wiring: keys, users, password hashing, controller and handler on a gRPC server."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from services.auth.config import AuthConfig
from services.auth.controller import AuthController, bootstrap_demo_user
from services.auth.handler import AuthServicer
from services.auth.passwords import Passwords
from services.auth.repository import SqliteUserRepository, UserRepository
from services.common import tls
from services.common.auth_tokens import (
    FileKeySource,
    KeyRing,
    TokenIssuer,
    TokenVerifier,
    ensure_key_file,
    write_private_file,
)
from services.common.grpc_server import GrpcServer, catalog_server
from services.common.ratelimit import KeyedLimiter
from services.common.secret_files import wait_for_files
from services.genproto import auth_pb2, auth_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


@dataclass
class AuthApp:
    server: GrpcServer
    repository: UserRepository
    controller: AuthController
    keys: FileKeySource

    async def close(self) -> None:
        await self.repository.close()


def _publisher(config: AuthConfig) -> Callable[[KeyRing], None]:
    target = config.publish_public_keys

    def publish(ring: KeyRing) -> None:
        if target is not None:
            write_private_file(target, ring.to_json(include_private=False), mode=0o644)
            log.info("verification keys published", extra={"path": str(target)})

    return publish


async def build(
    config: AuthConfig,
    *,
    tracer_provider: TracerProvider | None = None,
    metrics_registry: CollectorRegistry = REGISTRY,
    tls_material: tls.TlsMaterial | None = None,
    repository: UserRepository | None = None,
    hasher: PasswordHasher | None = None,
) -> AuthApp:
    if config.generate_key and ensure_key_file(config.key_file):
        log.warning("generated a JWT signing key (drill profile)", extra={"path": str(config.key_file)})
    await wait_for_files((config.key_file,), what="the JWT signing keys")
    publish = _publisher(config)
    keys = FileKeySource(config.key_file, on_change=publish)
    if not keys.current().active_kid:
        raise SystemExit(f"{config.key_file} holds no active signing key")
    users = repository if repository is not None else await SqliteUserRepository.open(config.database)
    controller = AuthController(
        users,
        Passwords(hasher),
        TokenIssuer(keys, config.tokens),
        TokenVerifier(keys, config.tokens),
        KeyedLimiter(config.login_failures_per_min / 60, config.login_failures_per_min),
    )
    if config.demo_user:
        await bootstrap_demo_user(controller, users, config.demo_user, config.demo_password_file)
    server = catalog_server(
        "auth",
        config.service,
        tracer_provider=tracer_provider,
        metrics_registry=metrics_registry,
        tls_material=tls_material,
    )
    server.add(auth_pb2_grpc.add_AuthServiceServicer_to_server, AuthServicer(controller), SERVICE_NAME)
    return AuthApp(server, users, controller, keys)
