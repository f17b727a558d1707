"""The canary-bad drill end to end on the real local platform, through the drill catalogue.

Everything is real: the bad version deployed as a supervised program, the canary analysis
(scripts/canary/analysis.py and its shipped templates) judging it from Prometheus, the rollback,
the calls it served counted, the report, and the platform as it was before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.drills.__main__ import run_drill
from scripts.drills.scorecard import row
from scripts.local.versions import DeployedVersions
from tests.integration.conftest import RunningPlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_bad_canary_drill_rolls_back_and_reports_what_reached_the_bad_version(
    quiet_platform: RunningPlatform, tmp_path: Path
) -> None:
    result = run_drill("canary-bad", None, tmp_path, bring_up=False, platform=quiet_platform.platform)

    assert result.failed_expectations() == []
    assert result.passed
    rollout = result.notes["rollout"]
    assert rollout["outcome"] == "rolled_back"
    assert "error-ratio" in rollout["reason"]  # rolled back on its errors, not for lack of data
    # Rolled back on its errors: it failed at least one call, and served at least those. How many
    # more depends on the traffic (1 % of it) in the ~15 s the analysis needs.
    assert rollout["calls_failed_by_new_version"] >= 1
    assert rollout["calls_served_by_new_version"] >= rollout["calls_failed_by_new_version"]
    assert Path(rollout["record"]).is_file()
    assert row(result).fired == "rolled back"
    page = (next(tmp_path.glob("*-canary-bad-response")) / "report.html").read_text()
    assert "user calls that reached 2-bad-errors" in page
    assert DeployedVersions(quiet_platform.platform.state).canaries() == {}
    names = {p["name"] for p in quiet_platform.platform.supervisor.processes()}
    assert "response-canary" not in names


def test_the_good_canary_drill_reaches_100_percent_and_puts_the_old_version_back(
    quiet_platform: RunningPlatform, tmp_path: Path
) -> None:
    versions = DeployedVersions(quiet_platform.platform.state)
    before = versions.stable().get("response")

    result = run_drill("canary-good", None, tmp_path, bring_up=False, platform=quiet_platform.platform)

    assert result.failed_expectations() == []
    assert result.passed
    rollout = result.notes["rollout"]
    assert rollout["outcome"] == "promoted"
    assert rollout["last_weight_percent"] == 100
    assert result.requests_failed_during_outage == 0
    assert row(result).fired == "promoted"
    # The drill's rollback restored what ran before it.
    assert versions.stable().get("response") == before
    assert versions.canaries() == {}


def test_the_slow_canary_drill_is_rolled_back_on_its_latency(quiet_platform: RunningPlatform, tmp_path: Path) -> None:
    result = run_drill("canary-bad-latency", None, tmp_path, bring_up=False, platform=quiet_platform.platform)

    assert result.failed_expectations() == []
    rollout = result.notes["rollout"]
    assert rollout["outcome"] == "rolled_back"
    assert "latency" in rollout["reason"]
    assert rollout["calls_failed_by_new_version"] == 0  # slow, not failing
    assert result.requests_failed_during_outage == 0
