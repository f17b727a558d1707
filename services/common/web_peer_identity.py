"""aiohttp: serve only the peers whose verified client certificate names an allowed caller."""

from __future__ import annotations

import logging
from typing import Any

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
    allowed callers' (Prometheus and health checks use the plain ops port)."""
    accepted = {access: accepted_names(callers.allowed(access)) for access in Access}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        peer = peer_identities(transport.get_extra_info("peercert") if transport is not None else None)
        access = callers.access(request.method, request.path)
        if not peer & accepted[access]:
            log.warning(
                "refused peer",
                extra={"peer": ",".join(sorted(peer)) or "<none>", "path": request.path, "access": access.value},
            )
            return json_error(
                403, "peer_not_allowed", f"this client's certificate may not {access.value} on this service"
            )
        return await handler(request)

    return middleware
