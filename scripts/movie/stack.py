"""The four movie services in one process on free loopback ports (tests and benchmarks).

Each service is built exactly as its ``__main__`` builds it, from an environment mapping, with
its own metrics registry; discovery is an in-memory registry the stack fills as services start
and stop, so callers find each other the way they do on the platform.

TLS: give a service ``FIREDRILL_TLS_{CERT,KEY,CA}_FILE`` in its environment
(``TlsFiles.as_environment``) and it serves mTLS with the identity check, and movie dials its
upstreams over mTLS, as on the platform. The files are loaded once per start (no watcher task: a
test rotates by rewriting them and calling ``running.material.reload_if_changed()``).
``client_tls`` is the identity the stack's own calls (``token``, ``channel``) present.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc.aio
from aiohttp import web
from argon2 import PasswordHasher
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from scripts.movie.client import open_channel
from scripts.processes import service_environment
from services.auth.app import build as build_auth
from services.auth.config import AuthConfig
from services.common import tls
from services.common.config import ServiceConfig, TlsFiles
from services.common.discovery.base import Instance
from services.common.discovery.memory import MemoryRegistry
from services.common.grpc_auth import bearer_metadata
from services.common.grpc_credentials import server_credentials
from services.common.grpc_server import GrpcServer
from services.genproto import auth_pb2, auth_pb2_grpc
from services.metadata.app import build as build_metadata
from services.metadata.config import MetadataConfig
from services.movie.app import build as build_movie
from services.movie.config import MovieConfig
from services.rating.app import build as build_rating
from services.rating.config import RatingConfig

HOST = "127.0.0.1"
ORDER = ("auth", "metadata", "rating", "movie")


@dataclass
class Running:
    server: GrpcServer
    instance: Instance
    app: Any
    metrics: CollectorRegistry
    http_runner: web.AppRunner | None = None
    http_port: int | None = None
    material: tls.TlsMaterial | None = None


@dataclass
class MovieStack:
    state_dir: Path
    # Extra environment per service name (e.g. {"rating": {"FIREDRILL_FAULT_LATENCY_MS": "50"}}).
    env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    instrumentation: bool = True
    tracer_provider: TracerProvider | None = None
    # Cheap argon2 parameters keep tests fast; production uses the library's defaults.
    hasher: PasswordHasher | None = None
    # The client certificate the stack's own calls present (e.g. an operator's); None = plaintext.
    client_tls: TlsFiles | None = None
    registry: MemoryRegistry = field(default_factory=MemoryRegistry)
    running: dict[str, Running] = field(default_factory=dict)

    def environ(self, name: str) -> dict[str, str]:
        base = {
            **service_environment(name, self.state_dir, log_level=None),
            "FIREDRILL_PROFILE": "drill",
            "FIREDRILL_INSTRUMENTATION": "true" if self.instrumentation else "false",
        }
        return {**base, **self.env.get(name, {})}

    async def start(self) -> MovieStack:
        for name in ORDER:
            await self.start_service(name)
        return self

    async def start_service(self, name: str) -> Running:
        if name in self.running:
            raise RuntimeError(f"{name} is already running")
        if name not in ORDER:
            raise KeyError(name)
        metrics = CollectorRegistry()
        environ = self.environ(name)
        files = ServiceConfig.from_env(name, environ).tls
        material = tls.TlsMaterial(files, name) if files is not None else None
        if material is not None:
            material.register_metrics(metrics)
        http_app: web.Application | None = None
        app: Any
        common: dict[str, Any] = {
            "tracer_provider": self.tracer_provider,
            "metrics_registry": metrics,
            "tls_material": material,
        }
        if name == "auth":
            app = await build_auth(AuthConfig.from_env(environ), hasher=self.hasher, **common)
        elif name == "metadata":
            app = await build_metadata(MetadataConfig.from_env(environ), **common)
        elif name == "rating":
            app = await build_rating(RatingConfig.from_env(environ), **common)
        else:
            app = build_movie(MovieConfig.from_env(environ), self.registry, **common)
            http_app = app.http
        credentials = server_credentials(material) if material is not None else None
        port = await app.server.start(HOST, 0, credentials)
        instance = Instance(name, f"{name}-{HOST}-{port}", HOST, port, {"protocol": "grpc"})
        running = Running(app.server, instance, app, metrics, material=material)
        if http_app is not None:
            runner = web.AppRunner(http_app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, HOST, 0)
            await site.start()
            running.http_runner = runner
            running.http_port = int(runner.addresses[0][1])
        await self.registry.register(instance)
        self.running[name] = running
        return running

    async def stop_service(self, name: str, *, deregister: bool = True, grace_s: float = 0.5) -> None:
        """Stop one service; ``deregister=False`` leaves it in discovery, as a crash would."""
        running = self.running.pop(name)
        if deregister:
            await self.registry.deregister(running.instance)
        await running.server.stop(grace_s)
        if running.http_runner is not None:
            await running.http_runner.cleanup()
        await running.app.close()

    def address(self, name: str) -> str:
        return self.running[name].instance.address

    def http_url(self, path: str = "") -> str:
        port = self.running["movie"].http_port
        return f"http://{HOST}:{port}{path}"

    def demo_password(self) -> str:
        return (self.state_dir / "secrets" / "auth" / "demo-password").read_text().strip()

    def channel(self, name: str, identity: TlsFiles | None = None) -> grpc.aio.Channel:
        """A channel to ``name`` presenting ``identity`` (default: ``client_tls``; plaintext if neither)."""
        return open_channel(self.address(name), name, identity or self.client_tls)

    async def token(self, username: str = "demo", password: str | None = None) -> str:
        stub_class: Any = auth_pb2_grpc.AuthServiceStub
        async with self.channel("auth") as channel:
            response = await stub_class(channel).GetToken(
                auth_pb2.GetTokenRequest(username=username, password=password or self.demo_password()), timeout=10
            )
        return str(response.token)

    async def close(self) -> None:
        for name in reversed(ORDER):
            if name in self.running:
                await self.stop_service(name, grace_s=0)


def auth_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return bearer_metadata(token)
