"""auth, metadata, rating and movie as processes for the movie benchmarks, and one movie to read."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc.aio

from scripts.movie.client import open_channel
from scripts.ports import free_port
from scripts.processes import ServiceProcess, stop_all
from services.common.config import TlsFiles
from services.common.grpc_auth import bearer_metadata
from services.genproto import auth_pb2, auth_pb2_grpc, movie_pb2, movie_pb2_grpc

MOVIE_SERVICES = ("auth", "metadata", "rating", "movie")  # start order: auth publishes the JWT keys
# The benches measure latency and TLS, not the gateway's rate limits (one user reads as fast as it can).
UNLIMITED_RATE = {
    "FIREDRILL_RATE_LIMIT_RPS": "1000000",
    "FIREDRILL_RATE_LIMIT_BURST": "1000000",
    "FIREDRILL_RATE_LIMIT_CALLER_RPS": "1000000",
    "FIREDRILL_RATE_LIMIT_CALLER_BURST": "1000000",
}


def make_stub(stub_class: Any, channel: grpc.aio.Channel) -> Any:
    """A generated stub (the generated classes carry no annotations)."""
    return stub_class(channel)


class MovieServices:
    """The four services sharing one state directory and local registry, each with ``tls[name]`` if given."""

    def __init__(
        self,
        root: Path,
        *,
        tls: Mapping[str, TlsFiles] | None = None,
        env: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.root = root
        self.tls = tls
        self.http_port = free_port()  # the gateway's HTTP/JSON front
        self.processes = {
            name: ServiceProcess(
                name,
                root,
                tls=tls[name] if tls is not None else None,
                env={"FIREDRILL_PROFILE": "drill", **self._gateway_env(name), **(env or {}).get(name, {})},
            )
            for name in MOVIE_SERVICES
        }

    def _gateway_env(self, name: str) -> dict[str, str]:
        return {"FIREDRILL_HTTP_PORT": str(self.http_port), **UNLIMITED_RATE} if name == "movie" else {}

    def http_url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    @property
    def identity(self) -> TlsFiles | None:
        """What a load client presents: the operator certificate when the services use TLS."""
        return self.tls["operator"] if self.tls is not None else None

    def address(self, name: str) -> str:
        return self.processes[name].address

    def channel(self, name: str) -> grpc.aio.Channel:
        return open_channel(self.address(name), name, self.identity)

    def start(self) -> None:
        for service in self.processes.values():
            service.start()

    def stop(self) -> None:
        stop_all(self.processes.values())

    async def seed(self, movie_id: str) -> str:
        """A token for the demo user, one movie and one rating of it; returns the token."""
        password = (self.root / "secrets" / "auth" / "demo-password").read_text().strip()
        async with self.channel("auth") as channel:
            answer = await make_stub(auth_pb2_grpc.AuthServiceStub, channel).GetToken(
                auth_pb2.GetTokenRequest(username="demo", password=password), timeout=10
            )
        metadata = bearer_metadata(answer.token)
        record = movie_pb2.Metadata(id=movie_id, title="Bench", description="a movie to read", director="B")
        async with self.channel("metadata") as channel:
            await make_stub(movie_pb2_grpc.MetadataServiceStub, channel).PutMetadata(
                movie_pb2.PutMetadataRequest(metadata=record), metadata=metadata, timeout=10
            )
        rating = movie_pb2.PutRatingRequest(
            user_id="bench", record_id=movie_id, record_type=movie_pb2.RECORD_TYPE_MOVIE, rating_value=4
        )
        async with self.channel("rating") as channel:
            await make_stub(movie_pb2_grpc.RatingServiceStub, channel).PutRating(rating, metadata=metadata, timeout=10)
        return str(answer.token)
