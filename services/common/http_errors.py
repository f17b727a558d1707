"""Domain errors at the HTTP boundary: the one table from ``ErrorKind`` to HTTP status, and the JSON body.

The statuses follow google.rpc.Code's documented HTTP mapping (``ABORTED`` is a conflict, 409).
``web.error_middleware`` answers every ``DomainError`` with ``error_response``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from aiohttp import web

from services.common.errors import DomainError, ErrorKind

HTTP_STATUS = MappingProxyType(
    {
        ErrorKind.INVALID_ARGUMENT: 400,
        ErrorKind.FAILED_PRECONDITION: 400,
        ErrorKind.UNAUTHENTICATED: 401,
        ErrorKind.PERMISSION_DENIED: 403,
        ErrorKind.NOT_FOUND: 404,
        ErrorKind.ABORTED: 409,
        ErrorKind.RESOURCE_EXHAUSTED: 429,
        ErrorKind.INTERNAL: 500,
        ErrorKind.UNAVAILABLE: 503,
        ErrorKind.DEADLINE_EXCEEDED: 504,
    }
)


def http_status(error: DomainError) -> int:
    return HTTP_STATUS[error.kind]


def error_body(error: DomainError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    return {"error": body}


def error_response(error: DomainError) -> web.Response:
    return web.json_response(error_body(error), status=http_status(error))
