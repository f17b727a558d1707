"""The OTLP path as the cluster uses it: services export spans over OTLP/gRPC to a collector.

Each service runs as its own process (scripts/processes.py), with OTEL_EXPORTER_OTLP_ENDPOINT set to
``http://<address>:<port>`` like the Nomad jobs' upstreams.env, and an OTLP/gRPC trace receiver in
this test stands in for the collector. One request per tree with a known, sampled traceparent; the
trees are rebuilt from what arrived over the wire.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import grpc.aio
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from scripts.processes import ServiceProcess, stop_all
from services.common.waiting import wait_until_async
from services.genproto import auth_pb2, auth_pb2_grpc, movie_pb2, movie_pb2_grpc

pytestmark = pytest.mark.integration

SERVER: int = trace_pb2.Span.SPAN_KIND_SERVER
CLIENT: int = trace_pb2.Span.SPAN_KIND_CLIENT
UNSET: int = trace_pb2.Status.STATUS_CODE_UNSET
ERROR: int = trace_pb2.Status.STATUS_CODE_ERROR
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: int
    status: int
    trace_id: str
    span_id: str
    parent_id: str


class TraceReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """What a collector's OTLP/gRPC receiver accepts, kept as flat spans."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            service=attributes.get("service.name", ""),
                            name=span.name,
                            kind=span.kind,
                            status=span.status.code,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.trace_id == trace_id]


@dataclass
class Services:
    receiver: TraceReceiver
    state_dir: Path
    otlp_port: int
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def start(self, *names: str) -> None:
        """Start services (in this order) exporting to the receiver, as the cluster's upstreams.env sets it."""
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.otlp_port}",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export promptly; the default batches for 5 s
        }
        for name in names:
            # Kept before it starts, so the fixture stops it even if it never becomes healthy.
            process = self.processes[name] = ServiceProcess(name, self.state_dir, log_level="INFO", env=env)
            process.start()


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    collected = TraceReceiver()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collected, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    running = Services(collected, tmp_path, port)
    try:
        yield running
    finally:
        await asyncio.to_thread(stop_all, running.processes.values())
        await server.stop(0)


def traceparent() -> tuple[str, str, str]:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent, f"00-{trace_id}-{parent}-01"


async def spans_of(receiver: TraceReceiver, trace_id: str, expected: set[tuple[str, str, int]]) -> list[ReceivedSpan]:
    """The spans of ``trace_id`` once every (service, name, kind) in ``expected`` has arrived."""

    async def arrived() -> list[ReceivedSpan] | None:
        spans = receiver.trace(trace_id)
        return spans if {(s.service, s.name, s.kind) for s in spans} >= expected else None

    found: list[ReceivedSpan] = await wait_until_async(arrived, timeout_s=20, what=f"spans of trace {trace_id}")
    return found


def only(spans: list[ReceivedSpan], service: str, name: str, kind: int) -> ReceivedSpan:
    matching = [s for s in spans if (s.service, s.name, s.kind) == (service, name, kind)]
    assert len(matching) == 1, (service, name, kind, spans)
    return matching[0]


async def test_hello_to_response_tree_arrives_over_otlp(services: Services) -> None:
    await asyncio.to_thread(services.start, "response", "hello")
    trace_id, parent, header = traceparent()
    hello = services.processes["hello"]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{hello.address}/hello", headers={"traceparent": header}) as answer:
            assert answer.status == 200
        async with session.get(hello.ops_url("/metrics"), headers={"Accept": OPENMETRICS}) as scrape:
            exposition = await scrape.text()
    spans = await spans_of(
        services.receiver,
        trace_id,
        {("hello", "GET /hello", SERVER), ("hello", "GET", CLIENT), ("response", "GET /response", SERVER)},
    )
    hello_server = only(spans, "hello", "GET /hello", SERVER)
    hello_client = only(spans, "hello", "GET", CLIENT)
    response_server = only(spans, "response", "GET /response", SERVER)
    assert hello_server.parent_id == parent
    assert hello_client.parent_id == hello_server.span_id
    assert response_server.parent_id == hello_client.span_id
    assert {s.status for s in spans} == {UNSET}
    assert f'trace_id="{trace_id}"' in exposition, "hello's latency exemplar carries the trace id"


