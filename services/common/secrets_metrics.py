"""The two secrets gauges alerts are written against (VaultUnreachable, CertificateExpiringSoon).

- ``tls_cert_expiry_seconds{service}``: seconds until the certificate a service serves with
  expires. Every service that serves TLS exports it; the value is computed at scrape time from
  the certificate currently loaded, so it keeps falling while Vault is away.
- ``vault_reachable{service}``: 1 when the renderer's last Vault call on behalf of that service
  succeeded within its interval, else 0 -- a failed call, or no call for longer than the interval
  allows (a frozen Vault holds every call until it times out), both read 0. The agent
  (``scripts.vault.agent``) exports it, and calls Vault for every identity each interval.
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


class VaultContact:
    """One identity's last Vault call: reachable while it succeeded at most ``window_s`` ago."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._succeeded_at: float | None = None

    def succeeded(self) -> None:
        self._succeeded_at = self._clock()

    def failed(self) -> None:
        self._succeeded_at = None

    def reachable(self) -> float:
        at = self._succeeded_at
        return 1.0 if at is not None and self._clock() - at <= self._window_s else 0.0


def vault_reachable_gauge(registry: CollectorRegistry = REGISTRY) -> Gauge:
    """The gauge; each identity's value is read at scrape time from its ``VaultContact``."""
    return Gauge(
        VAULT_REACHABLE,
        "1 when the last Vault call on behalf of the service succeeded within its interval, else 0.",
        ["service"],
        registry=registry,
    )
