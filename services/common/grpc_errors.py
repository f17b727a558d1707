"""Domain errors of the gRPC services, their status codes, and their HTTP equivalents.

Controllers raise these; one server interceptor (``grpc_server.ErrorInterceptor``) turns them
into gRPC statuses, and the movie gateway's HTTP front turns them into HTTP statuses through
``HTTP_STATUS`` — the only table that maps one to the other.
"""

from __future__ import annotations

import grpc

MAX_DETAIL_CHARS = 300


class ServiceError(Exception):
    """A failure with a meaning a caller can act on; ``code`` says which."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message[:MAX_DETAIL_CHARS])
        self.message = message[:MAX_DETAIL_CHARS]


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ServiceError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


_BY_CODE: dict[grpc.StatusCode, type[ServiceError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        Unauthenticated,
        PermissionDenied,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        FailedPrecondition,
    )
}


def from_code(code: grpc.StatusCode, message: str) -> ServiceError:
    """The domain error for a status an upstream answered (unknown codes count as unavailable)."""
    return _BY_CODE.get(code, Unavailable)(message)


# gRPC status -> HTTP status (the HTTP/JSON front), after google.rpc.Code's documented mapping.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


def http_status(code: grpc.StatusCode) -> int:
    return HTTP_STATUS.get(code, 500)


def code_name(code: grpc.StatusCode) -> str:
    """``NOT_FOUND`` for ``StatusCode.NOT_FOUND`` (the label value of the metric contract)."""
    return str(code.name)
