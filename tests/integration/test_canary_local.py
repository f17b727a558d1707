"""Rollouts on the real local platform: a bad canary rolled back, a good version promoted.

The decisions come from a small error-ratio analysis of the tests (tests/integration/canary_analysis.py),
not from scripts/canary/analysis.py; everything else is real: the canary as a supervised program,
the traffic split in the file registry that hello follows, Prometheus telling versions apart by label.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from scripts.canary.driver import PROMOTED, ROLLED_BACK, Outcome, RolloutRequest, RolloutSettings, run_rollout
from scripts.canary.local_target import LocalTarget
from scripts.canary.record import RolloutRecord, read_record, records_dir
from scripts.local.versions import DeployedVersions
from scripts.traffic import TrafficResult, send_traffic
from services.common import catalog
from services.common.config import package_version
from services.common.discovery.local import traffic_split_file
from services.common.waiting import wait_until
from tests.integration.canary_analysis import ErrorRatioOnly
from tests.integration.conftest import RunningPlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# 30 holds (60 s) at a step: on a loaded machine the traffic slows and 1 % of it takes a while to be judged.
SETTINGS = RolloutSettings(interval_s=2.0, window_s=15, max_holds=30)


async def _rollout_under_traffic(
    platform: RunningPlatform, version: str, strategy: str
) -> tuple[Outcome, TrafficResult, RolloutRecord]:
    target = LocalTarget(platform.platform, progress=print)
    record = RolloutRecord(
        records_dir(platform.state_dir),
        service="response",
        version=version,
        strategy=strategy,
        target=target.name,
        plan=target.plan("response", strategy).describe(),
    )
    stop_traffic = asyncio.Event()
    traffic = asyncio.create_task(
        send_traffic(
            platform.url("hello", "/hello"),
            requests=6000,
            concurrency=4,
            rate_per_s=50,
            max_duration_s=85,
            stop=stop_traffic,
        )
    )
    try:
        outcome = await asyncio.to_thread(
            run_rollout,
            RolloutRequest("response", version, strategy, SETTINGS),
            target,
            ErrorRatioOnly(platform.prometheus),
            [record],
            threading.Event(),
            print,
        )
    finally:
        stop_traffic.set()
    record.set_exposure(outcome.exposure)
    return outcome, await traffic, record


def _no_canary_left(platform: RunningPlatform) -> None:
    names = {p["name"] for p in platform.platform.supervisor.processes()}
    assert "response-canary" not in names
    assert DeployedVersions(platform.platform.state).canaries() == {}
    assert not traffic_split_file(platform.platform.state.registry, "response").exists()
    # Prometheus scrapes stable only again (a canary's target left behind would show as a down service).
    assert len(list((platform.state_dir / "prometheus" / "targets").glob("response-*.json"))) == 1


async def test_a_canary_with_errors_is_rolled_back_and_its_calls_are_counted(local_platform: RunningPlatform) -> None:
    outcome, traffic, record = await _rollout_under_traffic(local_platform, "2-bad-errors", "canary")

    assert outcome.result == ROLLED_BACK, outcome.reason
    assert "failed" in outcome.reason
    assert outcome.last_weight_percent < 100
    assert outcome.exposure is not None
    assert outcome.exposure.failed >= 1
    assert outcome.exposure.served >= outcome.exposure.failed
    saved = read_record(record.path)
    assert saved["outcome"] == ROLLED_BACK
    assert saved["exposure"]["served"] == outcome.exposure.served
    assert any(e.get("verdict", {}).get("decision") == "rollback" for e in saved["events"])
    # hello retries a failed call on another instance: users were spared the canary's errors.
    assert traffic.sent > 100
    assert traffic.failed <= traffic.sent * 0.01, traffic.statuses
    _no_canary_left(local_platform)
    assert DeployedVersions(local_platform.platform.state).stable().get("response") is None


@pytest.mark.parametrize("strategy", ["blue-green", "rolling"])
async def test_a_good_version_goes_through_and_becomes_the_stable_one(
    local_platform: RunningPlatform, strategy: str
) -> None:
    platform = local_platform.platform
    version = f"2-good-{strategy}"
    try:
        outcome, traffic, _record = await _rollout_under_traffic(local_platform, version, strategy)

        assert outcome.result == PROMOTED, outcome.reason
        assert outcome.last_weight_percent == 100
        assert traffic.failed == 0, traffic.statuses
        _no_canary_left(local_platform)
        assert DeployedVersions(platform.state).stable()["response"] == version
        port = catalog.port(catalog.service("response").port)
        target = LocalTarget(platform)
        assert target.stable_version("response") == version
        assert target.stable_problem("response") is None  # registered at the new version on its own port
        assert any(i.port == port and i.meta["version"] == version for i in target._instances("response"))
    finally:
        # The session's platform goes back to the package's version for the tests that follow.
        DeployedVersions(platform.state).set_stable("response", None)
        platform.apply_programs()
        wait_until(
            lambda: LocalTarget(platform).stable_problem("response") is None,
            timeout_s=60,
            interval_s=0.3,
            what=f"response back at {package_version()}",
        )
