"""The gRPC mTLS plumbing on its own: the peer-identity interceptor and channel rebuilding.

A bare GrpcServer (health only) with throwaway-PKI credentials; no movie services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import CollectorRegistry

from scripts.movie.client import open_channel
from scripts.vault.throwaway_pki import ThrowawayPki
from services.common import tls
from services.common.discovery.base import Instance
from services.common.grpc_client import ClientOptions, DiscoveredChannels
from services.common.grpc_credentials import channel_credentials, channel_options, server_credentials
from services.common.grpc_peer_identity import GrpcPeerIdentityInterceptor
from services.common.grpc_server import GrpcServer, ServerOptions
from services.genproto import movie_pb2, movie_pb2_grpc


@pytest.fixture(scope="module")
def pki() -> ThrowawayPki:
    return ThrowawayPki("grpc-plumbing")


class OneInstance:
    def __init__(self, instance: Instance) -> None:
        self.instance = instance

    async def register(self, instance: Instance) -> None: ...
    async def deregister(self, instance: Instance) -> None: ...
    async def heartbeat(self, instance: Instance) -> None: ...
    async def close(self) -> None: ...

    async def traffic_split(self, service: str) -> dict[str, float] | None:
        return None

    async def healthy_instances(self, service: str) -> list[Instance]:
        return [self.instance] if service == self.instance.service else []


@pytest.fixture
async def rating(pki: ThrowawayPki, tmp_path: Path) -> AsyncIterator[tuple[GrpcServer, tls.TlsMaterial]]:
    material = tls.TlsMaterial(pki.write(tmp_path / "rating", "rating"), "rating")
    server = GrpcServer(
        "rating",
        ServerOptions(
            instrumentation=False, metrics_registry=CollectorRegistry(), allowed_peers=tls.allowed_callers("rating")
        ),
    )
    await server.start("127.0.0.1", 0, server_credentials(material))
    try:
        yield server, material
    finally:
        await server.stop(0)


def test_an_empty_allow_list_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        GrpcPeerIdentityInterceptor("rating", ())


async def test_the_check_fails_closed_on_a_plaintext_listener() -> None:
    # Misconfigured: identity check without TLS. Nobody has a verified certificate: all refused.
    server = GrpcServer("rating", ServerOptions(instrumentation=False, allowed_peers=("movie",)))

    class Ratings(movie_pb2_grpc.RatingServiceServicer):
        async def GetAggregatedRating(self, request: Any, context: Any) -> Any:
            raise AssertionError("must not be reached")

    server.add(movie_pb2_grpc.add_RatingServiceServicer_to_server, Ratings(), "firedrill.movie.v1.RatingService")
    port = await server.start("127.0.0.1", 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub: Any = movie_pb2_grpc.RatingServiceStub
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await stub(channel).GetAggregatedRating(movie_pb2.GetAggregatedRatingRequest(record_id="x"), timeout=3)
            assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await server.stop(0)


async def test_reconfigure_rebuilds_channels_with_the_renewed_certificate(
    rating: tuple[GrpcServer, tls.TlsMaterial], pki: ThrowawayPki, tmp_path: Path
) -> None:
    server, _ = rating
    assert server.port is not None
    movie = tls.TlsMaterial(pki.write(tmp_path / "movie", "movie"), "movie")

    def options(material: tls.TlsMaterial) -> ClientOptions:
        return ClientOptions(
            instrumentation=False,
            channel_credentials=channel_credentials(material),
            channel_options=tuple(channel_options(tls.service_dns_name("rating"))),
        )

    registry = OneInstance(Instance("rating", "r1", "127.0.0.1", server.port, {}))
    channels = DiscoveredChannels("rating", registry, options(movie), health_pb2_grpc.HealthStub)
    movie.on_reload(lambda m: channels.reconfigure(options(m), grace_s=1))
    try:
        _, first = await channels.pick()
        await first.Check(health_pb2.HealthCheckRequest(), timeout=3)
        pki.write(movie.files.cert.parent, "movie")
        assert movie.reload_if_changed()
        assert channels.generation == 1
        _, second = await channels.pick()
        assert second is not first  # a new channel, dialled with the new certificate
        answer = await second.Check(health_pb2.HealthCheckRequest(), timeout=3)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await channels.close()


async def test_operator_tooling_channels(
    rating: tuple[GrpcServer, tls.TlsMaterial], pki: ThrowawayPki, tmp_path: Path
) -> None:
    server, _ = rating
    address = f"127.0.0.1:{server.port}"
    operator = pki.write(tmp_path / "operator", "operator")
    async with open_channel(address, "rating", operator) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    # The tool pins the service it means: rating's certificate does not pass for metadata.
    async with open_channel(address, "metadata", operator) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


async def _list_services(address: str, server: str, identity: Any) -> list[str]:
    async with open_channel(address, server, identity) as channel:
        stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)
        names: list[str] = []
        async for answer in stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=3
        ):
            names.extend(s.name for s in answer.list_services_response.service)
        return names


async def test_identity_is_matched_by_bare_or_consul_name(
    rating: tuple[GrpcServer, tls.TlsMaterial], pki: ThrowawayPki, tmp_path: Path
) -> None:
    server, _ = rating
    address = f"127.0.0.1:{server.port}"
    # Local certificates name "movie"; cluster ones "movie.service.consul" (no bare SAN).
    for name in ("movie", "movie.service.consul"):
        names = await _list_services(address, "rating", pki.write(tmp_path / name, name))
        assert "grpc.health.v1.Health" in names
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await _list_services(address, "rating", pki.write(tmp_path / "hello", "hello.service.consul"))
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
