"""The local platform fixture lives in tests/conftest.py (tests/hostile shares it); its type is re-exported here,
beside the one fixture every drill test starts from."""

from __future__ import annotations

import pytest

from services.common.waiting import wait_until
from tests.conftest import RunningPlatform

__all__ = ["RunningPlatform"]


@pytest.fixture
def quiet_platform(local_platform: RunningPlatform) -> RunningPlatform:
    """The shared platform once no alert is firing or pending (but the slow-burn ticket): a fresh one has
    some on their way (unscraped targets, auth's first password checks while the demo data is seeded),
    and a drill started then would count them as its false alerts."""
    prometheus = local_platform.prometheus
    wait_until(
        lambda: not [a for a in prometheus.alerts() if a["labels"].get("alertname") != "ErrorBudgetBurnTicket"],
        timeout_s=120,
        interval_s=0.5,
        what="no alert firing or pending before the drill",
    )
    return local_platform
