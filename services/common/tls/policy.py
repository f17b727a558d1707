"""Who may call a service, and which certificate names count as that caller."""

from __future__ import annotations

from collections.abc import Iterable

from services.common import catalog
from services.common.tls.identity import CONSUL_SUFFIX, service_dns_name

# Client identities that are not catalog services: the metrics scraper, Alertmanager (posts to
# the incident receiver) and operator tooling (drills, probes, CLIs). Each has its own PKI role.
OBSERVERS: tuple[str, ...] = ("prometheus", "alertmanager", "operator")


def allowed_callers(service: str) -> tuple[str, ...]:
    """Who may call ``service``: the catalog services that depend on it, plus the observers."""
    callers = [s.name for s in catalog.SERVICES if service in s.depends_on]
    return (*callers, *OBSERVERS)


def accepted_names(allowed: Iterable[str]) -> frozenset[str]:
    """``hello`` (or ``hello.service.consul``) is accepted as either: local certificates carry the
    bare name, cluster ones only the Consul name."""
    bare = {name.removesuffix(CONSUL_SUFFIX) for name in allowed}
    return frozenset(bare | {service_dns_name(name) for name in bare})
