"""Canary rollouts under steady traffic: how fast a bad version goes, what users saw, and no false rollback.

    python -m bench.canary_bench --bad-runs 3 --good-runs 5

Runs its own local platform (drill profile, state in a temp dir, ports shifted) with steady traffic
through hello, and deploys response as a canary (scripts.canary, the drill settings):

- a bad version with errors (``<n>-bad-errors``) and one with latency (``<n>-bad-latency``),
  ``--bad-runs`` times each: the time from the deploy to the rollback, and the share of user
  requests that failed during the whole canary (deploy to rollback);
- good versions, ``--good-runs`` times one after the other: the time to 100 % and every rollback
  among them (a false rollback).

The analysis is the canary analysis (``--analysis`` names another ``module:function``).
Writes bench/results/canary_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.private_platform import private_platform
from scripts.canary.__main__ import DEFAULT_ANALYSIS, DEFAULT_TEMPLATES_DIR, build_analysis
from scripts.canary.driver import DRILL_SETTINGS, PROMOTED, Outcome, RolloutRequest, run_rollout
from scripts.canary.local_target import LocalTarget
from scripts.canary.record import RolloutRecord, records_dir
from scripts.traffic import TrafficResult, send_traffic

RESULTS = Path(__file__).resolve().parent / "results" / "canary_bench.json"
TRAFFIC_RATE_PER_S = 40
MAX_TRAFFIC_S = 3000


class Traffic:
    """Steady, bounded traffic through hello in a thread of its own, for the whole bench."""

    def __init__(self, url: str) -> None:
        self.result: TrafficResult | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        ready = threading.Event()

        async def main() -> TrafficResult:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            ready.set()
            return await send_traffic(
                url,
                requests=TRAFFIC_RATE_PER_S * MAX_TRAFFIC_S,
                concurrency=4,
                rate_per_s=TRAFFIC_RATE_PER_S,
                max_duration_s=MAX_TRAFFIC_S,
                stop=self._stop,
            )

        def run() -> None:
            self.result = asyncio.run(main())

        self._thread = threading.Thread(target=run, name="bench-traffic", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> TrafficResult:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        if self.result is None:
            raise RuntimeError("the traffic thread did not finish")
        return self.result


def _rollout(target: LocalTarget, analysis: Any, folder: Path, version: str) -> Outcome:
    record = RolloutRecord(folder, service="response", version=version, strategy="canary", target="local", plan=[])
    outcome = run_rollout(
        RolloutRequest("response", version, "canary", DRILL_SETTINGS),
        target,
        analysis,
        [record],
        threading.Event(),
        lambda line: print(f"    {line}", flush=True),
    )
    record.set_exposure(outcome.exposure)
    return outcome


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.canary_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bad-runs", type=int, default=3, help="rollouts of each bad version (default 3)")
    parser.add_argument("--good-runs", type=int, default=5, help="rollouts of good versions (default 5)")
    parser.add_argument("--analysis", default=DEFAULT_ANALYSIS, help="module:function (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (default: %(default)s)")
    args = parser.parse_args(argv)
    if not 0 <= args.bad_runs <= 20 or not 0 <= args.good_runs <= 20:
        parser.error("runs must be between 0 and 20")
    runs: list[dict[str, Any]] = []
    with private_platform("fd-canary-bench-") as (platform, endpoints, state):
        analysis = build_analysis(endpoints.prometheus, DEFAULT_TEMPLATES_DIR, args.analysis)
        target = LocalTarget(platform, progress=lambda line: print(f"    {line}", flush=True))
        traffic = Traffic(endpoints.services["hello"] + "/hello")
        plan = [(f"{n + 2}-bad-errors", "bad-errors") for n in range(args.bad_runs)]
        plan += [(f"{n + 2}-bad-latency", "bad-latency") for n in range(args.bad_runs)]
        plan += [(f"{n + 2}-good", "good") for n in range(args.good_runs)]
        outcomes: list[tuple[str, str, Outcome]] = []
        try:
            for version, kind in plan:
                print(f"\n## {kind}: response {target.stable_version('response')} -> {version}", flush=True)
                outcomes.append((version, kind, _rollout(target, analysis, records_dir(state), version)))
        finally:
            result = traffic.stop()
        for version, kind, outcome in outcomes:
            window = [ok for when, ok in result.timeline if outcome.started_at <= when <= outcome.finished_at]
            failed = sum(1 for ok in window if not ok)
            runs.append(
                {
                    "kind": kind,
                    "version": version,
                    "outcome": outcome.result,
                    "reason": outcome.reason,
                    "seconds": round(outcome.duration_s, 1),
                    "last_weight_percent": outcome.last_weight_percent,
                    "user_requests": len(window),
                    "user_requests_failed": failed,
                    "failed_share": round(failed / len(window), 5) if window else None,
                    "calls_served_by_new_version": outcome.exposure.served if outcome.exposure else None,
                }
            )
    summary: dict[str, Any] = {"runs": runs, "traffic_rate_per_s": TRAFFIC_RATE_PER_S}
    for kind in ("bad-errors", "bad-latency", "good"):
        mine = [r for r in runs if r["kind"] == kind]
        wrong = [r for r in mine if (r["outcome"] == PROMOTED) != (kind == "good")]
        summary[kind] = {
            "runs": len(mine),
            "wrong_decisions": len(wrong),
            "seconds": _spread([r["seconds"] for r in mine]),
            "failed_share": _spread([r["failed_share"] for r in mine if r["failed_share"] is not None]),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print("\nkind         runs  wrong  seconds (min/median/max)   failed share of user requests (max)")
    for kind in ("bad-errors", "bad-latency", "good"):
        row = summary[kind]
        seconds = row["seconds"]
        timing = f"{seconds['min']:.1f}/{seconds['median']:.1f}/{seconds['max']:.1f}" if seconds else "-"
        share = f"{row['failed_share']['max'] * 100:.2f} %" if row["failed_share"] else "-"
        print(f"{kind:<12} {row['runs']:>4}  {row['wrong_decisions']:>5}  {timing:<26} {share}")
    print(f"\nresults in {args.out}; rollout records were in the platform's temporary state")
    return 0 if all(summary[k]["wrong_decisions"] == 0 for k in ("bad-errors", "bad-latency", "good")) else 1


if __name__ == "__main__":
    start = time.monotonic()
    code = main()
    print(f"canary bench took {time.monotonic() - start:.0f}s", file=sys.stderr)
    raise SystemExit(code)
