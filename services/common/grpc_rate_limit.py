"""gRPC: ``CallerLimits`` around the auth interceptor, RESOURCE_EXHAUSTED when a budget is empty.

Two interceptors, because the order needs a step on each side of authentication
(``services.common.ratelimit`` explains it): ``AddressLimitInterceptor`` sits before the auth
interceptor (refuses before the signature check; counts refused tokens per client address) and
``CallerLimitInterceptor`` after it (the authenticated caller's budget, then the shared one).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from services.common.auth_tokens import InvalidToken
from services.common.grpc_auth import AUTHORIZATION, current_identity, current_token, parse_bearer
from services.common.grpc_handlers import ApplicationCallInterceptor, UnaryBehavior, metadata_value
from services.common.ratelimit import CallerLimits


def peer_address(context: Any) -> str | None:
    """``ipv4:127.0.0.1:51234`` -> ``127.0.0.1``; ``ipv6:[::1]:51234`` -> ``::1``; other kinds by name."""
    peer = unquote(str(context.peer() or ""))
    kind, _, rest = peer.partition(":")
    if kind in {"ipv4", "ipv6"} and rest:
        return rest.rsplit(":", 1)[0].strip("[]")
    return kind or None


class AddressLimitInterceptor(ApplicationCallInterceptor):
    def __init__(self, limits: CallerLimits) -> None:
        self._limits = limits

    def wrap_unary(self, behavior: UnaryBehavior) -> UnaryBehavior:
        limits = self._limits

        async def limited(request: Any, context: Any) -> Any:
            try:
                token = parse_bearer(metadata_value(context, AUTHORIZATION))
            except InvalidToken:
                return await behavior(request, context)  # auth refuses it; a refusal this cheap spends nothing
            address = peer_address(context)
            limits.before_authentication(token, address)
            try:
                return await behavior(request, context)
            except InvalidToken:
                limits.authentication_failed(address)
                raise

        return limited


class CallerLimitInterceptor(ApplicationCallInterceptor):
    def __init__(self, limits: CallerLimits) -> None:
        self._limits = limits

    def wrap_unary(self, behavior: UnaryBehavior) -> UnaryBehavior:
        limits = self._limits

        async def limited(request: Any, context: Any) -> Any:
            identity, token = current_identity.get(), current_token.get()
            if identity is None or token is None:
                raise RuntimeError("CallerLimitInterceptor must run after the auth interceptor")
            limits.authenticated(token, identity.username, identity.expires_at)
            return await behavior(request, context)

        return limited
