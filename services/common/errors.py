"""The domain errors of every service, free of any transport.

Code raises these; each boundary translates them with its one mapper: ``http_errors`` (the
aiohttp error middleware: HTTP status and JSON body) and ``grpc_status`` (the gRPC server's
error interceptor: status code and details). ``ErrorKind`` is what both mappers read; its
members are named after google.rpc.Code, whose documented HTTP mapping ``http_errors`` follows.
``code`` is the finer, machine-readable name JSON bodies carry (``invalid_payload``,
``upstream_timeout``); it defaults to the kind's name.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

MAX_MESSAGE_CHARS = 300


class ErrorKind(StrEnum):
    INVALID_ARGUMENT = "invalid_argument"
    FAILED_PRECONDITION = "failed_precondition"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    ABORTED = "aborted"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"


class DomainError(Exception):
    """A failure with a meaning a caller can act on; ``kind`` says which."""

    kind: ClassVar[ErrorKind] = ErrorKind.INTERNAL
    code: ClassVar[str] = ErrorKind.INTERNAL.value

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__ and "code" not in cls.__dict__:
            cls.code = cls.kind.value

    def __init__(self, message: str, **details: Any) -> None:
        # Messages may quote callers' input or an upstream's answer: keep them short on the wire.
        self.message = message[:MAX_MESSAGE_CHARS]
        super().__init__(self.message)
        self.details = details


class InvalidArgument(DomainError):
    """The request itself is wrong (a value, a shape); sending it again unchanged fails again."""

    kind = ErrorKind.INVALID_ARGUMENT


class BadRequest(InvalidArgument):
    """The HTTP services' name for an invalid argument (their JSON bodies say ``bad_request``)."""

    code = "bad_request"


class FailedPrecondition(DomainError):
    """The request is well formed but the system is not in a state to serve it."""

    kind = ErrorKind.FAILED_PRECONDITION


class Unauthenticated(DomainError):
    """No credential, or one that does not prove who the caller is."""

    kind = ErrorKind.UNAUTHENTICATED


class Unauthorized(Unauthenticated):
    """The HTTP services' name for a missing or wrong credential (``unauthorized`` in JSON)."""

    code = "unauthorized"


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""

    kind = ErrorKind.PERMISSION_DENIED


class NotFound(DomainError):
    """The thing asked for does not exist."""

    kind = ErrorKind.NOT_FOUND


class Aborted(DomainError):
    """The request conflicts with the current state (HTTP 409)."""

    kind = ErrorKind.ABORTED


class ResourceExhausted(DomainError):
    """A quota or rate limit is used up; retry later."""

    kind = ErrorKind.RESOURCE_EXHAUSTED


class Injected(DomainError):
    """A failure asked for by the fault switch: looks like a real server error."""

    code = "injected_fault"


class Unavailable(DomainError):
    """A dependency cannot be reached right now; retrying may help."""

    kind = ErrorKind.UNAVAILABLE


class UpstreamUnavailable(Unavailable):
    """An HTTP upstream did not answer usefully after the retries."""

    code = "upstream_unavailable"


class DeadlineExceeded(DomainError):
    """The work did not finish within the time the caller allowed."""

    kind = ErrorKind.DEADLINE_EXCEEDED


class UpstreamTimeout(DeadlineExceeded):
    """An HTTP upstream did not answer within the deadline."""

    code = "upstream_timeout"
