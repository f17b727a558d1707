"""Detection at production speed: the local platform in the production timing profile.

    python -m bench.production_detection                       # 5 outage drills, then a 30-minute soak
    python -m bench.production_detection --soak-minutes 0     # the drills only
    python -m bench.production_detection --drills 0            # the soak only
    python -m bench.production_detection --quick               # 2 drills and a 3-minute soak

(a) The outage drill N times (on rating by default, see --service) -> median and max of stop -> alert
    firing, stop -> incident recorded, and restart -> incident resolved (targets: incident median
    <= 30 s, resolved <= 60 s).
(b) A soak: steady traffic through hello for --soak-minutes, with a bounded number of restarts
    -> every alert that fired and every page (a critical alert firing in Prometheus, or an
    incident of severity critical) during it. A page is false unless it is the ServiceDown of a
    service one of whose restarts kept it down for `for` or longer (target: 0 false pages).

The soak restarts rating and response in turn (stop, --hold-s, start; each one's downtime is
measured from the stop until its health endpoint answers again). A plain restart of rating takes
several seconds here (gRPC start-up on a loaded machine), close to ServiceDown's 10 s `for`, so one
or two health scrapes in a row fail; hello rides out response's shorter one. Holding response down
longer would spend hello's error budget for real: on a platform minutes old the SLO page's
6h/30m windows hold little else, so that would be a true page, not a false one.

Runs its own platform (temporary state, reserved port offset) and stops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.private_platform import private_platform
from scripts.drills import probes
from scripts.drills.__main__ import run_drill
from scripts.drills.recorder import RECORDER
from scripts.local.stack import LocalPlatform
from scripts.processes import http_ok
from scripts.promql import Prometheus, PrometheusError
from scripts.traffic import send_traffic
from services.common.profiles import PRODUCTION
from services.common.waiting import wait_until

RESULTS = Path(__file__).resolve().parent / "results" / "production_detection.json"
TRAFFIC_RATE_PER_S = 20
# Restarted in turn during the soak: rating's outage users do not see (movie degrades, hello does not
# call it); hello rides out response's short restarts.
SOAK_VICTIMS = ("rating", "response")
DRILL_SERVICE = "rating"


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"median": round(statistics.median(values), 2), "max": max(values), "min": min(values)}


def drills(platform: LocalPlatform, platform_dir: Path, count: int, service: str) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for number in range(1, count + 1):
        print(f"[bench] outage drill {number}/{count} on {service} (production profile)", flush=True)
        result = run_drill("outage", service, platform_dir / "drills", bring_up=False, platform=platform)
        runs.append(
            {
                "passed": result.passed,
                "failed_expectations": result.failed_expectations(),
                "stop_to_alert_s": result.time_to_alert_s,
                "stop_to_incident_s": result.time_to_incident_s,
                "restart_to_resolved_s": result.time_to_recovery_s,
                "unexpected_alerts": result.unexpected_alerts,
            }
        )
    out: dict[str, Any] = {"service": service, "runs": runs, "all_passed": all(r["passed"] for r in runs)}
    for key in ("stop_to_alert_s", "stop_to_incident_s", "restart_to_resolved_s"):
        out[key] = _stats([r[key] for r in runs if r[key] is not None])
    return out


@dataclass
class Restart:
    victim: str
    held_s: float
    started_at: float
    downtime_s: float  # from the stop until its health endpoint answered again
    failed_requests: int = 0


def _health_url(platform: LocalPlatform, unit: str) -> str:
    for program in platform.programs():
        if program.name == unit and program.health_url:
            return program.health_url
    raise LookupError(f"{unit} has no health URL")


def restart_once(platform: LocalPlatform, victim: str, hold_s: float, stop: threading.Event) -> Restart:
    url = _health_url(platform, victim)
    began = time.time()
    platform.stop(victim)
    if hold_s:
        stop.wait(hold_s)  # the outage itself: how long the service stays down is what is measured
    platform.start(victim)
    wait_until(lambda: http_ok(url), timeout_s=60, interval_s=0.1, what=f"{victim} healthy again")
    return Restart(victim, hold_s, began, round(time.time() - began, 2))


class AlertWatch:
    """Every alert that fires in Prometheus while the soak runs, with its severity and first sighting."""

    def __init__(self, prometheus: Prometheus) -> None:
        self.prometheus = prometheus
        self.seen: dict[str, dict[str, Any]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="soak-alert-watch", daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                for labels in self.prometheus.firing_alerts():
                    key = f"{labels.get('alertname')}{{service={labels.get('service')}}}"
                    self.seen.setdefault(key, {"severity": labels.get("severity"), "first_seen": time.time()})
            except PrometheusError:
                pass
            self.stop.wait(0.5)


def _since(created_at: str, moment: float) -> bool:
    return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp() >= moment


def soak(platform: LocalPlatform, minutes: float, restarts: int, hold_s: float) -> dict[str, Any]:
    endpoints = platform.endpoints()
    RECORDER.reset(platform, endpoints)  # probes.incidents() reaches the receiver through it
    timing = platform.timing
    duration_s = minutes * 60
    watch = AlertWatch(Prometheus(endpoints.prometheus))
    began = time.time()
    watch.thread.start()
    done: list[Restart] = []
    errors: list[str] = []

    def restarter() -> None:
        for number in range(restarts):
            if watch.stop.wait(duration_s / (restarts + 1)):
                return
            victim = SOAK_VICTIMS[number % len(SOAK_VICTIMS)]
            hold = hold_s
            try:
                done.append(restart_once(platform, victim, hold, watch.stop))
            except Exception as exc:  # reported, and the soak goes on
                errors.append(f"restart {number + 1} of {victim}: {exc}")
                continue
            print(
                f"[bench] restart {number + 1}/{restarts}: {victim} held {hold:g}s, down {done[-1].downtime_s:.2f}s "
                f"(ServiceDown's for: {timing.for_service_down_s}s)",
                flush=True,
            )

    restarts_thread = threading.Thread(target=restarter, name="soak-restarts", daemon=True)
    restarts_thread.start()
    print(
        f"[bench] soak: {minutes:g} min of {TRAFFIC_RATE_PER_S} req/s through hello, {restarts} restarts "
        f"of {' and '.join(SOAK_VICTIMS)} in turn (held {hold_s:g}s)",
        flush=True,
    )
    traffic = asyncio.run(
        send_traffic(
            endpoints.services["hello"] + "/hello",
            requests=int(duration_s * TRAFFIC_RATE_PER_S) + 10,
            concurrency=4,
            max_duration_s=duration_s,
            rate_per_s=TRAFFIC_RATE_PER_S,
        )
    )
    restarts_thread.join(120)
    # A page for the last restart would fire within a health scrape, an evaluation, `for` and the
    # page's group_wait: keep watching that long (twice over) after the traffic ends.
    tail_s = 2 * (2 * timing.health_scrape_interval_s + timing.for_service_down_s + timing.page_group_wait_s)
    print(f"[bench] soak over; watching alerts {tail_s}s more", flush=True)
    time.sleep(tail_s)  # an observation window, not a wait for a condition
    watch.stop.set()
    watch.thread.join(5)
    for restart in done:
        restart.failed_requests = sum(
            1
            for when, ok in traffic.timeline
            if not ok and restart.started_at <= when <= restart.started_at + restart.downtime_s + 5
        )
    incidents = [i for i in probes.incidents() if _since(str(i.get("created_at", "")), began)]
    pages_notified = {f"{i['alertname']}{{service={i['service']}}}" for i in incidents if i["severity"] == "critical"}
    pages_fired = {label for label, seen in watch.seen.items() if seen["severity"] == "critical"}
    # A restart that kept its service down for `for` or longer is an outage: its ServiceDown is a true page.
    outages = {f"ServiceDown{{service={r.victim}}}" for r in done if r.downtime_s >= timing.for_service_down_s}
    pages = sorted((pages_notified | pages_fired) - outages)
    return {
        "minutes": minutes,
        "requests": traffic.sent,
        "requests_failed": traffic.failed,
        "restarts": [asdict(r) for r in done],
        "restart_errors": errors,
        "longest_downtime_s": max((r.downtime_s for r in done), default=0.0),
        "service_down_for_s": timing.for_service_down_s,
        "restarts_shorter_than_for": sum(1 for r in done if r.downtime_s < timing.for_service_down_s),
        "alerts_fired": watch.seen,
        "incidents_opened": [
            {k: i.get(k) for k in ("id", "alertname", "service", "severity", "created_at")} for i in incidents
        ],
        "critical_alerts_fired": sorted(pages_fired),
        "pages_notified": sorted(pages_notified),
        "true_pages_for_restarts_as_long_as_for": sorted((pages_notified | pages_fired) & outages),
        "false_pages": pages,
        "false_page_count": len(pages),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.production_detection",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--drills", type=int, default=5, help="outage drills in a row (default 5)")
    parser.add_argument(
        "--service", default=DRILL_SERVICE, help=f"the service the outage drills stop (default {DRILL_SERVICE})"
    )
    parser.add_argument("--soak-minutes", type=float, default=30, help="soak length in minutes (default 30; 0: none)")
    parser.add_argument("--restarts", type=int, default=12, help="restarts during the soak (default 12)")
    parser.add_argument(
        "--hold-s", type=float, default=0.0, help="extra seconds each restarted service stays stopped (default 0)"
    )
    parser.add_argument("--quick", action="store_true", help="2 drills and a 3-minute soak with 2 restarts")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    if args.quick:
        args.drills, args.soak_minutes, args.restarts = 2, 3, 2
    if not 0 <= args.hold_s < PRODUCTION.for_service_down_s:
        parser.error(f"--hold-s must be from 0 to under ServiceDown's for ({PRODUCTION.for_service_down_s}s)")
    with private_platform("fd-bench-production-", wait_timeout_s=180, timing=PRODUCTION) as (platform, _, state):
        drill_results = drills(platform, state, args.drills, args.service) if args.drills else {}
        soak_results = soak(platform, args.soak_minutes, args.restarts, args.hold_s) if args.soak_minutes else {}
    command = "python -m bench.production_detection" + (
        " --quick"
        if args.quick
        else f" --drills {args.drills} --service {args.service} --soak-minutes {args.soak_minutes:g} "
        f"--restarts {args.restarts} --hold-s {args.hold_s:g}"
    )
    report = {
        "benchmark": "production_detection",
        "command": command,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "profile": PRODUCTION.name,
        "drills": drill_results,
        "soak": soak_results,
        "targets": {"stop_to_incident_median_s": "<= 30", "restart_to_resolved_s": "<= 60", "false_pages": 0},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    if drill_results:
        print(f"outage drills on {args.service}: {'all passed' if drill_results['all_passed'] else 'NOT all passed'}")
        for key in ("stop_to_alert_s", "stop_to_incident_s", "restart_to_resolved_s"):
            stats = drill_results[key]
            print(f"  {key:<24} median {stats.get('median', 0):6.1f}  max {stats.get('max', 0):6.1f}")
    if soak_results:
        print(
            f"soak: {soak_results['minutes']:g} min, {soak_results['requests']} requests "
            f"({soak_results['requests_failed']} failed), {len(soak_results['restarts'])} restarts, longest down "
            f"{soak_results['longest_downtime_s']:.1f}s (for: {soak_results['service_down_for_s']}s); "
            f"false pages: {soak_results['false_page_count']} {soak_results['false_pages']}"
        )
    print(f"results in {args.out}")
    failed = (drill_results and not drill_results["all_passed"]) or (
        soak_results and (soak_results["false_page_count"] or soak_results["restart_errors"])
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
