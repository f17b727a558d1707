"""Firedrill's hello -> response against the floor: server CPU per request, in one run.

    python -m bench.floor_bench [--duration 8] [--rounds 3] [--connections 16]

The floor (bench/floor/pair.py) is the thinnest aiohttp pair with the same hop: hello in plain
HTTP, response over mTLS (EC P-256 certificates from one throwaway PKI, client certificate
required), one kept-alive client session, nothing else. Firedrill runs hello and response as
the platform does (ServiceProcess, the same certificates, instrumentation at its defaults,
spans to a file). Rounds alternate the two so the machine's drift hits both alike.

The figure is server CPU seconds (both processes, from /proc) per request served by wrk. When
``taskset`` exists the servers share core 0 and wrk runs on core 1, so the load generator does
not compete with what is measured. By default wrk saturates the servers; the faster variant then
gets more requests per wake-up, which lowers its CPU per request a little. ``--pause-ms N`` paces
every connection instead (N ms between an answer and the next request), so both variants serve
about the same rate. Results: a table and ``bench/results/floor.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.proc_stats import cpu_seconds
from bench.wrk import run_wrk
from scripts.ports import free_port
from scripts.processes import REPO, ServiceProcess, Spawned, http_ok, inherited_environment, spawn, stop_all
from scripts.vault.throwaway_pki import ThrowawayPki
from services.common import tls
from services.common.config import TlsFiles
from services.common.waiting import wait_until

RESULTS = Path(__file__).resolve().parent / "results" / "floor.json"
TARGET_RATIO = 1.15
SERVER_CPUS = {0}
WRK_CPU = 1


def _pin(pids: Sequence[int]) -> bool:
    """Servers on core 0 (wrk goes on core 1); False on a machine with fewer than two cores."""
    if (os.cpu_count() or 1) < 2:
        return False
    for pid in pids:
        for thread in Path(f"/proc/{pid}/task").iterdir():  # every thread: exporters run beside the loop
            os.sched_setaffinity(int(thread.name), SERVER_CPUS)
    return True


def _floor(root: Path, files: dict[str, TlsFiles]) -> tuple[list[Spawned], str]:
    back_port, front_port = free_port(), free_port()

    def start(role: str, port: int, *extra: str) -> Spawned:
        f = files[role]
        command = [sys.executable, "-m", "bench.floor.pair", role, str(port), str(f.cert), str(f.key), str(f.ca)]
        log = root / f"floor-{role}.log"
        return spawn(f"floor-{role}", [*command, *extra], log, env=inherited_environment(), cwd=REPO)

    operator = tls.TlsMaterial(files["operator"], "operator").client_context(tls.service_dns_name("response"))
    back = start("response", back_port)
    wait_until(lambda: http_ok(f"https://127.0.0.1:{back_port}/response", context=operator), timeout_s=20)
    front = start("hello", front_port, str(back_port))
    wait_until(lambda: http_ok(f"http://127.0.0.1:{front_port}/hello"), timeout_s=20)
    return [back, front], f"http://127.0.0.1:{front_port}/hello"


def _firedrill(root: Path, files: dict[str, TlsFiles]) -> tuple[list[ServiceProcess], str]:
    env = {"FIREDRILL_TRACE_FILE": str(root / "traces.jsonl")}  # the local platform's exporter
    services = [ServiceProcess(name, root, tls=files[name], env=env) for name in ("response", "hello")]
    for service in services:
        service.start()
    return services, f"http://{services[1].address}/hello"


def measure(
    variant: str,
    root: Path,
    files: dict[str, TlsFiles],
    duration_s: int,
    connections: int,
    pause_ms: int | None = None,
) -> dict[str, Any]:
    processes: Sequence[Spawned | ServiceProcess]
    processes, url = _floor(root, files) if variant == "floor" else _firedrill(root, files)
    try:
        pids = [p.pid for p in processes]
        pinned = _pin(pids)
        wrk_cpu = WRK_CPU if pinned and shutil.which("taskset") else None
        run_wrk(url, duration_s=2, connections=connections, cpu=wrk_cpu, pause_ms=pause_ms)  # warm-up
        before = sum(cpu_seconds(pid) for pid in pids)
        result = run_wrk(url, duration_s=duration_s, connections=connections, cpu=wrk_cpu, pause_ms=pause_ms)
        spent = sum(cpu_seconds(pid) for pid in pids) - before
    finally:
        stop_all(processes)
    return {
        "requests": result.requests,
        "errors": result.errors,
        "requests_per_s": round(result.requests_per_s, 1),
        "p50_ms": round(result.p50_s * 1000, 2),
        "p99_ms": round(result.p99_s * 1000, 2),
        "server_cpu_us_per_request": round(spent / max(result.requests, 1) * 1e6, 1),
        "pinned": pinned,
    }


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="measured seconds per variant and round (2-60)")
    parser.add_argument("--rounds", type=int, default=3, help="floor/Firedrill rounds, alternating (1-9)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (1-256)")
    parser.add_argument(
        "--pause-ms",
        type=int,
        default=None,
        help="paced load: each connection pauses this long between requests (default: saturate)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not 2 <= args.duration <= 60 or not 1 <= args.rounds <= 9 or not 1 <= args.connections <= 256:
        parser.error("bounds: --duration 2..60, --rounds 1..9, --connections 1..256")
    if args.pause_ms is not None and not 1 <= args.pause_ms <= 1000:
        parser.error("bounds: --pause-ms 1..1000")
    rounds: list[dict[str, dict[str, Any]]] = []
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="fd-floor-") as tmp:
        root = Path(tmp)
        pki = ThrowawayPki("bench-floor")
        files = {name: pki.write(root / "secrets" / name, name) for name in ("hello", "response", "operator")}
        for index in range(args.rounds):
            run = {
                variant: measure(
                    variant, root / f"{variant}-{index}", files, args.duration, args.connections, args.pause_ms
                )
                for variant in ("floor", "firedrill")
            }
            rounds.append(run)
            ratio = run["firedrill"]["server_cpu_us_per_request"] / run["floor"]["server_cpu_us_per_request"]
            print(
                f"round {index + 1}: floor {run['floor']['server_cpu_us_per_request']} us/req "
                f"({run['floor']['requests_per_s']} req/s), firedrill {run['firedrill']['server_cpu_us_per_request']} "
                f"us/req ({run['firedrill']['requests_per_s']} req/s), ratio {ratio:.2f}",
                flush=True,
            )
    ratios = [r["firedrill"]["server_cpu_us_per_request"] / r["floor"]["server_cpu_us_per_request"] for r in rounds]
    summary = {
        "benchmark": "hello -> response (mTLS hop), GET /hello under wrk, loopback: Firedrill vs the floor",
        "connections": args.connections,
        "pause_ms": args.pause_ms,
        "duration_s": args.duration,
        "rounds": rounds,
        "floor_us_per_request": round(statistics.median(r["floor"]["server_cpu_us_per_request"] for r in rounds), 1),
        "firedrill_us_per_request": round(
            statistics.median(r["firedrill"]["server_cpu_us_per_request"] for r in rounds), 1
        ),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_min": round(min(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "target_ratio": TARGET_RATIO,
        "load_average_before": load_before,
        "load_average_after": _load(),
    }
    summary["within_target"] = summary["ratio_median"] <= TARGET_RATIO
    verdict = "within" if summary["within_target"] else "OVER"
    print(
        f"median: floor {summary['floor_us_per_request']} us/req, firedrill {summary['firedrill_us_per_request']} "
        f"us/req; ratio {summary['ratio_median']} (rounds {summary['ratio_min']}-{summary['ratio_max']}; "
        f"{verdict} target {TARGET_RATIO}); load {summary['load_average_before']} -> {summary['load_average_after']}"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
