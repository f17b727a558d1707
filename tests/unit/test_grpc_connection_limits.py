"""The connection limits of every gRPC server (``ConnectionLimits``), held against idle and silent clients."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from services.common.grpc_server import ConnectionLimits, GrpcServer, ServerOptions
from services.common.waiting import wait_until_async

HOST = "127.0.0.1"
LIMITS = ConnectionLimits(handshake_timeout_s=1.0, idle_timeout_s=1.0)
MARGIN_S = 5.0


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server = GrpcServer(
        "metadata", ServerOptions(instrumentation=False, metrics_registry=CollectorRegistry(), connection_limits=LIMITS)
    )
    bound = await server.start(HOST, 0)
    try:
        yield bound
    finally:
        await server.stop(0)


async def test_a_client_that_never_sends_the_http2_preface_is_cut(port: int) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        with contextlib.suppress(ConnectionError):  # a reset is a cut too
            await asyncio.wait_for(reader.read(), timeout=LIMITS.handshake_timeout_s + MARGIN_S)
    finally:
        writer.close()


async def test_an_idle_connection_is_closed_by_the_server(port: int) -> None:
    async with grpc.aio.insecure_channel(f"{HOST}:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=MARGIN_S)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        assert channel.get_state() == grpc.ChannelConnectivity.READY
        await wait_until_async(
            lambda: channel.get_state() == grpc.ChannelConnectivity.IDLE,
            timeout_s=LIMITS.idle_timeout_s + MARGIN_S,
            what="the server to close the idle connection",
        )
        again = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=MARGIN_S)
        assert again.status == health_pb2.HealthCheckResponse.SERVING