async def test_json_logs_carry_the_trace_id_that_was_exported(services: Services) -> None:
    await asyncio.to_thread(services.start, "response")
    trace_id, _, header = traceparent()
    response = services.processes["response"]
    marker = f"otlp-log-{secrets.token_hex(4)}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://{response.address}/log",
            json={"level": "warning", "message": marker},
            headers={"traceparent": header},
        ) as answer,
    ):
        assert answer.status == 202
    spans = await spans_of(services.receiver, trace_id, {("response", "POST /log", SERVER)})

    def logged() -> dict[str, Any] | None:
        for line in response.log_file.read_text().splitlines():
            if marker in line:
                entry: dict[str, Any] = json.loads(line)
                return entry
        return None

    entry = await wait_until_async(lambda: asyncio.to_thread(logged), timeout_s=10, what="the log line")
    assert entry["trace_id"] == trace_id
    assert entry["span_id"] == only(spans, "response", "POST /log", SERVER).span_id


DETAILS = "/firedrill.movie.v1.MovieService/GetMovieDetails"
MOVIE_CALLS = {
    "metadata": "/firedrill.movie.v1.MetadataService/GetMetadata",
    "rating": "/firedrill.movie.v1.RatingService/GetAggregatedRating",
    "auth": "/firedrill.auth.v1.AuthService/ValidateToken",
}


async def movie_bearer(services: Services) -> tuple[str, str]:
    """The movie services started, and the demo user's token as gRPC metadata."""
    await asyncio.to_thread(services.start, "auth", "metadata", "rating", "movie")
    password = (services.state_dir / "secrets" / "auth" / "demo-password").read_text().strip()
    async with grpc.aio.insecure_channel(services.processes["auth"].address) as channel:
        auth: Any = auth_pb2_grpc.AuthServiceStub(channel)
        token = (await auth.GetToken(auth_pb2.GetTokenRequest(username="demo", password=password), timeout=10)).token
    return ("authorization", f"Bearer {token}")


async def movie_details(services: Services, bearer: tuple[str, str], movie_id: str, header: str) -> None:
    async with grpc.aio.insecure_channel(services.processes["movie"].address) as channel:
        movie: Any = movie_pb2_grpc.MovieServiceStub(channel)
        await movie.GetMovieDetails(
            movie_pb2.GetMovieDetailsRequest(movie_id=movie_id), metadata=(bearer, ("traceparent", header)), timeout=5
        )


async def test_movie_tree_reaches_metadata_rating_and_auth(services: Services) -> None:
    bearer = await movie_bearer(services)
    record = movie_pb2.Metadata(id="tt1", title="The Matrix", description="red pill", director="Wachowskis")
    async with grpc.aio.insecure_channel(services.processes["metadata"].address) as channel:
        metadata: Any = movie_pb2_grpc.MetadataServiceStub(channel)
        await metadata.PutMetadata(movie_pb2.PutMetadataRequest(metadata=record), metadata=(bearer,), timeout=5)

    trace_id, parent, header = traceparent()
    await movie_details(services, bearer, "tt1", header)
    details, calls = DETAILS, MOVIE_CALLS
    expected = {("movie", details, SERVER)}
    expected |= {("movie", name, CLIENT) for name in calls.values()}
    expected |= {(service, name, SERVER) for service, name in calls.items()}
    spans = await spans_of(services.receiver, trace_id, expected)

    root = only(spans, "movie", details, SERVER)
    assert root.parent_id == parent
    for service, name in calls.items():
        client = only(spans, "movie", name, CLIENT)
        server = only(spans, service, name, SERVER)
        assert client.parent_id == root.span_id, name
        assert server.parent_id == client.span_id, name
    assert {s.status for s in spans} == {UNSET}


async def test_status_codes_follow_the_grpc_conventions(services: Services) -> None:
    """NOT_FOUND is the caller's error (client span ERROR), not a failure of the servers (UNSET)."""
    bearer = await movie_bearer(services)
    trace_id, parent, header = traceparent()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await movie_details(services, bearer, "no-such-movie", header)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    lookup = MOVIE_CALLS["metadata"]
    spans = await spans_of(
        services.receiver,
        trace_id,
        {("movie", DETAILS, SERVER), ("movie", lookup, CLIENT), ("metadata", lookup, SERVER)},
    )
    root = only(spans, "movie", DETAILS, SERVER)
    client = only(spans, "movie", lookup, CLIENT)
    server = only(spans, "metadata", lookup, SERVER)
    assert root.parent_id == parent
    assert (client.parent_id, server.parent_id) == (root.span_id, client.span_id)
    assert (root.status, client.status, server.status) == (UNSET, ERROR, UNSET)
