"""Shared by the seed script and the CLI: find services through discovery, dial them, get a token.

On the local platform every gRPC service requires mTLS, so the tools present the operator's
certificate (``<state>/secrets/operator/{cert,key,ca}.pem``, rendered by the Vault agent) and pin
the name of the service they dial (``<service>.service.consul``). Without those files (an
in-process stack without TLS) they dial in plaintext.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

import grpc.aio

from services.common import tls
from services.common.config import ServiceConfig, TlsFiles
from services.common.discovery.base import pick_instance
from services.common.discovery.factory import make_registry
from services.common.grpc_credentials import channel_credentials, channel_options
from services.genproto import auth_pb2, auth_pb2_grpc


def default_password_file(state_dir: Path) -> Path:
    return state_dir / "secrets" / "auth" / "demo-password"


OPERATOR = "operator"


def open_channel(address: str, service: str, identity: TlsFiles | None) -> grpc.aio.Channel:
    """A channel to ``service`` at ``address``: mTLS with ``identity`` (pinning the service's name), else plaintext."""
    if identity is None:
        return grpc.aio.insecure_channel(address)
    material = tls.TlsMaterial(identity, OPERATOR)
    return grpc.aio.secure_channel(
        address,
        channel_credentials(material),
        options=channel_options(tls.service_dns_name(service)),
    )


async def connect(service: str, identity: TlsFiles | None) -> grpc.aio.Channel:
    """A channel to a healthy instance of ``service`` found through discovery."""
    return open_channel(await address_of(service), service, identity)


async def address_of(service: str) -> str:
    """A healthy instance of ``service`` from the registry the platform uses (FIREDRILL_* env)."""
    registry = make_registry(ServiceConfig.from_env(service, os.environ))
    try:
        return (await pick_instance(registry, service)).address
    finally:
        await registry.close()


def read_password(password_file: Path | None, username: str) -> str:
    if password_file is not None:
        return password_file.read_text(encoding="utf-8").strip()
    return getpass.getpass(f"password for {username}: ")


async def get_token(username: str, password: str, *, identity: TlsFiles | None, timeout_s: float = 10.0) -> str:
    stub_class: Any = auth_pb2_grpc.AuthServiceStub
    async with await connect("auth", identity) as channel:
        response = await stub_class(channel).GetToken(
            auth_pb2.GetTokenRequest(username=username, password=password), timeout=timeout_s
        )
    return str(response.token)
