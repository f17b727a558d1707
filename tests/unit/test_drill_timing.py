"""Drill waits come from the timing profile the platform runs, not from one fixed number."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.drills import timing
from scripts.local.stack import LocalPlatform
from services.common.profiles import DRILL, PRODUCTION


def test_service_down_waits_follow_the_health_scrape_for_and_page_timers() -> None:
    p = PRODUCTION
    down = timing.alert_timing(p, "ServiceDown")
    # The signal (a failed health scrape), a scrape and an evaluation late, then `for`.
    assert down.detect_s == 3 * p.health_scrape_interval_s + p.for_service_down_s
    assert down.notify_s == p.page_group_wait_s
    # Back up within a scrape, seen a scrape and an evaluation later, resolved at the next tick.
    assert down.resolve_s == 3 * p.health_scrape_interval_s + p.page_group_interval_s


def test_warnings_wait_for_their_window_and_their_calm_group_interval() -> None:
    p = PRODUCTION
    errors = timing.alert_timing(p, "HighErrorRatio")
    assert errors.detect_s > p.for_symptom_s
    assert errors.notify_s == p.group_wait_s
    assert errors.resolve_s > p.rate_window_s + p.group_interval_s


def test_the_production_outage_waits_are_long_enough_where_90_s_were_not() -> None:
    # Issue 12: the incident came ~108 s after the stop and the resolve more than 120 s after the restart.
    assert timing.incident_timeout_s(PRODUCTION, "ServiceDown") > 108
    assert timing.resolution_timeout_s(PRODUCTION, "HighErrorRatio") > 300
    assert timing.alert_timeout_s(DRILL, "ServiceDown") < timing.alert_timeout_s(PRODUCTION, "ServiceDown")


def test_the_environment_overrides_the_alert_and_incident_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(timing.TIMEOUT_ENV, "7")
    assert timing.alert_timeout_s(PRODUCTION, "ServiceDown") == 7
    assert timing.incident_timeout_s(PRODUCTION) == 7
    monkeypatch.delenv(timing.TIMEOUT_ENV)
    assert timing.incident_timeout_s(PRODUCTION) == PRODUCTION.group_wait_s + timing.SLACK_S


def test_an_unknown_alert_is_refused() -> None:
    with pytest.raises(ValueError, match="NoSuchAlert"):
        timing.alert_timing(DRILL, "NoSuchAlert")


def test_the_local_platform_runs_its_own_profile_and_a_cluster_production(tmp_path: Path) -> None:
    assert timing.platform_profile(LocalPlatform(tmp_path, PRODUCTION)) is PRODUCTION
    assert timing.platform_profile(LocalPlatform(tmp_path, DRILL)) is DRILL

    class Cluster:
        name = "nomad"

    assert timing.platform_profile(Cluster()) is PRODUCTION  # type: ignore[arg-type]
