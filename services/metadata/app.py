"""Wiring: repository, cache, controller and handler on a gRPC server with the shared plumbing."""

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
from services.metadata.cache import TtlCache
from services.metadata.config import MetadataConfig
from services.metadata.controller import MetadataController
from services.metadata.handler import MetadataServicer
from services.metadata.model import Metadata
from services.metadata.repository import MetadataRepository, SqliteMetadataRepository

SERVICE_NAME = movie_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name


MetadataApp = StoreBackedService[MetadataRepository]


async def build(
    config: MetadataConfig,
    *,
    tracer_provider: TracerProvider | None = None,
    metrics_registry: CollectorRegistry = REGISTRY,
    tls_material: tls.TlsMaterial | None = None,
    repository: MetadataRepository | None = None,
) -> MetadataApp:
    repo = repository if repository is not None else await SqliteMetadataRepository.open(config.database)
    cache: TtlCache[str, Metadata] = TtlCache(config.cache_max_entries, config.cache_ttl_s)
    fault = LatencyFault(config.fault_latency_ms)
    verifier = TokenVerifier(FileKeySource(config.public_keys_file), config.tokens)
    server = catalog_server(
        "metadata",
        config.service,
        tracer_provider=tracer_provider,
        metrics_registry=metrics_registry,
        tls_material=tls_material,
        authenticator=LocalAuthenticator(verifier),
        latency_fault=fault,
    )
    server.add(
        movie_pb2_grpc.add_MetadataServiceServicer_to_server,
        MetadataServicer(MetadataController(repo, cache)),
        SERVICE_NAME,
    )
    return MetadataApp(server, repo, fault)
