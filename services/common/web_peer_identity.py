"""aiohttp: serve only the peers whose verified client certificate names an allowed caller."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from services.common.tls import accepted_names, peer_identities
from services.common.web import Handler, json_error

# The logger name this line had when it lived in services.common.tls: log searches know it.
log = logging.getLogger("services.common.tls")


def peer_identity_middleware(allowed: Iterable[str]) -> Any:
    """Refuse (403) requests whose verified client certificate names none of ``allowed``."""
    allowed_names = accepted_names(allowed)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        peer = peer_identities(transport.get_extra_info("peercert") if transport is not None else None)
        if not peer & allowed_names:
            log.warning("refused peer", extra={"peer": ",".join(sorted(peer)) or "<none>", "path": request.path})
            return json_error(403, "peer_not_allowed", "this client's certificate may not call this service")
        return await handler(request)

    return middleware
