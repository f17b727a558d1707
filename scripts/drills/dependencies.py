"""Probes of the Firedrill extension for the drills that take a shared dependency away (Vault, the registry).

The dependency itself is stopped and started with the ordinary ``stop_service``/``start_service``
actions: the local platform knows ``vault`` (its ``openbao`` program) and ``registry`` (its file
registry, ``scripts.local.registry_hold``); a Nomad cluster runs neither as a job and refuses, which
``platform_can_stop`` turns into a refusal to start before anything is broken.

Certificates: the agent renews a certificate at ``cert_renew_fraction`` of its lifetime, so a
certificate that has less than ``cert_ttl_s * (1 - cert_renew_fraction)`` left has missed its
renewal. ``wait_until_renewals_missed`` keeps Vault down until every service's certificate has;
``wait_for_renewed_certificates`` waits for every one to be renewed once Vault is back.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from scripts.drills.recorder import RECORDER
from scripts.promql import Prometheus
from services.common.profiles import TimingProfile, profile
from services.common.waiting import wait_until

log = logging.getLogger("chaostoolkit")

CERT_EXPIRY = 'tls_cert_expiry_seconds{job="services"}'
# A renewal counts as missed this long after it was due: the agent has tried, and failed, by then.
MISSED_BY_S = 5.0
POLL_S = 1.0


@runtime_checkable
class RefusesUnits(Protocol):
    def refuses(self, unit: str) -> str | None: ...


def platform_can_stop(unit: str) -> bool | str:
    """True when the platform can stop ``unit``; otherwise why not (the drill then refuses to start)."""
    platform, _ = RECORDER.require()
    reason = platform.refuses(unit) if isinstance(platform, RefusesUnits) else None
    if reason is None:
        return True
    log.error("the %s platform cannot stop %s: %s", platform.name, unit, reason)
    return f"the {platform.name} platform cannot stop {unit}: {reason}"


def _timing() -> TimingProfile:
    platform, _ = RECORDER.require()
    timing = getattr(platform, "timing", None)
    return timing if isinstance(timing, TimingProfile) else profile()


def renewal_margin_s(timing: TimingProfile) -> float:
    """What is left of a certificate's life when its renewal falls due."""
    return timing.cert_ttl_s * (1 - timing.cert_renew_fraction)


def renewal_interval_s(timing: TimingProfile) -> float:
    return timing.cert_ttl_s * timing.cert_renew_fraction


def _expiry(aggregate: str) -> float | None:
    _, endpoints = RECORDER.require()
    return Prometheus(endpoints.prometheus).value(f"{aggregate}({CERT_EXPIRY})")


def wait_until_renewals_missed(timeout_s: float | None = None) -> dict[str, float]:
    """Keep the fault on until every service's certificate has passed its renewal point unrenewed.

    That is what "down for longer than a renewal interval" does to a platform: at most one renewal
    interval (the profile's ``cert_ttl_s * cert_renew_fraction``) after the fault, every certificate
    missed its renewal. The default timeout is that interval plus a minute.
    """
    timing = _timing()
    threshold = renewal_margin_s(timing) - MISSED_BY_S
    limit = timeout_s if timeout_s is not None else renewal_interval_s(timing) + 60
    newest = _expiry("max")
    log.info(
        "holding the fault until every certificate missed its renewal: the newest has %s s left, renewal "
        "is due at %.0f s left (at most %.0f s to wait)",
        "?" if newest is None else f"{newest:.0f}",
        renewal_margin_s(timing),
        limit,
    )

    def every_renewal_missed() -> bool:
        newest = _expiry("max")
        return newest is not None and newest < threshold

    wait_until(every_renewal_missed, timeout_s=limit, interval_s=POLL_S, what="every certificate missing its renewal")
    RECORDER.mark("renewals_missed")
    fault = RECORDER.fault_started()
    held_s = RECORDER.moments["renewals_missed"] - fault if fault is not None else 0.0
    left = _expiry("min")
    missed = {
        "held_s": round(held_s, 1),
        "least_left_s": -1.0 if left is None else round(left, 1),
        "renewal_interval_s": renewal_interval_s(timing),
    }
    RECORDER.notes["renewals_missed"] = missed
    return missed


def wait_for_renewed_certificates(timeout_s: float = 120) -> float:
    """Seconds from the repair until every service serves a certificate renewed after it."""
    margin = renewal_margin_s(_timing())

    def every_certificate_renewed() -> bool:
        oldest = _expiry("min")
        return oldest is not None and oldest > margin

    wait_until(every_certificate_renewed, timeout_s=timeout_s, interval_s=POLL_S, what="every certificate renewed")
    renewed = RECORDER.mark("certificates_renewed")
    repaired = RECORDER.fault_ended()
    return round(renewed - repaired, 2) if repaired is not None else 0.0
