"""Wiring: upstream channels through discovery, controller, gRPC handler and HTTP/JSON front.

With TLS material (``FIREDRILL_TLS_*``), every upstream channel (metadata, rating, auth) is mTLS
with movie's certificate and pins the upstream's name (``<upstream>.service.consul``), and the
gRPC API serves only the identities ``tls.grpc_callers("movie")`` names. Python gRPC cannot
swap a channel's certificate in place, so on each rotation the upstream channels are rebuilt
(``DiscoveredChannels.reconfigure``); the HTTP/JSON front stays plain HTTP (it is the edge).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from services.common import tls
from services.common.auth_tokens import FileKeySource, TokenVerifier
from services.common.discovery.base import Registry
from services.common.grpc_client import ClientOptions, DiscoveredChannels, RetryPolicy
from services.common.grpc_credentials import channel_credentials, channel_options
from services.common.grpc_metrics import GrpcClientMetrics
from services.common.grpc_server import GrpcServer, ServerOptions
from services.common.ratelimit import CallerLimits
from services.genproto import auth_pb2_grpc, movie_pb2, movie_pb2_grpc
from services.movie.auth_client import RemoteAuthenticator
from services.movie.config import MovieConfig
from services.movie.controller import MovieController
from services.movie.gateways import AuthGateway, MetadataGateway, RatingGateway
from services.movie.handler import MovieServicer
from services.movie.http import create_http_app
from services.movie.uploads import UploadStore

SERVICE_NAME = movie_pb2.DESCRIPTOR.services_by_name["MovieService"].full_name
UPSTREAMS = ("metadata", "rating", "auth")


@dataclass
class MovieApp:
    server: GrpcServer
    http: web.Application
    controller: MovieController
    rate_limit: CallerLimits
    upstreams: list[DiscoveredChannels]

    async def close(self) -> None:
        for upstream in self.upstreams:
            await upstream.close()


def build(
    config: MovieConfig,
    registry: Registry,
    *,
    tracer_provider: TracerProvider | None = None,
    metrics_registry: CollectorRegistry = REGISTRY,
    tls_material: tls.TlsMaterial | None = None,
) -> MovieApp:
    instrumentation = config.service.instrumentation
    client = ClientOptions(
        instrumentation=instrumentation,
        tracer_provider=tracer_provider,
        metrics=GrpcClientMetrics("movie", metrics_registry) if instrumentation else None,
    )

    def options_for(upstream: str, material: tls.TlsMaterial | None) -> ClientOptions:
        if material is None:
            return client
        return replace(
            client,
            channel_credentials=channel_credentials(material),
            channel_options=tuple(channel_options(tls.service_dns_name(upstream))),
        )

    cache_age_s = config.service.timing.heartbeat_interval_s
    stubs = {
        "metadata": movie_pb2_grpc.MetadataServiceStub,
        "rating": movie_pb2_grpc.RatingServiceStub,
        "auth": auth_pb2_grpc.AuthServiceStub,
    }
    upstreams = {
        name: DiscoveredChannels(name, registry, options_for(name, tls_material), stubs[name], cache_age_s=cache_age_s)
        for name in UPSTREAMS
    }
    metadata, rating, auth = (upstreams[name] for name in UPSTREAMS)
    if tls_material is not None:

        def rebuild_channels(material: tls.TlsMaterial) -> None:
            for name, channels in upstreams.items():
                channels.reconfigure(options_for(name, material))

        tls_material.on_reload(rebuild_channels)
    policy = RetryPolicy(attempts=config.attempts, attempt_timeout_s=config.attempt_timeout_s)
    controller = MovieController(
        MetadataGateway(metadata, policy),
        RatingGateway(rating, policy),
        UploadStore(config.uploads_dir, config.upload_max_bytes),
        rating_budget_s=config.rating_budget_s,
        metrics_registry=metrics_registry,
    )
    authenticator = RemoteAuthenticator(
        TokenVerifier(FileKeySource(config.public_keys_file), config.tokens),
        AuthGateway(auth, policy),
        cache_ttl_s=config.token_cache_ttl_s,
        metrics_registry=metrics_registry,
    )
    # One set of budgets for both fronts: a caller cannot double its budget by switching protocol.
    limits = CallerLimits(
        config.rate_limit,
        config.caller_rate_limit,
        config.anonymous_rate_limit,
        max_keys=config.rate_limit_max_keys,
    )
    server = GrpcServer(
        "movie",
        ServerOptions(
            instrumentation=instrumentation,
            tracer_provider=tracer_provider,
            metrics_registry=metrics_registry,
            authenticator=authenticator,
            rate_limit=limits,
            allowed_peers=tls.grpc_callers("movie") if tls_material is not None else None,
        ),
    )
    server.add(
        movie_pb2_grpc.add_MovieServiceServicer_to_server,
        MovieServicer(controller, config.default_deadline_s),
        SERVICE_NAME,
    )
    http = create_http_app(
        controller,
        authenticator,
        limits,
        service=config.service,
        default_deadline_s=config.default_deadline_s,
        tracer_provider=tracer_provider,
        registry=metrics_registry,
    )
    return MovieApp(server, http, controller, limits, [metadata, rating, auth])
