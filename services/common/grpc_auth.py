"""Bearer-token authentication for gRPC servers: one interceptor shared by the movie services.

The interceptor reads ``authorization: Bearer <jwt>`` from the call metadata, asks an
``Authenticator`` who the caller is, and refuses the call with UNAUTHENTICATED otherwise. The
caller's identity and token are then available to the handler (and to calls it makes onwards)
through context variables. Health and reflection stay open, so probes and grpcurl work.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Protocol

import grpc.aio

from services.common.auth_tokens import Identity, InvalidToken, TokenVerifier
from services.common.grpc_handlers import MethodName, UnaryBehavior, metadata_value, wrap_handler

AUTHORIZATION = "authorization"

current_identity: ContextVar[Identity | None] = ContextVar("current_identity", default=None)
current_token: ContextVar[str | None] = ContextVar("current_token", default=None)


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Identity: ...


class LocalAuthenticator:
    """Verifies signatures locally with the published verification keys (no network hop)."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def authenticate(self, token: str) -> Identity:
        return self._verifier.verify(token)


def parse_bearer(header: str | None) -> str:
    if header is None:
        raise InvalidToken("missing token (send authorization: Bearer <token>)")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("authorization must be 'Bearer <token>'")
    return token.strip()


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return ((AUTHORIZATION, f"Bearer {token}"),)


def forwarded_metadata() -> tuple[tuple[str, str], ...]:
    """The current caller's token, to pass on to upstream calls made on its behalf."""
    token = current_token.get()
    return bearer_metadata(token) if token else ()


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, authenticator: Authenticator, *, open_methods: frozenset[str] = frozenset()) -> None:
        """``open_methods``: full method names (``/pkg.Service/Method``) that need no token."""
        self._authenticator = authenticator
        self._open = open_methods

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        name = MethodName.parse(details.method)
        if handler is None or name.is_system or details.method in self._open:
            return handler
        authenticator = self._authenticator

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def authenticated(request: Any, context: Any) -> Any:
                token = parse_bearer(metadata_value(context, AUTHORIZATION))
                identity = await authenticator.authenticate(token)
                identity_token = current_identity.set(identity)
                token_token = current_token.set(token)
                try:
                    return await behavior(request, context)
                finally:
                    current_identity.reset(identity_token)
                    current_token.reset(token_token)

            return authenticated

        return wrap_handler(handler, unary=unary)
