"""Shared by the seed script and the CLI: find services through discovery, get a token."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import grpc.aio

from services.common.config import ServiceConfig
from services.common.discovery.base import pick_instance
from services.common.discovery.factory import make_registry
from services.genproto import auth_pb2, auth_pb2_grpc


def default_password_file(state_dir: Path) -> Path:
    return state_dir / "secrets" / "auth" / "demo-password"


async def address_of(service: str) -> str:
    """A healthy instance of ``service`` from the registry the platform uses (FIREDRILL_* env)."""
    registry = make_registry(ServiceConfig.from_env(service))
    try:
        return (await pick_instance(registry, service)).address
    finally:
        await registry.close()


def read_password(password_file: Path | None, username: str) -> str:
    if password_file is not None:
        return password_file.read_text(encoding="utf-8").strip()
    return getpass.getpass(f"password for {username}: ")


async def get_token(username: str, password: str, *, timeout_s: float = 10.0) -> str:
    stub_class: Any = auth_pb2_grpc.AuthServiceStub
    async with grpc.aio.insecure_channel(await address_of("auth")) as channel:
        response = await stub_class(channel).GetToken(
            auth_pb2.GetTokenRequest(username=username, password=password), timeout=timeout_s
        )
    return str(response.token)
