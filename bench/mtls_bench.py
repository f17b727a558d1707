"""mTLS overhead on hello -> response: throughput and latency with mTLS vs plain HTTP, one run.

    python -m bench.mtls_bench [--duration-s 5] [--concurrency 16]

Both modes run the same real processes (response, then hello, discovering it through the local
registry) on free loopback ports; the mTLS mode gives them certificates from a throwaway PKI
shaped like the platform's (so no Vault is needed to measure TLS itself). hello is the edge and
listens in plain HTTP in both modes, so the difference measured is the hello -> response hop
(mTLS, connections kept alive by hello's pool). ``--fresh-share`` makes a share of the load
client's workers reconnect to hello for every request. Results: a table on stdout and ``bench/results/mtls.json``; the
target is a p99 ratio (mTLS / plain) of at most 1.3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

from scripts.vault.devserver import free_port
from scripts.vault.throwaway_pki import ThrowawayPki
from services.common import tls
from services.common.config import TlsFiles

RESULTS = Path(__file__).resolve().parent / "results" / "mtls.json"
TARGET_P99_RATIO = 1.3


@dataclass
class ModeResult:
    mode: str
    requests: int
    failed: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class Services:
    """response and hello as processes, with or without TLS files."""

    def __init__(self, root: Path, files: dict[str, TlsFiles] | None) -> None:
        self.root = root
        self.files = files
        self.ports = {"response": free_port(), "hello": free_port()}
        self.ops_ports = {"response": free_port(), "hello": free_port()}
        self.processes: list[subprocess.Popen[bytes]] = []

    def _env(self, name: str) -> dict[str, str]:
        env = {
            **os.environ,
            "FIREDRILL_STATE_DIR": str(self.root),
            "FIREDRILL_PORT": str(self.ports[name]),
            "FIREDRILL_METRICS_PORT": str(self.ops_ports[name]),
            "FIREDRILL_REGISTRY_DIR": str(self.root / "registry"),
            "FIREDRILL_DISCOVERY": "local",
            "FIREDRILL_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        if self.files is not None:
            f = self.files[name]
            env |= {"FIREDRILL_TLS_CERT_FILE": str(f.cert), "FIREDRILL_TLS_KEY_FILE": str(f.key)}
            env["FIREDRILL_TLS_CA_FILE"] = str(f.ca)
        return env

    def url(self, name: str, path: str) -> str:
        # hello is the edge: plain HTTP in both modes; the measured difference is hello -> response.
        scheme = "https" if self.files is not None and name != "hello" else "http"
        return f"{scheme}://127.0.0.1:{self.ports[name]}{path}"

    def client_ssl(self, server: str) -> ssl.SSLContext | None:
        if self.files is None or server == "hello":
            return None
        return tls.TlsMaterial(self.files["operator"], "operator").client_context(tls.service_dns_name(server))

    def start(self) -> None:
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        for name in ("response", "hello"):
            log = open(self.root / "logs" / f"{name}.log", "ab")  # noqa: SIM115 (the child owns it)
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", f"services.{name}"],
                    env=self._env(name),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()
            self._wait_healthy(name)

    def _wait_healthy(self, name: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(  # noqa: S310 (loopback URL we built)
                    self.url(name, "/health"), timeout=1, context=self.client_ssl(name)
                ) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{name} not healthy after {timeout_s}s (logs in {self.root / 'logs'})")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.processes.clear()


async def _load(services: Services, mode: str, duration_s: float, concurrency: int, fresh_share: float) -> ModeResult:
    latencies: list[float] = []
    failed = 0
    url = services.url("hello", "/hello")
    context = services.client_ssl("hello")
    fresh_workers = round(concurrency * fresh_share)

    async def worker(index: int, until: float, record: bool) -> None:
        nonlocal failed
        connector = aiohttp.TCPConnector(
            ssl=context if context is not None else False, force_close=index < fresh_workers
        )
        async with aiohttp.ClientSession(connector=connector) as session:
            while time.perf_counter() < until:
                started = time.perf_counter()
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as answer:
                        await answer.read()
                        ok = answer.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if record:
                    if ok:
                        latencies.append(time.perf_counter() - started)
                    else:
                        failed += 1

    warm_until = time.perf_counter() + 1.0
    await asyncio.gather(*(worker(i, warm_until, False) for i in range(concurrency)))
    started = time.perf_counter()
    until = started + duration_s
    await asyncio.gather(*(worker(i, until, True) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return ModeResult(
        mode=mode,
        requests=len(ordered),
        failed=failed,
        duration_s=round(elapsed, 2),
        rps=round(len(ordered) / elapsed, 1),
        p50_ms=round(_percentile(ordered, 0.50) * 1000, 2),
        p90_ms=round(_percentile(ordered, 0.90) * 1000, 2),
        p99_ms=round(_percentile(ordered, 0.99) * 1000, 2),
    )


def run(duration_s: float, concurrency: int, fresh_share: float, rounds: int) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="fd-mtls-bench-"))
    try:
        pki = ThrowawayPki("bench")
        files = {name: pki.write(root / "secrets" / name, name) for name in ("hello", "response", "operator")}
        per_mode: dict[str, list[ModeResult]] = {"plain": [], "mtls": []}
        # Alternate the modes so drift of the machine's load hits both alike.
        for _ in range(rounds):
            for mode in ("plain", "mtls"):
                services = Services(root / mode, files if mode == "mtls" else None)
                services.start()
                try:
                    per_mode[mode].append(asyncio.run(_load(services, mode, duration_s, concurrency, fresh_share)))
                finally:
                    services.stop()
        best = {mode: min(results, key=lambda r: r.p99_ms) for mode, results in per_mode.items()}
        plain, mtls = best["plain"], best["mtls"]
        return {
            "benchmark": "hello -> response, GET /hello, loopback",
            "concurrency": concurrency,
            "duration_s": duration_s,
            "rounds": rounds,
            "fresh_connection_share": fresh_share,
            "plain": asdict(plain),
            "mtls": asdict(mtls),
            "all_rounds": {mode: [asdict(r) for r in results] for mode, results in per_mode.items()},
            "p99_ratio": round(mtls.p99_ms / plain.p99_ms, 3),
            "p50_ratio": round(mtls.p50_ms / plain.p50_ms, 3),
            "rps_ratio": round(mtls.rps / plain.rps, 3),
            "median_p99_ratio": round(
                statistics.median(r.p99_ms for r in per_mode["mtls"])
                / statistics.median(r.p99_ms for r in per_mode["plain"]),
                3,
            ),
            "target_p99_ratio": TARGET_P99_RATIO,
            "within_target": mtls.p99_ms / plain.p99_ms <= TARGET_P99_RATIO,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mtls_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=5.0, help="measured seconds per mode and round (1-60)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent client connections (1-256)")
    parser.add_argument("--rounds", type=int, default=2, help="plain/mTLS rounds, alternating (1-5)")
    parser.add_argument(
        "--fresh-share", type=float, default=0.0, help="share of client workers opening a new connection per request"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not 1 <= args.duration_s <= 60 or not 1 <= args.concurrency <= 256 or not 1 <= args.rounds <= 5:
        parser.error("bounds: --duration-s 1..60, --concurrency 1..256, --rounds 1..5")
    if not 0 <= args.fresh_share <= 1:
        parser.error("--fresh-share is between 0 and 1")
    result = run(args.duration_s, args.concurrency, args.fresh_share, args.rounds)
    print(f"{'mode':<6} {'requests':>9} {'failed':>6} {'rps':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
    for mode in ("plain", "mtls"):
        r = result[mode]
        assert isinstance(r, dict)
        print(
            f"{mode:<6} {r['requests']:>9} {r['failed']:>6} {r['rps']:>9} {r['p50_ms']:>8} {r['p90_ms']:>8} "
            f"{r['p99_ms']:>8}"
        )
    verdict = "within" if result["within_target"] else "OVER"
    print(
        f"p99 ratio mTLS/plain {result['p99_ratio']} ({verdict} target {TARGET_P99_RATIO}); "
        f"p50 ratio {result['p50_ratio']}; throughput ratio {result['rps_ratio']}"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
