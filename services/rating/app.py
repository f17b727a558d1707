"""Wiring: repository, controller and handler on a gRPC server with the shared plumbing."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from services.common import tls
from services.common.auth_tokens import FileKeySource, TokenVerifier
from services.common.grpc_auth import LocalAuthenticator
from services.common.grpc_latency_fault import LatencyFault
from services.common.grpc_server import catalog_server
from services.common.grpc_service import StoreBackedService
from services.genproto import movie_pb2, movie_pb2_grpc
from services.rating.config import RatingConfig
from services.rating.controller import RatingController
from services.rating.handler import RatingServicer
from services.rating.repository import RatingRepository, SqliteRatingRepository

SERVICE_NAME = movie_pb2.DESCRIPTOR.services_by_name["RatingService"].full_name


RatingApp = StoreBackedService[RatingRepository]


async def build(
    config: RatingConfig,
    *,
    tracer_provider: TracerProvider | None = None,
    metrics_registry: CollectorRegistry = REGISTRY,
    tls_material: tls.TlsMaterial | None = None,
    repository: RatingRepository | None = None,
) -> RatingApp:
    repo = repository if repository is not None else await SqliteRatingRepository.open(config.database)
    fault = LatencyFault(config.fault_latency_ms)
    verifier = TokenVerifier(FileKeySource(config.public_keys_file), config.tokens)
    server = catalog_server(
        "rating",
        config.service,
        tracer_provider=tracer_provider,
        metrics_registry=metrics_registry,
        tls_material=tls_material,
        authenticator=LocalAuthenticator(verifier),
        latency_fault=fault,
    )
    server.add(movie_pb2_grpc.add_RatingServiceServicer_to_server, RatingServicer(RatingController(repo)), SERVICE_NAME)
    return RatingApp(server, repo, fault)
