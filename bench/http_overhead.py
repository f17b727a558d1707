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

from bench.proc_stats import cpu_seconds, rss_bytes
from bench.wrk import run_wrk
from scripts.ports import reserved_port_offset
from scripts.processes import ServiceProcess, stop_all
from services.common import catalog

RESULTS = Path(__file__).resolve().parent / "results" / "http_overhead.json"


def _service(name: str, instrumented: bool, state: Path, offset: int) -> ServiceProcess:
    spec = catalog.service(name)
    assert spec.metrics_port is not None
    env = {"FIREDRILL_PORT_OFFSET": str(offset), "FIREDRILL_INSTRUMENTATION": "on" if instrumented else "off"}
    if instrumented:  # what the local platform does: spans to a file, default sampler
        env["FIREDRILL_TRACE_FILE"] = str(state / "traces.jsonl")
    return ServiceProcess(name, state, port=spec.port + offset, metrics_port=spec.metrics_port + offset, env=env)


def measure(instrumented: bool, duration_s: int, connections: int, offset: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="fd-bench-") as tmp:
        state = Path(tmp)
        services = [_service(name, instrumented, state, offset) for name in ("response", "hello")]
        try:
            for service in services:
                service.start()
            url = f"http://{services[1].address}/hello"
            run_wrk(url, duration_s=2, connections=connections)  # warm-up: imports, caches, JIT-free paths
            pids = [service.pid for service in services]
            cpu_before = sum(cpu_seconds(pid) for pid in pids)
            result = run_wrk(url, duration_s=duration_s, connections=connections)
            cpu_after = sum(cpu_seconds(pid) for pid in pids)
            rss = sum(rss_bytes(pid) for pid in pids)
        finally:
            stop_all(services)
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
    # Ports shifted by an offset nobody else holds, so the bench can run beside a test run.
    with reserved_port_offset(catalog.base_ports()) as offset:
        for round_number in range(1, args.rounds + 1):
            for variant in ("bare", "instrumented"):
                print(f"[bench] round {round_number}/{args.rounds}: {variant} ({args.duration}s of wrk)", flush=True)
                runs[variant].append(measure(variant == "instrumented", args.duration, args.connections, offset))
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
