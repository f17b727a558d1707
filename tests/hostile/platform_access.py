"""How the hostile tests reach the live local platform: addresses, the operator's channel, secrets on disk.

The tests play an attacker who can reach every listener on loopback; they read the platform's key
files only to build the *well-signed* forgeries (a token signed with the real key but with a
wrong claim), which is what an attacker holding a stolen key, or a bug in the issuer, would send.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc.aio

from scripts.movie.client import default_password_file, open_channel
from scripts.vault.local import service_env
from services.common import catalog
from services.common.auth_tokens import KeyRing
from services.genproto import auth_pb2, auth_pb2_grpc
from tests.conftest import RunningPlatform

TIMEOUT_S = 10.0


def grpc_address(service: str) -> str:
    return f"127.0.0.1:{catalog.port(catalog.service(service).port)}"


def operator_channel(platform: RunningPlatform, service: str) -> grpc.aio.Channel:
    """A channel to ``service``'s gRPC listener presenting the operator certificate (an allowed caller)."""
    return open_channel(grpc_address(service), service, platform.endpoints.operator_tls)


async def demo_token(platform: RunningPlatform) -> str:
    """A genuine token from auth for the drill's demo user."""
    password = default_password_file(platform.state_dir).read_text(encoding="utf-8").strip()
    stub_class: Any = auth_pb2_grpc.AuthServiceStub
    async with operator_channel(platform, "auth") as channel:
        answer = await stub_class(channel).GetToken(
            auth_pb2.GetTokenRequest(username="demo", password=password), timeout=TIMEOUT_S
        )
    return str(answer.token)


def _secret_file(platform: RunningPlatform, service: str, variable: str) -> Path:
    return Path(service_env(platform.state_dir, service)[variable])


def signing_ring(platform: RunningPlatform) -> KeyRing:
    """auth's signing keys as rendered from Vault."""
    return KeyRing.parse(_secret_file(platform, "auth", "FIREDRILL_JWT_KEY_FILE").read_text(encoding="utf-8"))


def verification_ring(platform: RunningPlatform) -> KeyRing:
    """The public keys movie verifies with."""
    path = _secret_file(platform, "movie", "FIREDRILL_JWT_PUBLIC_KEYS_FILE")
    return KeyRing.parse(path.read_text(encoding="utf-8"))
