"""Rule files: recording rules, SLO rules and alerts, grouped and rendered as YAML documents."""

from __future__ import annotations

from typing import Any

from services.common.profiles import TimingProfile, duration

from .alerts import alerts
from .model import Alert, RecordingRule
from .recording import HEALTH, recording_rules
from .settings import LINKS, THRESHOLDS, Links, Thresholds
from .slo import slo_recording_rules

RULE_FILES = ("recording.yml", "slo.yml", "alerts.yml")


def _group(name: str, rules: tuple[RecordingRule | Alert, ...], interval_s: int | None = None) -> dict[str, Any]:
    group: dict[str, Any] = {"name": name}
    if interval_s is not None:
        group["interval"] = duration(interval_s)
    group["rules"] = [rule.to_dict() for rule in rules]
    return group


def reads_health_scrape(alert: Alert) -> bool:
    """The alert reads the health scrape's `up`, so its group is evaluated at that scrape's pace."""
    return HEALTH in alert.expr


def evaluation_interval_s(profile: TimingProfile, alert: Alert) -> int:
    """How often Prometheus evaluates the alert: its own group's interval, or the global one."""
    return profile.health_scrape_interval_s if reads_health_scrape(alert) else profile.evaluation_interval_s


def rule_documents(
    profile: TimingProfile, thresholds: Thresholds = THRESHOLDS, links: Links = LINKS
) -> dict[str, dict[str, Any]]:
    """File name -> rule file document, for one profile."""
    every = tuple(alerts(profile, thresholds, links))
    slo_alerts = tuple(a for a in every if a.name.startswith("ErrorBudgetBurn"))
    down = tuple(a for a in every if a not in slo_alerts and reads_health_scrape(a))
    other = tuple(a for a in every if a not in slo_alerts and a not in down)
    divisor = profile.slo_window_divisor
    slo_note = "production windows" if divisor == 1 else f"windows divided by {divisor}"
    return {
        "recording.yml": {
            "groups": [
                _group(f"firedrill-red (rate window {duration(profile.rate_window_s)})", recording_rules(profile))
            ]
        },
        "slo.yml": {
            "groups": [
                _group(f"firedrill-slo-recording ({slo_note})", slo_recording_rules(profile)),
                _group(f"firedrill-slo-alerts ({slo_note})", slo_alerts),
            ]
        },
        "alerts.yml": {
            "groups": [
                _group(
                    f"firedrill-down (every health scrape, {duration(profile.health_scrape_interval_s)})",
                    down,
                    profile.health_scrape_interval_s,
                ),
                _group("firedrill-alerts", other),
            ]
        },
    }
