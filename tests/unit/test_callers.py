"""The catalog's caller allow-lists: well-formed, and never refusing a dependency the catalog names."""

from __future__ import annotations

from services.common import catalog, tls
from services.common.catalog import Access, Protocol


def test_every_caller_is_an_identity_with_a_certificate() -> None:
    known = {*catalog.service_names(), *tls.OBSERVERS}
    for spec in catalog.SERVICES:
        if spec.callers is not None:
            assert set(spec.callers.anyone) <= known, spec.name


def test_only_the_plain_http_edge_listener_has_no_allow_list() -> None:
    for spec in catalog.SERVICES:
        plain_api = spec.tier is catalog.Tier.EDGE and spec.protocol is Protocol.HTTP
        assert (spec.callers is None) == plain_api, spec.name
    assert [s.name for s in catalog.SERVICES if s.callers is None] == ["hello"]


def test_grpc_listeners_serve_one_list() -> None:
    for spec in catalog.SERVICES:
        if spec.protocol is Protocol.GRPC:
            assert spec.callers is not None, spec.name
            assert spec.callers.uniform, spec.name
            assert tls.grpc_callers(spec.name) == spec.callers.read


def test_every_dependency_may_be_called_by_its_dependent() -> None:
    for spec in catalog.SERVICES:
        for upstream in spec.depends_on:
            assert spec.name in tls.callers(upstream).allowed(Access.READ), f"{spec.name} -> {upstream}"


def test_incidents_take_notifications_from_alertmanager_and_reads_from_the_operator() -> None:
    incidents = tls.callers("incidents")
    assert incidents.allowed(Access.WRITE) == ("alertmanager",)
    assert incidents.allowed(Access.READ) == ("operator",)
    assert catalog.http_access("POST") is Access.WRITE
    assert catalog.http_access("head") is Access.READ


def test_listeners_name_every_port_once() -> None:
    ports = [listener.port for spec in catalog.SERVICES for listener in spec.listeners]
    assert len(ports) == len(set(ports))
    movie = {listener.role: listener for listener in catalog.service("movie").listeners}
    assert movie["api"].mtls
    assert not movie["front"].mtls
    assert not movie["ops"].mtls


def test_response_fault_endpoints_are_writes_whatever_their_method() -> None:
    response = tls.callers("response")
    for path in ("/slow", "/leak", "/cpu"):
        assert response.access("GET", path) is Access.WRITE
        assert "hello" not in response.allowed(response.access("GET", path))
    assert response.access("GET", "/response") is Access.READ
    assert "hello" in response.allowed(response.access("GET", "/response"))
