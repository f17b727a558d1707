"""Domain errors that the HTTP boundary translates to JSON responses in one middleware."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class Injected(ApiError):
    """A failure asked for by the fault switch: looks like a real server error."""

    status = 500
    code = "injected_fault"


class UpstreamUnavailable(ApiError):
    status = 503
    code = "upstream_unavailable"


class UpstreamTimeout(ApiError):
    status = 504
    code = "upstream_timeout"
