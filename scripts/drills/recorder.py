"""What a running drill has seen: named moments, background traffic, the platform it acts on.

Chaos Toolkit runs an experiment's activities one after another in this process, so the actions
and probes share this one recorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from scripts.deploy_target.interface import Endpoints, Platform
from scripts.traffic import TrafficResult, send_traffic


@dataclass
class BackgroundTraffic:
    url: str
    thread: threading.Thread
    ready: threading.Event
    loop: asyncio.AbstractEventLoop | None = None
    stop_requested: asyncio.Event | None = None
    result: TrafficResult | None = None


@dataclass
class Recorder:
    platform: Platform | None = None
    endpoints: Endpoints | None = None
    moments: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    traffic: BackgroundTraffic | None = None

    def mark(self, name: str, when: float | None = None) -> float:
        """Remember the first time ``name`` happened (wall clock, as Prometheus stamps samples)."""
        return self.moments.setdefault(name, when if when is not None else time.time())

    def fault_started(self) -> float | None:
        """When the drill broke something: a service stopped, or a fault switched on."""
        return self.moments.get("stopped", self.moments.get("fault_on"))

    def fault_ended(self) -> float | None:
        """When the drill repaired it: the service restarted, or the fault switched off."""
        return self.moments.get("restarted", self.moments.get("fault_off"))

    def reset(self, platform: Platform, endpoints: Endpoints) -> None:
        """Start a new drill: forget the moments, notes and traffic of the previous one."""
        self.stop_traffic()
        self.platform, self.endpoints = platform, endpoints
        self.moments, self.notes, self.traffic = {}, {}, None

    def saw_alerts(self, firing: list[dict[str, str]]) -> None:
        seen = self.notes.setdefault("alerts_seen", {})
        now = time.time()
        for labels in firing:
            seen.setdefault(f"{labels.get('alertname', '?')}|{labels.get('service', '?')}", now)

    def require(self) -> tuple[Platform, Endpoints]:
        if self.platform is None or self.endpoints is None:
            raise RuntimeError("the drill recorder is not attached to a platform (run via python -m scripts.drills)")
        return self.platform, self.endpoints

    def start_traffic(
        self, url: str, rate_per_s: float, max_seconds: float, max_requests: int, headers: dict[str, str] | None = None
    ) -> None:
        if self.traffic is not None:
            return
        ready = threading.Event()
        traffic = BackgroundTraffic(url, threading.Thread(name="drill-traffic", daemon=True), ready)

        def run() -> None:
            async def main() -> TrafficResult:
                traffic.loop = asyncio.get_running_loop()
                traffic.stop_requested = asyncio.Event()
                ready.set()
                return await send_traffic(
                    url,
                    requests=max_requests,
                    concurrency=4,
                    max_duration_s=max_seconds,
                    rate_per_s=rate_per_s,
                    timeout_s=5.0,
                    stop=traffic.stop_requested,
                    headers=headers,
                )

            traffic.result = asyncio.run(main())

        traffic.thread = threading.Thread(target=run, name="drill-traffic", daemon=True)
        self.traffic = traffic
        traffic.thread.start()
        ready.wait(5)
        self._watch_alerts()

    def _watch_alerts(self) -> None:
        """Poll the live alert state while the drill runs, so no alert that fires goes unseen."""
        from scripts.drills.inhibition import alertmanager_states, remember
        from scripts.promql import Prometheus, PrometheusError

        _, endpoints = self.require()
        prometheus = Prometheus(endpoints.prometheus)
        traffic = self.traffic

        def watch() -> None:
            while traffic is not None and traffic.thread.is_alive():
                with contextlib.suppress(PrometheusError):
                    self.saw_alerts(prometheus.firing_alerts())
                with contextlib.suppress(OSError, ValueError):
                    remember(self.notes, alertmanager_states(endpoints.alertmanager), time.time())
                time.sleep(0.5)

        threading.Thread(target=watch, name="drill-alert-watch", daemon=True).start()

    def stop_traffic(self, timeout_s: float = 15) -> TrafficResult | None:
        traffic = self.traffic
        if traffic is None:
            return None
        if traffic.loop is not None and traffic.stop_requested is not None and not traffic.loop.is_closed():
            traffic.loop.call_soon_threadsafe(traffic.stop_requested.set)
        traffic.thread.join(timeout_s)
        return traffic.result


RECORDER = Recorder()
