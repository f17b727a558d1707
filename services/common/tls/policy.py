"""Who may call a service, and which certificate names count as that caller.

The allow-lists themselves are data in the catalog (``ServiceSpec.callers``); this module reads
them for the two checks: ``services.common.web_peer_identity`` (aiohttp, by kind of access) and
``services.common.grpc_peer_identity`` (gRPC, one list per listener).
"""

from __future__ import annotations

from collections.abc import Iterable

from services.common import catalog
from services.common.tls.identity import CONSUL_SUFFIX, service_dns_name

# Client-only identities (not catalog services), each with its own PKI role: Prometheus, Alertmanager
# (posts to the incident receiver) and operator tooling (drills, probes, CLIs). Prometheus scrapes the
# plain ops ports, so no mTLS listener lists it (its certificate is still issued: docs/vault.md).
OBSERVERS: tuple[str, ...] = ("prometheus", "alertmanager", "operator")


def callers(service: str) -> catalog.Callers:
    """The allow-list of ``service``'s mTLS listener, from the catalog."""
    spec = catalog.service(service)
    if spec.callers is None:
        raise ValueError(f"{service} listens in plain HTTP: it has no caller allow-list")
    return spec.callers


def allowed_callers(service: str) -> tuple[str, ...]:
    """Every identity that may make some call to ``service``'s mTLS listener (none for a plain one)."""
    spec = catalog.service(service)
    return spec.callers.anyone if spec.callers is not None else ()


def grpc_callers(service: str) -> tuple[str, ...]:
    """The identities ``service``'s gRPC listener serves: gRPC calls are not told apart by access."""
    allowed = callers(service)
    if not allowed.uniform:
        raise ValueError(f"{service}: a gRPC listener serves one list of callers (catalog.Callers.same)")
    return allowed.read


def accepted_names(allowed: Iterable[str]) -> frozenset[str]:
    """``hello`` (or ``hello.service.consul``) is accepted as either: local certificates carry the
    bare name, cluster ones only the Consul name."""
    bare = {name.removesuffix(CONSUL_SUFFIX) for name in allowed}
    return frozenset(bare | {service_dns_name(name) for name in bare})
