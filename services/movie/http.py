"""The plain HTTP/JSON front of the gateway: same controller, same auth, same rate limits (and in
the same order as the gRPC front, ``services.common.ratelimit.CallerLimits``).

Domain errors become HTTP statuses in the shared error middleware (``services.common.http_errors``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from services.common.auth_tokens import InvalidToken
from services.common.config import ServiceConfig
from services.common.errors import InvalidArgument
from services.common.grpc_auth import Authenticator, parse_bearer
from services.common.ratelimit import CallerLimits
from services.common.web import create_base_app, read_json_object
from services.movie.controller import MovieController
from services.movie.model import Caller

CONTROLLER_KEY = web.AppKey("movie_controller", MovieController)
AUTH_KEY = web.AppKey("movie_authenticator", Authenticator)
LIMITS_KEY = web.AppKey("movie_rate_limits", CallerLimits)
DEADLINE_KEY = web.AppKey("movie_default_deadline_s", float)


async def _caller(request: web.Request) -> Caller:
    """Authenticate, then admit: an unauthenticated request never spends a budget callers share."""
    limits = request.app[LIMITS_KEY]
    token = parse_bearer(request.headers.get("Authorization"))
    limits.before_authentication(token, request.remote)
    try:
        identity = await request.app[AUTH_KEY].authenticate(token)
    except InvalidToken:
        limits.authentication_failed(request.remote)
        raise
    limits.authenticated(token, identity.username, identity.expires_at)
    return Caller(identity.username, token)


def _deadline(request: web.Request) -> float:
    return asyncio.get_running_loop().time() + request.app[DEADLINE_KEY]


async def get_movie(request: web.Request) -> web.Response:
    caller = await _caller(request)
    details = await request.app[CONTROLLER_KEY].get_details(request.match_info["movie_id"], caller, _deadline(request))
    return web.json_response(details.as_json())


async def put_rating(request: web.Request) -> web.Response:
    caller = await _caller(request)
    body: dict[str, Any] = await read_json_object(request)
    value = body.get("rating")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument('body must be {"rating": <integer 1..5>}')
    movie_id = request.match_info["movie_id"]
    await request.app[CONTROLLER_KEY].rate(movie_id, value, caller, _deadline(request))
    return web.json_response({"movie_id": movie_id, "user": caller.username, "rating": value})


def create_http_app(
    controller: MovieController,
    authenticator: Authenticator,
    limits: CallerLimits,
    *,
    service: ServiceConfig,
    default_deadline_s: float,
    tracer_provider: TracerProvider | None,
    registry: CollectorRegistry,
) -> web.Application:
    # An edge like hello: it starts traces for FIREDRILL_TRACE_RATIO of new requests (the catalog
    # tier sets starts_traces), so the gateway's fan-out to metadata, rating and auth is traced too.
    app = create_base_app(service, tracer_provider=tracer_provider, registry=registry)
    app[CONTROLLER_KEY] = controller
    app[AUTH_KEY] = authenticator
    app[LIMITS_KEY] = limits
    app[DEADLINE_KEY] = default_deadline_s
    app.router.add_get("/movies/{movie_id}", get_movie)
    app.router.add_put("/movies/{movie_id}/ratings", put_rating)
    return app
