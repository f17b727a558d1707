"""Outage drills in a row, and a soak with quick restarts that must not raise a single alert.

    python -m bench.drills_bench --drills 5 --soak-minutes 10 --restarts 3

(a) steady traffic for the soak, with quick restarts of response shorter than ServiceDown's
    `for` -> number of alerts that fired (false alerts; the target is zero);
(b) the outage drill N times -> min/median/max of time to alert and time to incident.
Runs its own local platform (state in a temp dir, ports shifted) and stops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.private_platform import private_platform
from scripts.drills.__main__ import run_drill
from scripts.local.stack import LocalPlatform
from scripts.promql import Prometheus, PrometheusError
from scripts.traffic import send_traffic
from services.common.profiles import DRILL

RESULTS = Path(__file__).resolve().parent / "results" / "drills.json"


def _stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)} if values else {}


def drills(platform: LocalPlatform, platform_dir: Path, count: int) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for number in range(1, count + 1):
        print(f"[bench] drill {number}/{count}", flush=True)
        result = run_drill("outage", "response", platform_dir / "drills", bring_up=False, platform=platform)
        runs.append(
            {
                "passed": result.passed,
                "time_to_alert_s": result.time_to_alert_s,
                "time_to_incident_s": result.time_to_incident_s,
                "time_to_recovery_s": result.time_to_recovery_s,
                "requests_failed_during_outage": result.requests_failed_during_outage,
                "unexpected_alerts": result.unexpected_alerts,
                "incidents_for_service": result.incidents_for_service,
            }
        )
    return {
        "runs": runs,
        "time_to_alert_s": _stats([r["time_to_alert_s"] for r in runs if r["time_to_alert_s"] is not None]),
        "time_to_incident_s": _stats([r["time_to_incident_s"] for r in runs if r["time_to_incident_s"] is not None]),
        "time_to_recovery_s": _stats([r["time_to_recovery_s"] for r in runs if r["time_to_recovery_s"] is not None]),
        "all_passed": all(r["passed"] for r in runs),
    }


def soak(platform: LocalPlatform, minutes: float, restarts: int) -> dict[str, Any]:
    endpoints = platform.endpoints()
    prometheus = Prometheus(endpoints.prometheus)
    duration_s = minutes * 60
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                for labels in prometheus.firing_alerts():
                    seen.setdefault(f"{labels.get('alertname')}{{service={labels.get('service')}}}", time.time())
            except PrometheusError:
                pass
            stop.wait(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    restart_downtimes = []

    def restarter() -> None:
        for number in range(restarts):
            if stop.wait(duration_s / (restarts + 1)):
                return
            began = time.monotonic()
            platform.restart("response")
            restart_downtimes.append(time.monotonic() - began)
            print(f"[bench] quick restart {number + 1}/{restarts}: {restart_downtimes[-1]:.2f}s", flush=True)

    restarts_thread = threading.Thread(target=restarter, daemon=True)
    restarts_thread.start()
    print(f"[bench] soak: {minutes:g} min of 20 req/s through hello, {restarts} quick restarts", flush=True)
    traffic = asyncio.run(
        send_traffic(
            endpoints.services["hello"] + "/hello",
            requests=int(duration_s * 20) + 10,
            concurrency=4,
            max_duration_s=duration_s,
            rate_per_s=20,
        )
    )
    restarts_thread.join(60)
    # Alerts evaluate a little after the last restart: keep watching for one `for` window more.
    time.sleep(DRILL.for_symptom_s + DRILL.evaluation_interval_s * 2)
    stop.set()
    watcher.join(5)
    return {
        "minutes": minutes,
        "requests": traffic.sent,
        "requests_failed": traffic.failed,
        "restarts": len(restart_downtimes),
        "restart_downtime_s": restart_downtimes,
        "service_down_for_s": DRILL.for_service_down_s,
        "false_alerts": sorted(seen),
        "false_alert_count": len(seen),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.drills_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--drills", type=int, default=5, help="outage drills in a row (default 5)")
    parser.add_argument("--soak-minutes", type=float, default=10, help="soak length in minutes (default 10)")
    parser.add_argument("--restarts", type=int, default=3, help="quick restarts during the soak (default 3)")
    args = parser.parse_args(argv)
    with private_platform("fd-bench-drills-") as (platform, _, state):
        # The soak first: a drill's outage legitimately keeps the slow-burn SLO ticket firing for its
        # long window afterwards, which would be counted as a false alert of the soak.
        soak_results = soak(platform, args.soak_minutes, args.restarts) if args.soak_minutes else {}
        drill_results = drills(platform, state, args.drills) if args.drills else {}
    report = {
        "benchmark": "drills",
        "command": f"python -m bench.drills_bench --drills {args.drills} --soak-minutes {args.soak_minutes:g} "
        f"--restarts {args.restarts}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "profile": DRILL.name,
        "drills": drill_results,
        "soak": soak_results,
        "targets": {"time_to_incident_median_s": "<= 8", "false_alerts": 0},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    if drill_results:
        for key in ("time_to_alert_s", "time_to_incident_s", "time_to_recovery_s"):
            stats = drill_results[key]
            print(
                f"{key:<22} min {stats.get('min', 0):5.1f}  median {stats.get('median', 0):5.1f}  "
                f"max {stats.get('max', 0):5.1f}"
            )
    if soak_results:
        print(
            f"soak: {soak_results['requests']} requests, {soak_results['restarts']} restarts "
            f"({', '.join(f'{d:.1f}s' for d in soak_results['restart_downtime_s'])}), "
            f"false alerts: {soak_results['false_alert_count']} {soak_results['false_alerts']}"
        )
    print(f"results in {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
