"""The four movie services over real gRPC on loopback, started in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import grpc.aio
import pytest
from argon2 import PasswordHasher
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from prometheus_client import CollectorRegistry

from scripts.movie.stack import MovieStack, auth_metadata
from services.common.discovery.base import Instance
from services.common.waiting import wait_until_async
from services.genproto import movie_pb2, movie_pb2_grpc

pytestmark = pytest.mark.integration

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
MATRIX = movie_pb2.Metadata(id="tt1", title="The Matrix", description="red pill", director="Wachowskis")


async def start_stack(tmp_path: Path, **kwargs: Any) -> MovieStack:
    return await MovieStack(tmp_path, hasher=CHEAP, **kwargs).start()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[MovieStack]:
    running = await start_stack(tmp_path)
    yield running
    await running.close()


def server_calls(
    metrics: CollectorRegistry, method: str, metric: str = "grpc_server_handled_total"
) -> dict[str, float]:
    """A service's own count of the calls to ``method`` it started or handled: by grpc_code, or "" for started.
    Series at 0 (the error codes every method exports from start-up) are left out."""
    counts: dict[str, float] = {}
    for family in metrics.collect():
        for sample in family.samples:
            if sample.name == metric and sample.labels.get("grpc_method") == method and sample.value:
                code = sample.labels.get("grpc_code", "")
                counts[code] = counts.get(code, 0.0) + sample.value
    return counts


def rating_fallbacks(stack: MovieStack) -> dict[str, float]:
    """movie_rating_fallbacks_total by reason: details the gateway served without a rating."""
    return {
        sample.labels["reason"]: sample.value
        for family in stack.running["movie"].metrics.collect()
        for sample in family.samples
        if sample.name == "movie_rating_fallbacks_total"
    }


class Client:
    def __init__(self, stack: MovieStack, token: str) -> None:
        self.stack = stack
        self.token = token
        self.metadata = auth_metadata(token)
        self._channels: list[grpc.aio.Channel] = []

    def channel(self, service: str) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(self.stack.address(service))
        self._channels.append(channel)
        return channel

    def movie(self) -> Any:
        return movie_pb2_grpc.MovieServiceStub(self.channel("movie"))

    async def put_movie(self, record: movie_pb2.Metadata = MATRIX) -> None:
        stub = movie_pb2_grpc.MetadataServiceStub(self.channel("metadata"))
        await stub.PutMetadata(movie_pb2.PutMetadataRequest(metadata=record), metadata=self.metadata, timeout=5)

    async def details(self, movie_id: str = "tt1", deadline_s: float = 2.0) -> movie_pb2.MovieDetails:
        """GetMovieDetails with ``deadline_s`` as the gRPC deadline the caller sends (and movie propagates)."""
        response = await self.movie().GetMovieDetails(
            movie_pb2.GetMovieDetailsRequest(movie_id=movie_id), metadata=self.metadata, timeout=deadline_s
        )
        details: movie_pb2.MovieDetails = response.movie_details
        return details

    async def rate(self, value: int, movie_id: str = "tt1") -> None:
        await self.movie().RateMovie(
            movie_pb2.RateMovieRequest(movie_id=movie_id, rating_value=value), metadata=self.metadata, timeout=5
        )

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


@pytest.fixture
async def client(stack: MovieStack) -> AsyncIterator[Client]:
    c = Client(stack, await stack.token())
    yield c
    await c.close()


async def test_details_combine_metadata_and_rating(client: Client) -> None:
    await client.put_movie()
    first = await client.details()
    assert not first.HasField("rating")  # no rating yet
    assert first.rating_available
    await client.rate(4)
    await client.rate(2)  # same user again: replaces, never double counts
    details = await client.details()
    assert details.metadata == MATRIX
    assert details.rating == 2.0
    assert details.rating_count == 1


async def test_http_front(client: Client, stack: MovieStack) -> None:
    await client.put_movie()
    headers = {"Authorization": f"Bearer {client.token}"}
    async with aiohttp.ClientSession() as session:
        async with session.put(stack.http_url("/movies/tt1/ratings"), json={"rating": 5}, headers=headers) as r:
            assert r.status == 200
        async with session.get(stack.http_url("/movies/tt1"), headers=headers) as r:
            assert r.status == 200
            body = await r.json()
        assert body["title"] == "The Matrix"
        assert body["rating"] == 5.0
        async with session.get(stack.http_url("/movies/unknown"), headers=headers) as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "not_found"
        async with session.get(stack.http_url("/movies/tt1")) as r:
            assert r.status == 401
        async with session.put(stack.http_url("/movies/tt1/ratings"), json={"rating": 9}, headers=headers) as r:
            assert r.status == 400
        async with session.put(stack.http_url("/movies/tt1/ratings"), data=b"[", headers=headers) as r:
            assert r.status == 400


async def test_unknown_movie_is_not_found(client: Client) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.details("nope")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("service", ["metadata", "rating", "movie"])
async def test_calls_without_a_valid_token_are_unauthenticated(client: Client, service: str) -> None:
    channel = client.channel(service)
    method = {
        "metadata": ("/firedrill.movie.v1.MetadataService/GetMetadata", movie_pb2.GetMetadataRequest(movie_id="x")),
        "rating": (
            "/firedrill.movie.v1.RatingService/GetAggregatedRating",
            movie_pb2.GetAggregatedRatingRequest(record_id="x", record_type=movie_pb2.RECORD_TYPE_MOVIE),
        ),
        "movie": ("/firedrill.movie.v1.MovieService/GetMovieDetails", movie_pb2.GetMovieDetailsRequest(movie_id="x")),
    }[service]
    call = channel.unary_unary(method[0], request_serializer=lambda m: m.SerializeToString())
    for metadata in ((), (("authorization", "Bearer not.a.jwt"),), (("authorization", "Basic abc"),)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(method[1], metadata=metadata, timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_health_and_reflection_on_every_service(client: Client, stack: MovieStack) -> None:
    for service in ("auth", "metadata", "rating", "movie"):
        channel = client.channel(service)
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = [s.name async for r in stream for s in r.list_services_response.service]
        assert any(name.startswith("firedrill.") for name in names), names
        assert "grpc.health.v1.Health" in names


async def test_rate_limit_answers_resource_exhausted(tmp_path: Path) -> None:
    stack = await start_stack(
        tmp_path, env={"movie": {"FIREDRILL_RATE_LIMIT_RPS": "0.1", "FIREDRILL_RATE_LIMIT_BURST": "3"}}
    )
    client = Client(stack, await stack.token())
    try:
        await client.put_movie()
        codes = []
        for _ in range(5):
            try:
                await client.details()
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code())
        assert codes[:3] == [grpc.StatusCode.OK] * 3
        assert codes[3:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {client.token}"}
            async with session.get(stack.http_url("/movies/tt1"), headers=headers) as r:
                assert r.status == 429
    finally:
        await client.close()
        await stack.close()


async def test_caller_deadline_is_propagated(client: Client, stack: MovieStack) -> None:
    await client.put_movie()
    metadata = stack.running["metadata"]
    metadata.app.fault.set(1000)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.details(deadline_s=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # metadata did not run on to the end of its 1 s delay: its call was cancelled at the caller's deadline.
    handled = await wait_until_async(
        lambda: server_calls(metadata.metrics, "GetMetadata"), timeout_s=10, what="metadata to finish the call"
    )
    assert handled == {"Canceled": 1.0}


async def test_stopped_rating_falls_back_then_recovers(client: Client, stack: MovieStack) -> None:
    await client.put_movie()
    await client.rate(5)
    await stack.stop_service("rating")
    # The caller's own deadline bounds the wait: an answer at all came within it.
    details = await client.details(deadline_s=1.0)
    assert not details.HasField("rating")
    assert details.rating_available is False
    assert details.metadata.title == "The Matrix"
    assert rating_fallbacks(stack) == {"UNAVAILABLE": 1.0}

    await stack.start_service("rating")  # same data dir: the rating is still there

    async def rating_back() -> bool:
        again = await client.details(deadline_s=1.0)
        return again.HasField("rating") and again.rating == 5.0

    await wait_until_async(rating_back, timeout_s=10, interval_s=0.05, what="ratings back after restart")


async def test_crashed_rating_still_registered_falls_back_within_deadline(client: Client, stack: MovieStack) -> None:
    await client.put_movie()
    await stack.stop_service("rating", deregister=False)
    # The caller's own deadline bounds the wait: an answer at all came within it.
    details = await client.details(deadline_s=1.0)
    assert details.rating_available is False
    assert sum(rating_fallbacks(stack).values()) == 1


async def test_slow_rating_falls_back_within_budget(client: Client, stack: MovieStack) -> None:
    await client.put_movie()
    rating = stack.running["rating"]
    rating.app.fault.set(3000)
    # Without the 300 ms rating budget the gateway would spend the caller's whole 2 s on rating
    # attempts (800 ms each) and the caller would get DEADLINE_EXCEEDED instead of details.
    details = await client.details(deadline_s=2.0)
    assert details.rating_available is False
    assert rating_fallbacks(stack) == {"DEADLINE_EXCEEDED": 1.0}
    # One rating call, cut by the budget (no retry fitted in it) and cancelled on rating's side.
    assert server_calls(rating.metrics, "GetAggregatedRating", "grpc_server_started_total") == {"": 1.0}
    handled = await wait_until_async(
        lambda: server_calls(rating.metrics, "GetAggregatedRating"), timeout_s=10, what="rating to finish the call"
    )
    assert handled == {"Canceled": 1.0}


async def test_metadata_down_is_unavailable(client: Client, stack: MovieStack) -> None:
    await client.put_movie()
    await stack.stop_service("metadata")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.details(deadline_s=2.0)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {client.token}"}
        async with session.get(stack.http_url("/movies/tt1"), headers=headers) as r:
            assert r.status == 503


async def test_reads_are_retried_on_another_instance(client: Client, stack: MovieStack) -> None:
    """A dead metadata instance in discovery costs a retry, not a failure."""
    await client.put_movie()
    dead = Instance("metadata", "metadata-dead", "127.0.0.1", 9, {"protocol": "grpc"})  # discard port: refused
    await stack.registry.register(dead)
    for _ in range(10):
        assert (await client.details(deadline_s=2.0)).metadata.id == "tt1"


async def test_upload_streams_chunks_to_disk(client: Client, stack: MovieStack, tmp_path: Path) -> None:
    def messages(name: str, parts: int, size: int) -> Any:
        for i in range(parts):
            yield movie_pb2.UploadRequest(filename=name if i == 0 else "", chunk=b"x" * size)

    response = await client.movie().UploadFile(messages("poster.bin", 4, 1000), metadata=client.metadata, timeout=5)
    assert response.size_bytes == 4000
    assert (tmp_path / "data" / "movie" / "uploads" / "poster.bin").stat().st_size == 4000
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.movie().UploadFile(messages("../../escape", 1, 10), metadata=client.metadata, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not (tmp_path / "data" / "escape").exists()


async def test_one_trace_spans_movie_metadata_rating_and_auth(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    stack = await start_stack(tmp_path, tracer_provider=provider)
    client = Client(stack, await stack.token())
    try:
        await client.put_movie()
        exporter.clear()
        await client.details()
        spans = exporter.get_finished_spans()
        root = next(s for s in spans if s.name == "/firedrill.movie.v1.MovieService/GetMovieDetails")
        assert root.context is not None
        in_trace = {s.name for s in spans if s.context is not None and s.context.trace_id == root.context.trace_id}
        for expected in (
            "/firedrill.movie.v1.MetadataService/GetMetadata",
            "/firedrill.movie.v1.RatingService/GetAggregatedRating",
            "/firedrill.auth.v1.AuthService/ValidateToken",
        ):
            assert expected in in_trace, in_trace
    finally:
        await client.close()
        await stack.close()
        provider.shutdown()


async def test_grpc_metrics_follow_the_contract(client: Client, stack: MovieStack) -> None:
    await client.put_movie()
    await client.details()
    with pytest.raises(grpc.aio.AioRpcError):
        await client.details("nope")
    movie = stack.running["movie"].metrics
    labels = {"service": "movie", "grpc_service": "firedrill.movie.v1.MovieService", "grpc_method": "GetMovieDetails"}
    assert movie.get_sample_value("grpc_server_handled_total", {**labels, "grpc_code": "OK"}) == 1
    assert movie.get_sample_value("grpc_server_handled_total", {**labels, "grpc_code": "NotFound"}) == 1
    assert movie.get_sample_value("grpc_server_started_total", labels) == 2
    assert movie.get_sample_value("grpc_server_handling_seconds_count", labels) == 2
    client_labels = {
        "service": "movie",
        "grpc_service": "firedrill.movie.v1.MetadataService",
        "grpc_method": "GetMetadata",
    }
    assert movie.get_sample_value("grpc_client_handled_total", {**client_labels, "grpc_code": "OK"}) == 1
    assert movie.get_sample_value("grpc_client_handling_seconds_count", client_labels) == 2
