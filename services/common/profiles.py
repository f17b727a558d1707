"""Timing profiles: one set of numbers for drills and tests, one for a production cluster.

The Prometheus config and rules, the Alertmanager config, discovery heartbeats and certificate
lifetimes are all generated from a profile, so the same rules run fast in a drill and calmly in
production.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimingProfile:
    name: str
    scrape_interval_s: int
    evaluation_interval_s: int
    scrape_timeout_s: int
    # "Down" is read from a light scrape of its own (only `up` is kept), every
    # health_scrape_interval_s, while the metrics scrape keeps scrape_interval_s; ServiceDown fires
    # once down_after_failed_scrapes health scrapes in a row failed (see for_service_down_s).
    health_scrape_interval_s: int
    down_after_failed_scrapes: int
    # `for:` of the other alerts, by how urgent the signal is: urgent (the fast-burn page, a crash
    # loop), symptoms, capacity.
    for_urgent_s: int
    for_symptom_s: int
    for_capacity_s: int
    # Windows for rates in rules (must hold several scrapes).
    rate_window_s: int
    # Alertmanager timers of warnings and tickets (calm), and of pages (severity critical): a page is
    # sent page_group_wait_s after it fires, and its resolve at the group's next page_group_interval_s.
    group_wait_s: int
    group_interval_s: int
    page_group_wait_s: int
    page_group_interval_s: int
    repeat_interval_s: int
    resolve_timeout_s: int
    # Discovery: how often an instance heartbeats, and when it counts as stale.
    heartbeat_interval_s: float
    heartbeat_ttl_s: float
    # Certificates issued by the Vault PKI, and when to renew them.
    cert_ttl_s: int
    cert_renew_fraction: float
    # A program that keeps failing to start is started again after restart_delay_s, doubled at each
    # failure up to restart_max_delay_s, never given up on (Nomad's reschedule block on a cluster,
    # the local platform's restarter).
    restart_delay_s: int
    restart_max_delay_s: int
    # SLO burn-rate windows (5m … 3d) and the budget period are divided by this, so the
    # multi-window alerts can be rehearsed in minutes: 60 means one production hour is a drill minute.
    slo_window_divisor: int = 1

    @property
    def for_service_down_s(self) -> int:
        """`for` of ServiceDown: the first failed health scrape makes it pending, so N failures in a
        row span N - 1 intervals; a restart shorter than that fails at most N - 1 scrapes."""
        return (self.down_after_failed_scrapes - 1) * self.health_scrape_interval_s

    @property
    def health_scrape_timeout_s(self) -> int:
        return min(self.scrape_timeout_s, self.health_scrape_interval_s)


DRILL = TimingProfile(
    name="drill",
    scrape_interval_s=1,
    evaluation_interval_s=1,
    scrape_timeout_s=1,
    health_scrape_interval_s=1,
    down_after_failed_scrapes=4,
    for_urgent_s=3,
    for_symptom_s=10,
    for_capacity_s=30,
    rate_window_s=15,
    group_wait_s=1,
    group_interval_s=2,
    page_group_wait_s=1,
    page_group_interval_s=2,
    repeat_interval_s=3600,
    resolve_timeout_s=30,
    heartbeat_interval_s=1.0,
    heartbeat_ttl_s=5.0,
    cert_ttl_s=15 * 60,
    cert_renew_fraction=0.66,
    restart_delay_s=1,
    restart_max_delay_s=30,
    slo_window_divisor=60,
)

PRODUCTION = TimingProfile(
    name="production",
    scrape_interval_s=15,
    evaluation_interval_s=15,
    scrape_timeout_s=10,
    # Down within ~25 s (median): a failed health scrape every 5 s, three in a row (for: 10s), one
    # 5 s group_wait; a restart shorter than 10 s never pages. Metrics stay at 15 s.
    health_scrape_interval_s=5,
    down_after_failed_scrapes=3,
    for_urgent_s=60,
    for_symptom_s=120,
    for_capacity_s=600,
    rate_window_s=300,
    group_wait_s=30,
    group_interval_s=300,
    # The resolve of a page leaves at the group's next tick: 30 s keeps restart -> resolved under a
    # minute; warnings keep 5 minutes.
    page_group_wait_s=5,
    page_group_interval_s=30,
    repeat_interval_s=4 * 3600,
    resolve_timeout_s=300,
    heartbeat_interval_s=3.0,
    heartbeat_ttl_s=10.0,
    cert_ttl_s=72 * 3600,
    cert_renew_fraction=0.66,
    restart_delay_s=30,
    restart_max_delay_s=600,
)

PROFILES: dict[str, TimingProfile] = {p.name: p for p in (DRILL, PRODUCTION)}


def profile(name: str | None = None, environ: Mapping[str, str] = os.environ) -> TimingProfile:
    """The named profile, or the one FIREDRILL_PROFILE in ``environ`` names (default: drill)."""
    chosen = name or environ.get("FIREDRILL_PROFILE", DRILL.name)
    try:
        return PROFILES[chosen]
    except KeyError:
        raise ValueError(f"FIREDRILL_PROFILE must be one of {', '.join(PROFILES)}, got {chosen!r}") from None


def duration(seconds: float) -> str:
    """A Prometheus/Alertmanager duration string: 90 -> '1m30s', 1 -> '1s'."""
    total = int(seconds)
    if total != seconds or total < 0:
        raise ValueError(f"durations are whole non-negative seconds, got {seconds}")
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
