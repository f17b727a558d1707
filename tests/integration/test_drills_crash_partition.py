"""The partition drill for real on the shared local platform, and the restart counts the crash-loop
drill's alert reads (the crash-loop drill itself is run by hand: its alert outlasts the storm by the
crash-loop window; numbers in docs/drills.md)."""

from __future__ import annotations

import asyncio

import pytest

from scripts.drills.__main__ import run_drill
from services.common import catalog
from services.common.discovery.local import LocalRegistry
from services.common.waiting import wait_until
from tests.integration.conftest import RunningPlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_partition_drill_fails_fast_within_hellos_deadline_and_heals(quiet_platform: RunningPlatform, tmp_path) -> None:
    result = run_drill("partition", None, tmp_path, bring_up=False, platform=quiet_platform.platform)

    assert result.failed_expectations() == []
    assert result.passed
    assert sorted(result.expected_alerts) == ["ErrorBudgetBurnPage{service=hello}", "HighErrorRatio{service=hello}"]
    fired = result.expected_alerts + result.symptom_alerts + result.unexpected_alerts
    assert not [label for label in fired if "service=response" in label], "response itself was fine all along"
    deadline = result.notes["deadline"]
    assert set(deadline["statuses"]) == {504}, "a blackhole leaves hello nothing but its own timeout"
    assert deadline["slowest_s"] <= deadline["deadline_s"] + 1.0
    assert result.requests_failed_during_outage > 0, "users saw hello's 504s"
    assert result.incident is not None
    assert (result.incident["alertname"], result.incident["status"]) == ("HighErrorRatio", "resolved")
    # Healed: response's registration gives its own address again, and nothing is left to heal.
    state = quiet_platform.state_dir
    instances = asyncio.run(LocalRegistry(state / "registry", 60).healthy_instances("response"))
    assert [i.port for i in instances] == [catalog.port(catalog.service("response").port)]
    assert not list((state / "faults").glob("partition-*.json"))


def test_prometheus_scrapes_the_restarters_restart_counts(local_platform: RunningPlatform) -> None:
    prometheus = local_platform.prometheus
    wait_until(
        lambda: any(t["labels"].get("job") == "restarter" and t["health"] == "up" for t in prometheus.targets()),
        timeout_s=60,
        what="the restarter scraped under job=restarter",
    )
    # Every program the restarter saw start has its series, from zero.
    wait_until(
        lambda: prometheus.value('count(firedrill_restarts_total{job="restarter",service="response"})') == 1,
        timeout_s=60,
        what="response's restart count scraped",
    )
