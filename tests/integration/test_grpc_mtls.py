"""mTLS on every gRPC hop of the movie application: the in-process stack with a throwaway PKI.

Each service gets its own certificate (``FIREDRILL_TLS_*``, as the Vault agent renders them on
the platform); the test's own calls present an operator certificate. Refused: plaintext, no
client certificate, a certificate of another CA, an expired one, and a valid certificate of a
service that is not among the callers of the service dialled. Served: movie -> metadata, rating
and auth, and GetMovieDetails end to end; also after certificate rotations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from argon2 import PasswordHasher
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from scripts.movie.client import open_channel
from scripts.movie.stack import ORDER, MovieStack, auth_metadata
from scripts.vault.throwaway_pki import ThrowawayPki
from services.common import tls
from services.common.config import TlsFiles
from services.common.grpc_credentials import channel_options
from services.genproto import movie_pb2, movie_pb2_grpc

pytestmark = pytest.mark.integration

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
MATRIX = movie_pb2.Metadata(id="tt1", title="The Matrix", description="red pill", director="Wachowskis")
TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def pki() -> ThrowawayPki:
    return ThrowawayPki("grpc-mtls-test")


@pytest.fixture(scope="module")
def other_pki() -> ThrowawayPki:
    return ThrowawayPki("someone-else")


@pytest.fixture
async def stack(pki: ThrowawayPki, tmp_path: Path) -> AsyncIterator[MovieStack]:
    secrets = tmp_path / "tls"
    env = {name: pki.write(secrets / name, name).as_environment() for name in ORDER}
    operator = pki.write(secrets / "operator", "operator")
    running = await MovieStack(tmp_path / "state", env=env, hasher=CHEAP, client_tls=operator).start()
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def token(stack: MovieStack) -> str:
    return await stack.token()  # over mTLS, as the operator


def metadata_stub(channel: grpc.aio.Channel) -> Any:
    stub_class: Any = movie_pb2_grpc.MetadataServiceStub  # generated: no annotations
    return stub_class(channel)


def movie_stub(channel: grpc.aio.Channel) -> Any:
    stub_class: Any = movie_pb2_grpc.MovieServiceStub
    return stub_class(channel)


async def get_metadata(channel: grpc.aio.Channel, token: str, movie_id: str = "tt1") -> Any:
    async with channel:
        return await metadata_stub(channel).GetMetadata(
            movie_pb2.GetMetadataRequest(movie_id=movie_id), metadata=auth_metadata(token), timeout=TIMEOUT_S
        )


async def put_matrix(stack: MovieStack, token: str) -> None:
    async with stack.channel("metadata") as channel:
        await metadata_stub(channel).PutMetadata(
            movie_pb2.PutMetadataRequest(metadata=MATRIX), metadata=auth_metadata(token), timeout=TIMEOUT_S
        )


async def details(stack: MovieStack, token: str, identity: TlsFiles | None = None) -> Any:
    async with stack.channel("movie", identity) as channel:
        response = await movie_stub(channel).GetMovieDetails(
            movie_pb2.GetMovieDetailsRequest(movie_id="tt1"), metadata=auth_metadata(token), timeout=TIMEOUT_S
        )
    return response.movie_details


def refused_at_handshake(exc: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> bool:
    # A failed handshake never reaches a handler: the client sees the connection fail.
    return bool(exc.value.code() == grpc.StatusCode.UNAVAILABLE)


async def test_a_plaintext_client_is_refused(stack: MovieStack, token: str) -> None:
    for name in ORDER:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            async with grpc.aio.insecure_channel(stack.address(name)) as channel:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S)
        assert refused_at_handshake(exc), name


async def test_a_client_without_a_certificate_is_refused(stack: MovieStack, pki: ThrowawayPki, token: str) -> None:
    # It trusts the platform CA (so it could verify the server) but presents no certificate.
    anonymous = grpc.ssl_channel_credentials(root_certificates=pki.ca_pem)
    channel = grpc.aio.secure_channel(
        stack.address("metadata"), anonymous, options=channel_options("metadata.service.consul")
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await get_metadata(channel, token)
    assert refused_at_handshake(exc)


async def test_a_certificate_from_another_ca_is_refused(
    stack: MovieStack, pki: ThrowawayPki, other_pki: ThrowawayPki, tmp_path: Path, token: str
) -> None:
    intruder = other_pki.write(tmp_path / "intruder", "movie")  # claims to be movie
    intruder.ca.write_bytes(pki.ca_pem)  # and trusts our CA, so only its own certificate is wrong
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await get_metadata(open_channel(stack.address("metadata"), "metadata", intruder), token)
    assert refused_at_handshake(exc)


async def test_an_expired_certificate_is_refused(
    stack: MovieStack, pki: ThrowawayPki, tmp_path: Path, token: str
) -> None:
    expired = pki.write(tmp_path / "expired", "movie", expired=True)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await get_metadata(open_channel(stack.address("metadata"), "metadata", expired), token)
    assert refused_at_handshake(exc)


@pytest.mark.parametrize("caller", ["rating", "hello"])
async def test_a_service_not_allowed_to_call_metadata_is_refused(
    stack: MovieStack, pki: ThrowawayPki, tmp_path: Path, token: str, caller: str
) -> None:
    await put_matrix(stack, token)
    assert caller not in tls.allowed_callers("metadata")
    files = pki.write(tmp_path / caller, caller)  # a genuine, valid platform certificate
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await get_metadata(stack.channel("metadata", files), token)
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not call metadata" in (exc.value.details() or "")
    # Reflection describes the API: checked too. Health only says "up": any platform certificate.
    async with stack.channel("metadata", files) as channel:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refl:
            async for _ in reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT_S
            ):
                pass
        assert refl.value.code() == grpc.StatusCode.PERMISSION_DENIED
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    # The refusal is visible in metadata's own metrics.
    labels = {"service": "metadata", "grpc_method": "GetMetadata", "grpc_code": "PermissionDenied"}
    denied = stack.running["metadata"].metrics.get_sample_value(
        "grpc_server_handled_total", {**labels, "grpc_service": "firedrill.movie.v1.MetadataService"}
    )
    assert denied == 1


async def test_movie_may_call_metadata_and_the_operator_may_call_every_service(
    stack: MovieStack, pki: ThrowawayPki, tmp_path: Path, token: str
) -> None:
    await put_matrix(stack, token)
    movie = pki.write(tmp_path / "movie-client", "movie")
    assert (await get_metadata(stack.channel("metadata", movie), token)).metadata == MATRIX
    # The operator (an observer) is served everywhere, the movie API included.
    for name in ORDER:
        async with stack.channel(name) as channel:
            answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_get_movie_details_end_to_end_over_mtls(stack: MovieStack, token: str) -> None:
    await put_matrix(stack, token)
    async with stack.channel("movie") as channel:
        await movie_stub(channel).RateMovie(
            movie_pb2.RateMovieRequest(movie_id="tt1", rating_value=5), metadata=auth_metadata(token), timeout=TIMEOUT_S
        )
    answer = await details(stack, token)
    assert answer.metadata == MATRIX  # movie -> metadata over mTLS
    assert answer.rating_available  # movie -> rating over mTLS
    assert answer.rating == 5.0
    # movie -> auth over mTLS: the token was confirmed by auth, not by the local fallback.
    movie_metrics = stack.running["movie"].metrics
    assert (movie_metrics.get_sample_value("movie_token_validations_total", {"outcome": "auth"}) or 0) >= 1
    assert not movie_metrics.get_sample_value("movie_token_validations_total", {"outcome": "local_fallback"})


async def test_movie_refuses_an_upstream_presenting_another_service_name(stack: MovieStack, token: str) -> None:
    from services.common.discovery.base import Instance

    await put_matrix(stack, token)
    # Discovery is tampered with: "metadata" now points at rating's port. rating's certificate is
    # valid and from the platform CA, but it does not name metadata, so movie does not talk to it.
    real = stack.running["metadata"].instance
    await stack.registry.deregister(real)
    rating = stack.running["rating"].instance
    await stack.registry.register(Instance("metadata", "fake-metadata", rating.host, rating.port, {}))
    stack.running["movie"].app.upstreams[0].forget()
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await details(stack, token)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_rotations_need_no_restart(stack: MovieStack, pki: ThrowawayPki, token: str) -> None:
    await put_matrix(stack, token)
    assert (await details(stack, token)).metadata == MATRIX
    movie, metadata = stack.running["movie"], stack.running["metadata"]
    assert movie.material is not None
    assert metadata.material is not None
    # movie's client certificate is renewed: its upstream channels are rebuilt with it.
    before = [upstream.generation for upstream in movie.app.upstreams]
    pki.write(movie.material.files.cert.parent, "movie", valid_for=dt.timedelta(hours=2))
    assert movie.material.reload_if_changed()
    assert [upstream.generation for upstream in movie.app.upstreams] == [g + 1 for g in before]
    assert (await details(stack, token)).metadata == MATRIX
    # metadata's server certificate is renewed: the next handshakes get it; calls keep working.
    old_serial = metadata.material.snapshot.serial
    pki.write(metadata.material.files.cert.parent, "metadata")
    assert metadata.material.reload_if_changed()
    assert metadata.material.snapshot.serial != old_serial
    movie.material.reload()  # a new handshake from movie to metadata, with the new server certificate
    assert (await details(stack, token)).metadata == MATRIX
