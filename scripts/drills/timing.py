"""How long a drill waits for an alert, its incident and its resolve, derived from the timing profile.

The platform's profile decides how fast an alert can fire and clear: the local platform runs the
one it was started with, a Nomad cluster the production profile (its jobs are generated from it).
For one alert, at worst:

* fault -> firing: the signal's own delay (the alert's test scenarios bound it: a scrape for `up`,
  part of a rate window for a ratio), one scrape and one evaluation late, then ``for``;
* firing -> notification: the group_wait of the route its severity takes;
* repair -> resolved notification: the signal clearing, a scrape and an evaluation late, then the
  group's next group_interval tick (Alertmanager sends a resolve only then).

Each wait adds ``SLACK_S`` for a loaded machine. FIREDRILL_DRILL_ALERT_TIMEOUT_S, when set,
replaces the alert and incident waits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from scripts.deploy_target.interface import Platform
from scripts.monitoring.alertmanager_config import notification_timers_s
from scripts.monitoring.alerts import alerts
from scripts.monitoring.rules import evaluation_interval_s, reads_health_scrape
from services.common.profiles import PRODUCTION, TimingProfile

SLACK_S = 90.0
TIMEOUT_ENV = "FIREDRILL_DRILL_ALERT_TIMEOUT_S"


@dataclass(frozen=True, slots=True)
class AlertTiming:
    """Worst cases in seconds, without slack."""

    detect_s: int  # fault -> alert firing in Prometheus
    notify_s: int  # firing -> the first notification (the incident)
    resolve_s: int  # repair -> the resolved notification


def alert_timing(profile: TimingProfile, alertname: str) -> AlertTiming:
    found = [a for a in alerts(profile) if a.name == alertname]
    if not found:
        raise ValueError(f"no alert named {alertname!r} in the {profile.name} profile")
    detect = clear = notify = group_interval = 0
    for alert in found:
        scrape = profile.health_scrape_interval_s if reads_health_scrape(alert) else profile.scrape_interval_s
        late = scrape + evaluation_interval_s(profile, alert)
        wait, interval = notification_timers_s(profile, alert.severity.value)
        detect = max(detect, max(s.detect_s for s in alert.scenarios) + late + alert.for_s)
        clear = max(clear, max(s.clear_s for s in alert.scenarios) + late)
        notify, group_interval = max(notify, wait), max(group_interval, interval)
    return AlertTiming(detect, notify, clear + group_interval)


def platform_profile(platform: Platform) -> TimingProfile:
    """The local platform's own profile; production for a cluster."""
    from scripts.local.stack import LocalPlatform

    return platform.timing if isinstance(platform, LocalPlatform) else PRODUCTION


def _override() -> float | None:
    value = os.environ.get(TIMEOUT_ENV)
    return float(value) if value else None


def alert_timeout_s(profile: TimingProfile, alertname: str) -> float:
    override = _override()
    return override if override is not None else alert_timing(profile, alertname).detect_s + SLACK_S


def incident_timeout_s(profile: TimingProfile, alertname: str | None = None) -> float:
    """After the alert fired (the drills wait for it first), or from the fault when alertname is given."""
    override = _override()
    if override is not None:
        return override
    if alertname is None:
        return max(profile.group_wait_s, profile.page_group_wait_s) + SLACK_S
    timing = alert_timing(profile, alertname)
    return timing.detect_s + timing.notify_s + SLACK_S


def resolution_timeout_s(profile: TimingProfile, alertname: str) -> float:
    return alert_timing(profile, alertname).resolve_s + SLACK_S
