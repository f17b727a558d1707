"""The two secrets gauges alerts are written against (VaultUnreachable, CertificateExpiringSoon).

- ``tls_cert_expiry_seconds{service}``: seconds until the certificate a service serves with
  expires. Every service that serves TLS exports it; the value is computed at scrape time from
  the certificate currently loaded, so it keeps falling while Vault is away.
- ``vault_reachable{service}``: 1 when the renderer's last contact with Vault on behalf of that
  service succeeded, 0 when it failed. The agent (``scripts.vault.agent``) exports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import REGISTRY, CollectorRegistry, Gauge

CERT_EXPIRY = "tls_cert_expiry_seconds"
VAULT_REACHABLE = "vault_reachable"


def cert_expiry_gauge(
    service: str, not_after: Callable[[], float | None], registry: CollectorRegistry = REGISTRY
) -> Gauge:
    """Register ``tls_cert_expiry_seconds{service}`` reading ``not_after()`` (epoch seconds) at scrape time."""
    gauge = Gauge(
        CERT_EXPIRY,
        "Seconds until the TLS certificate this service serves with expires.",
        ["service"],
        registry=registry,
    )

    def seconds_left() -> float:
        expires = not_after()
        return float("nan") if expires is None else expires - time.time()

    gauge.labels(service).set_function(seconds_left)
    return gauge


def vault_reachable_gauge(registry: CollectorRegistry = REGISTRY) -> Gauge:
    return Gauge(
        VAULT_REACHABLE,
        "1 when the last contact with Vault on behalf of the service succeeded, else 0.",
        ["service"],
        registry=registry,
    )
