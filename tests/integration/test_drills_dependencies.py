"""The registry-down drill, for real, on the shared local platform (drill profile: alerts in seconds).

The vault-down drill holds Vault down for up to a certificate renewal interval (about ten minutes
in the drill profile), too long for this suite; it is run by hand (docs/drills.md, BENCHMARKS.md).
"""

from __future__ import annotations

import pytest

from scripts.drills.__main__ import run_drill
from scripts.local import registry_hold
from services.common.discovery.observed import REACHABLE
from tests.integration.conftest import RunningPlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_registry_down_drill_keeps_users_served_and_warns_once(quiet_platform: RunningPlatform, tmp_path) -> None:
    platform = quiet_platform.platform
    try:
        result = run_drill("registry-down", None, tmp_path, bring_up=False, platform=platform)
    finally:
        registry_hold.release(platform.state.registry)  # the drill's rollback did it already; never leave it held

    assert result.failed_expectations() == []
    assert result.passed
    assert result.service == "registry"
    assert result.expected_alerts == ["RegistryDown{service=registry}"]
    assert result.unexpected_alerts == [], "one warning for the registry, not one per service"
    assert result.requests_sent > 0
    assert result.requests_failed_during_outage == 0, "callers kept the instances the registry last named"
    assert result.incident is not None
    assert result.incident["alertname"] == "RegistryDown"
    assert result.incident["severity"] == "warning"
    assert result.incident["status"] == "resolved"
    assert "movie_whole" in result.moments, "movie answered with ratings while the registry was away"
    assert not registry_hold.is_held(platform.state.registry)
    errors = quiet_platform.prometheus.value('sum(discovery_registry_errors_total{job="services"})')
    assert errors is not None
    assert errors > 0
    assert quiet_platform.prometheus.value(f'min({REACHABLE}{{job="services"}})') == 1
