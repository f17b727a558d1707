"""Instrumented vs bare hello->response under wrk: req/s, p50, p99, RSS and server CPU per request.

Both variants run in the same invocation, alternating, on fresh processes; the figure to trust on
a 2-core machine is server CPU time per request (the load generator competes for the cores).

    python -m bench.http_overhead --duration 10 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.procs import cpu_seconds, rss_bytes, service_processes
from bench.wrk import run_wrk

BENCH_OFFSET = 40000
HELLO_PORT = 5050 + BENCH_OFFSET
RESPONSE_PORT = 6060 + BENCH_OFFSET
RESULTS = Path(__file__).resolve().parent / "results" / "http_overhead.json"


def _env(instrumented: bool, state: Path, port: int) -> dict[str, str]:
    env = {
        "FIREDRILL_PORT_OFFSET": str(BENCH_OFFSET),
        "FIREDRILL_PORT": str(port),
        "FIREDRILL_INSTRUMENTATION": "on" if instrumented else "off",
        "FIREDRILL_REGISTRY_DIR": str(state / "registry"),
        "FIREDRILL_LOG_LEVEL": "WARNING",
    }
    if instrumented:  # what the local platform does: spans to a file, default sampler
        env["FIREDRILL_TRACE_FILE"] = str(state / "traces.jsonl")
    return env


def measure(instrumented: bool, duration_s: int, connections: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="fd-bench-") as tmp:
        state = Path(tmp)
        specs = [
            (
                "response",
                "services.response",
                _env(instrumented, state, RESPONSE_PORT),
                f"http://127.0.0.1:{RESPONSE_PORT}/health",
            ),
            ("hello", "services.hello", _env(instrumented, state, HELLO_PORT), f"http://127.0.0.1:{HELLO_PORT}/health"),
        ]
        with service_processes(specs, state) as running:
            url = f"http://127.0.0.1:{HELLO_PORT}/hello"
            run_wrk(url, duration_s=2, connections=connections)  # warm-up: imports, caches, JIT-free paths
            pids = [item.pid for item in running.values()]
            cpu_before = sum(cpu_seconds(pid) for pid in pids)
            result = run_wrk(url, duration_s=duration_s, connections=connections)
            cpu_after = sum(cpu_seconds(pid) for pid in pids)
            rss = sum(rss_bytes(pid) for pid in pids)
    return {
        "requests": result.requests,
        "errors": result.errors,
        "requests_per_s": result.requests_per_s,
        "p50_ms": result.p50_s * 1000,
        "p99_ms": result.p99_s * 1000,
        "rss_mb": rss / 2**20,
        "cpu_us_per_request": (cpu_after - cpu_before) / max(result.requests, 1) * 1e6,
    }


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.http_overhead", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per run (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each variant, alternating (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {"instrumented": [], "bare": []}
    for round_number in range(1, args.rounds + 1):
        for variant in ("bare", "instrumented"):
            print(f"[bench] round {round_number}/{args.rounds}: {variant} ({args.duration}s of wrk)", flush=True)
            runs[variant].append(measure(variant == "instrumented", args.duration, args.connections))
    medians = {variant: _median(found) for variant, found in runs.items()}
    ratios = {
        key: medians["instrumented"][key] / medians["bare"][key]
        for key in ("cpu_us_per_request", "requests_per_s", "p50_ms", "p99_ms", "rss_mb")
    }
    report: dict[str, Any] = {
        "benchmark": "http_overhead",
        "command": f"python -m bench.http_overhead --duration {args.duration} --rounds {args.rounds} "
        f"--connections {args.connections}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "runs": runs,
        "median": medians,
        "ratio_instrumented_over_bare": ratios,
        "targets": {"cpu_us_per_request": "<= 1.18", "requests_per_s": ">= 0.85"},
        "met": ratios["cpu_us_per_request"] <= 1.18 and ratios["requests_per_s"] >= 0.85,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"\n{'':<22}{'bare':>12}{'instrumented':>14}{'ratio':>8}")
    for key in ("requests_per_s", "p50_ms", "p99_ms", "rss_mb", "cpu_us_per_request"):
        print(f"{key:<22}{medians['bare'][key]:>12.1f}{medians['instrumented'][key]:>14.1f}{ratios[key]:>8.2f}")
    print(f"\ntargets met: {report['met']}  (results in {RESULTS})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
