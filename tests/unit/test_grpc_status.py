"""The two boundary mappers of the domain errors: every kind has a gRPC status and an HTTP status."""

from __future__ import annotations

import grpc
import pytest

from scripts.monitoring.recording import GRPC_SERVER_ERROR_CODES
from services.common import errors
from services.common.grpc_status import code_name, error_for_status, status_code
from services.common.http_errors import HTTP_STATUS, error_body, http_status


@pytest.mark.parametrize("kind", list(errors.ErrorKind))
def test_every_kind_maps_to_a_grpc_and_an_http_status(kind: errors.ErrorKind) -> None:
    assert kind.name in grpc.StatusCode.__members__
    assert kind in HTTP_STATUS


@pytest.mark.parametrize(
    ("error", "status", "code", "grpc_code"),
    [
        (errors.BadRequest("x"), 400, "bad_request", grpc.StatusCode.INVALID_ARGUMENT),
        (errors.InvalidArgument("x"), 400, "invalid_argument", grpc.StatusCode.INVALID_ARGUMENT),
        (errors.Unauthorized("x"), 401, "unauthorized", grpc.StatusCode.UNAUTHENTICATED),
        (errors.NotFound("x"), 404, "not_found", grpc.StatusCode.NOT_FOUND),
        (errors.ResourceExhausted("x"), 429, "resource_exhausted", grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.Injected("x"), 500, "injected_fault", grpc.StatusCode.INTERNAL),
        (errors.UpstreamUnavailable("x"), 503, "upstream_unavailable", grpc.StatusCode.UNAVAILABLE),
        (errors.UpstreamTimeout("x"), 504, "upstream_timeout", grpc.StatusCode.DEADLINE_EXCEEDED),
    ],
)
def test_one_error_both_boundaries(
    error: errors.DomainError, status: int, code: str, grpc_code: grpc.StatusCode
) -> None:
    assert http_status(error) == status
    assert error_body(error)["error"]["code"] == code
    assert status_code(error) == grpc_code


def test_upstream_statuses_come_back_as_domain_errors() -> None:
    assert isinstance(error_for_status(grpc.StatusCode.NOT_FOUND, "gone"), errors.NotFound)
    assert isinstance(error_for_status(grpc.StatusCode.DATA_LOSS, "?"), errors.Unavailable)
    assert len(errors.NotFound("x" * 1000).message) == errors.MAX_MESSAGE_CHARS


def test_metric_code_labels_are_spelled_as_grpc_go_does() -> None:
    spelled = {code: code_name(code) for code in grpc.StatusCode}
    assert spelled[grpc.StatusCode.OK] == "OK"
    assert spelled[grpc.StatusCode.CANCELLED] == "Canceled"
    assert spelled[grpc.StatusCode.PERMISSION_DENIED] == "PermissionDenied"
    assert spelled[grpc.StatusCode.DEADLINE_EXCEEDED] == "DeadlineExceeded"
    assert spelled[grpc.StatusCode.UNAUTHENTICATED] == "Unauthenticated"
    assert len(set(spelled.values())) == len(spelled)


def test_the_rules_server_error_codes_are_labels_the_services_export() -> None:
    """The error-ratio rules, alerts and canary templates match these values: a spelling the services
    never export would leave every gRPC error out of them."""
    exported = {code_name(code) for code in grpc.StatusCode}
    assert set(GRPC_SERVER_ERROR_CODES) <= exported
