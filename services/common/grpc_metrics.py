"""The gRPC half of the metric contract (docs/architecture.md, "Metric contract"), server and client, in one module.

Server: ``grpc_server_started_total``, ``grpc_server_handled_total`` and the
``grpc_server_handling_seconds`` histogram; client: ``grpc_client_handled_total`` and
``grpc_client_handling_seconds``. Every series carries ``service`` (who reports), plus
``grpc_service`` and ``grpc_method`` (bounded: only methods the server implements, never what a
caller typed) and, for the counters, ``grpc_code``. Histogram observations carry the trace id as
an exemplar. Label children are created once and cached, as in ``services.common.metrics``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import grpc.aio
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from services.common.errors import DomainError
from services.common.grpc_handlers import MethodName, UnaryBehavior, wrap_handler
from services.common.grpc_status import code_name, status_code
from services.common.metrics import LATENCY_BUCKETS
from services.common.telemetry import current_trace_id


class _HandledMetrics:
    """A handled counter + latency histogram pair with cached children."""

    def __init__(self, service: str, side: str, registry: CollectorRegistry) -> None:
        self._service = service
        self._handled = Counter(
            f"grpc_{side}_handled_total",
            f"gRPC calls completed on the {side} side, by method and status code.",
            ["service", "grpc_service", "grpc_method", "grpc_code"],
            registry=registry,
        )
        self._seconds = Histogram(
            f"grpc_{side}_handling_seconds",
            f"Time to complete a gRPC call on the {side} side, by method.",
            ["service", "grpc_service", "grpc_method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._counters: dict[tuple[MethodName, grpc.StatusCode], Counter] = {}
        self._histograms: dict[MethodName, Histogram] = {}

    def _counter(self, name: MethodName, code: grpc.StatusCode) -> Counter:
        counter = self._counters.get((name, code))
        if counter is None:
            counter = self._handled.labels(self._service, name.service, name.method, code_name(code))
            self._counters[(name, code)] = counter
        return counter

    def handled(self, name: MethodName, code: grpc.StatusCode, seconds: float) -> None:
        counter = self._counters.get((name, code))
        if counter is None:
            counter = self._counter(name, code)
        histogram = self._histograms.get(name)
        if histogram is None:
            histogram = self._seconds.labels(self._service, name.service, name.method)
            self._histograms[name] = histogram
        counter.inc()
        trace_id = current_trace_id()
        histogram.observe(seconds, {"trace_id": trace_id} if trace_id else None)


# Server errors exported at 0 for every method before the first one: ``rate()`` ignores a series'
# first sample, so a series born at 1 would hide a new process's first failure (see
# HttpServerMetrics.declare). The codes a failing handler ends with: Internal (an unexpected
# exception, services.common.grpc_status) and Unavailable (a dependency down).
DECLARED_ERROR_CODES = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE)


class GrpcServerMetrics(_HandledMetrics):
    def __init__(self, service: str, registry: CollectorRegistry = REGISTRY) -> None:
        super().__init__(service, "server", registry)
        self._started = Counter(
            "grpc_server_started_total",
            "gRPC calls started on the server side, by method.",
            ["service", "grpc_service", "grpc_method"],
            registry=registry,
        )
        self._started_children: dict[MethodName, Counter] = {}

    def declare(self, name: MethodName) -> None:
        for code in DECLARED_ERROR_CODES:
            self._counter(name, code)

    def started(self, name: MethodName) -> None:
        child = self._started_children.get(name)
        if child is None:
            child = self._started.labels(self._service, name.service, name.method)
            self._started_children[name] = child
        child.inc()


class GrpcClientMetrics(_HandledMetrics):
    def __init__(self, service: str, registry: CollectorRegistry = REGISTRY) -> None:
        super().__init__(service, "client", registry)


def _final_code(context: Any, default: grpc.StatusCode) -> grpc.StatusCode:
    try:
        code = context.code()
    except Exception:  # an odd context must not break the call being measured
        return default
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return next((c for c in grpc.StatusCode if c.value[0] == code), default)
    return default


class ServerMetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Counts and times every application call; sits outside error translation to see final codes."""

    def __init__(self, metrics: GrpcServerMetrics) -> None:
        self._metrics = metrics

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        name = MethodName.parse(details.method)
        if handler is None or name.is_system:
            return handler
        metrics = self._metrics

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def measured(request: Any, context: Any) -> Any:
                metrics.started(name)
                started = time.perf_counter()
                code = grpc.StatusCode.UNKNOWN
                try:
                    response = await behavior(request, context)
                    code = _final_code(context, grpc.StatusCode.OK)
                    return response
                except grpc.aio.AbortError:
                    code = _final_code(context, grpc.StatusCode.UNKNOWN)
                    raise
                except DomainError as exc:
                    code = status_code(exc)
                    raise
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                finally:
                    metrics.handled(name, code, time.perf_counter() - started)

            return measured

        return wrap_handler(handler, unary=unary)


def _client_code(exc: BaseException) -> grpc.StatusCode:
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code()
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


class _ClientMetricsBase:
    def __init__(self, metrics: GrpcClientMetrics) -> None:
        self._metrics = metrics

    async def _measure(self, continuation: Any, details: Any, request: Any) -> Any:
        name = MethodName.parse(details.method)
        started = time.perf_counter()
        try:
            call = await continuation(details, request)
            code = await call.code()
        except BaseException as exc:
            self._metrics.handled(name, _client_code(exc), time.perf_counter() - started)
            raise
        self._metrics.handled(name, code, time.perf_counter() - started)
        return call


class UnaryUnaryClientMetrics(_ClientMetricsBase, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await self._measure(continuation, client_call_details, request)


class StreamUnaryClientMetrics(_ClientMetricsBase, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await self._measure(continuation, client_call_details, request_iterator)


def client_metrics_interceptors(metrics: GrpcClientMetrics) -> list[Any]:
    return [UnaryUnaryClientMetrics(metrics), StreamUnaryClientMetrics(metrics)]
