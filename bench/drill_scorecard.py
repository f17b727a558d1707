"""The drill catalogue's scorecard, several times over: median time to detect and to recover per drill.

    python -m bench.drill_scorecard --runs 3

Runs its own local platform (drill profile, state in a temp dir, ports shifted), waits until no alert
fires, runs ``simulate-all`` (every drill in catalogue order) ``--runs`` times, stops the platform.
Writes bench/results/drill_scorecard.json; each run's scorecard page is under the temp state's drills/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.private_platform import private_platform
from scripts.drills import catalogue
from scripts.drills.__main__ import run_catalogue
from scripts.drills.report import DrillResult
from scripts.drills.trace_findings import FindingGroup
from scripts.promql import Prometheus
from services.common.waiting import wait_until

RESULTS = Path(__file__).resolve().parent / "results" / "drill_scorecard.json"


def _spread(values: list[float | None]) -> dict[str, float]:
    known = [v for v in values if v is not None]
    return {"min": min(known), "median": statistics.median(known), "max": max(known)} if known else {}


def _quiet(prometheus: Prometheus) -> None:
    wait_until(
        lambda: not [a for a in prometheus.firing_alerts() if a.get("alertname") != "ErrorBudgetBurnTicket"],
        timeout_s=180,
        interval_s=0.5,
        what="no alert firing before the next run",
    )


def _culprit_traces(result: DrillResult) -> int | None:
    expected = result.expected_trace_finding
    if expected is None:
        return None
    groups = (FindingGroup.from_json(g) for g in result.trace_findings)
    return sum(g.traces for g in groups if g.matches(expected))


def summarise(runs: list[list[DrillResult]]) -> dict[str, Any]:
    per_drill: dict[str, list[DrillResult]] = {}
    for results in runs:
        for result in results:
            per_drill.setdefault(result.experiment, []).append(result)
    return {
        name: {
            "runs": len(results),
            "passed": sum(r.passed for r in results),
            "time_to_detect_s": _spread([r.time_to_alert_s for r in results]),
            "time_to_recover_s": _spread([r.time_to_recovery_s for r in results]),
            "user_requests_failed": [r.requests_failed_during_outage for r in results],
            "false_alerts": [r.unexpected_alerts for r in results],
            # Traces that named the drill's expected culprit behind an edge that answered well (tracing-bug).
            "culprit_traces": [_culprit_traces(r) for r in results],
        }
        for name, results in per_drill.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drill_scorecard", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="how many times to run the whole catalogue (default 3)")
    parser.add_argument(
        "--drill",
        action="append",
        choices=catalogue.names(),
        help="run only this drill (repeatable; default: the whole catalogue)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 10:
        parser.error("--runs must be between 1 and 10")
    names = args.drill or catalogue.names()
    runs: list[list[DrillResult]] = []
    with private_platform("fd-score-", wait_timeout_s=120) as (platform, endpoints, state):
        prometheus = Prometheus(endpoints.prometheus)
        for number in range(1, args.runs + 1):
            print(f"[bench] catalogue run {number}/{args.runs}", flush=True)
            _quiet(prometheus)
            out = state / "drills" / f"run{number}"
            runs.append([r.result for r in run_catalogue(names, out, False, platform)])
    summary = {"runs": args.runs, "drills": summarise(runs)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0 if all(d["passed"] == d["runs"] for d in summary["drills"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
