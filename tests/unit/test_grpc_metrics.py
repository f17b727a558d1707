"""The gRPC server's metrics before any call: every method's error series exist at 0."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.common.grpc_server import GrpcServer, ServerOptions
from services.genproto import movie_pb2, movie_pb2_grpc

RATING = movie_pb2.DESCRIPTOR.services_by_name["RatingService"]


async def test_every_method_exports_its_error_series_at_zero_from_the_start() -> None:
    """rate() ignores a series' first sample: an error series born at 1 would hide the first failure
    of a new instance (a canary) from the error-ratio rules and the canary analysis."""
    registry = CollectorRegistry()
    server = GrpcServer("rating", ServerOptions(metrics_registry=registry))
    server.add(
        movie_pb2_grpc.add_RatingServiceServicer_to_server, movie_pb2_grpc.RatingServiceServicer(), RATING.full_name
    )
    for method in RATING.methods:
        labels = {"service": "rating", "grpc_service": RATING.full_name, "grpc_method": method.name}
        for code in ("Internal", "Unavailable"):
            assert registry.get_sample_value("grpc_server_handled_total", {**labels, "grpc_code": code}) == 0
        assert registry.get_sample_value("grpc_server_handled_total", {**labels, "grpc_code": "OK"}) is None


async def test_without_instrumentation_nothing_is_declared() -> None:
    registry = CollectorRegistry()
    server = GrpcServer("rating", ServerOptions(instrumentation=False, metrics_registry=registry))
    server.add(
        movie_pb2_grpc.add_RatingServiceServicer_to_server, movie_pb2_grpc.RatingServiceServicer(), RATING.full_name
    )
    assert not [s for family in registry.collect() for s in family.samples if s.name.startswith("grpc_server")]
