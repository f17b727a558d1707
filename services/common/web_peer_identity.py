"""aiohttp: serve only the peers whose verified client certificate names an allowed caller."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable
from typing import Any
from weakref import WeakKeyDictionary

from aiohttp import web

from services.common.catalog import Access, Callers
from services.common.tls import accepted_names, peer_identities
from services.common.web import Handler, json_error

# The logger name this line had when it lived in services.common.tls: log searches know it.
log = logging.getLogger("services.common.tls")


def peer_identity_middleware(callers: Callers) -> Any:
    """Refuse (403) requests whose verified client certificate names no caller allowed the
    request's kind of access (``Callers.access``: GET/HEAD/OPTIONS read, other methods and the
    listener's write paths write).

    Every route is checked, /health and /metrics included: on an mTLS listener they are the
    allowed callers' (Prometheus and health checks use the plain ops port).

    A connection's peer certificate is fixed at its handshake, so what that peer may do is
    worked out once per connection (keyed by its TLS object, forgotten with it), not per request.
    """
    accepted = {access: accepted_names(callers.allowed(access)) for access in Access}
    verdicts: WeakKeyDictionary[ssl.SSLObject, tuple[frozenset[str], frozenset[Access]]] = WeakKeyDictionary()

    def verdict(transport: Any) -> tuple[frozenset[str], frozenset[Access]]:
        tls_object = transport.get_extra_info("ssl_object") if transport is not None else None
        known = verdicts.get(tls_object) if tls_object is not None else None
        if known is not None:
            return known
        peer = peer_identities(transport.get_extra_info("peercert") if transport is not None else None)
        allowed = frozenset(access for access in Access if peer & accepted[access])
        if tls_object is not None:
            verdicts[tls_object] = (peer, allowed)
        return peer, allowed

    async def refuse(request: web.Request, peer: frozenset[str], access: Access) -> web.StreamResponse:
        log.warning(
            "refused peer",
            extra={"peer": ",".join(sorted(peer)) or "<none>", "path": request.path, "access": access.value},
        )
        return json_error(403, "peer_not_allowed", f"this client's certificate may not {access.value} on this service")

    @web.middleware
    def middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        # Not a coroutine itself: an allowed request goes straight to the handler.
        peer, allowed = verdict(request.transport)
        access = callers.access(request.method, request.path)
        if access not in allowed:
            return refuse(request, peer, access)
        return handler(request)

    return middleware
