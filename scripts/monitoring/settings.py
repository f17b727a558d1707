"""Knobs of the monitoring configuration that are not timing: thresholds and link bases.

Timing (scrape/evaluation intervals, ``for`` durations, windows) comes from a
:class:`~services.common.profiles.TimingProfile`; everything here is the same in every profile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.common import catalog

# Where the runbooks are read by people: the repository's docs/runbooks folder.
DEFAULT_RUNBOOK_BASE_URL = "https://github.com/firedrill/firedrill/blob/main/docs/runbooks"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Alert thresholds shared by both profiles."""

    error_ratio: float = 0.05
    latency_p95_s: float = 0.5
    # A p95 over fewer requests than this is a few slow calls (one login), not a latency problem.
    latency_min_requests: int = 20
    # One event loop holds the GIL: a Python service cannot pass one core, and measured under a burn it
    # sits at 0.85-0.93 of it (the GIL handoffs), so saturation is 0.8 of a core held, not 0.9.
    cpu_cores: float = 0.8
    memory_limit_bytes: int = 512 * 1024 * 1024
    # Restarts of one service within the crash-loop window that make a storm (CrashLooping).
    crash_loop_restarts: int = 3
    # Error (and critical) log lines per second a service may write before it is a storm.
    error_log_lines_per_s: float = 2.0


@dataclass(frozen=True, slots=True)
class Links:
    """Bases of the URLs put into every alert's ``runbook_url`` and ``dashboard_url``."""

    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL
    grafana_base_url: str = f"http://127.0.0.1:{catalog.infra('grafana').port}"

    def runbook(self, alertname: str) -> str:
        return f"{self.runbook_base_url.rstrip('/')}/{alertname}.md"

    def dashboard(self, uid: str, query: str = "") -> str:
        url = f"{self.grafana_base_url.rstrip('/')}/d/{uid}"
        return f"{url}?{query}" if query else url

    @classmethod
    def from_env(cls, grafana_base_url: str | None = None) -> Links:
        """FIREDRILL_RUNBOOK_BASE_URL / FIREDRILL_GRAFANA_URL override the defaults."""
        default = cls()
        return cls(
            runbook_base_url=os.environ.get("FIREDRILL_RUNBOOK_BASE_URL", default.runbook_base_url),
            grafana_base_url=os.environ.get("FIREDRILL_GRAFANA_URL", grafana_base_url or default.grafana_base_url),
        )


THRESHOLDS = Thresholds()
LINKS = Links()
