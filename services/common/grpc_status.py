"""Domain errors at the gRPC boundary, both ways: a status for the server, an error for the client.

``ErrorKind`` members are named after gRPC status codes, so the mapping is by name.
"""

from __future__ import annotations

import grpc

from services.common.errors import (
    DeadlineExceeded,
    DomainError,
    ErrorKind,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)


def status_for_kind(kind: ErrorKind) -> grpc.StatusCode:
    return grpc.StatusCode[kind.name]


def status_code(error: DomainError) -> grpc.StatusCode:
    """The status a server answers ``error`` with."""
    return status_for_kind(error.kind)


_ERROR_FOR_STATUS: dict[grpc.StatusCode, type[DomainError]] = {
    status_for_kind(cls.kind): cls
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


def error_for_status(code: grpc.StatusCode, message: str) -> DomainError:
    """The domain error for a status an upstream answered (unknown codes count as unavailable)."""
    return _ERROR_FOR_STATUS.get(code, Unavailable)(message)


# grpc-go's spelling of two codes that the CamelCase rule would spell otherwise.
_GO_SPELLING = {grpc.StatusCode.OK: "OK", grpc.StatusCode.CANCELLED: "Canceled"}


def code_name(code: grpc.StatusCode) -> str:
    """``NotFound`` for ``StatusCode.NOT_FOUND``: the ``grpc_code`` label value of the metric contract,
    spelled as grpc-go's ``codes.Code.String()`` and so as go-grpc-prometheus exporters label it,
    which is what the recording rules, alerts and canary templates match."""
    spelled = _GO_SPELLING.get(code)
    if spelled is not None:
        return spelled
    return "".join(part.capitalize() for part in str(code.name).split("_"))
