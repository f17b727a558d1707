"""mTLS overhead: throughput and latency with mTLS vs without, for each case, in one run.

    python -m bench.mtls_bench [--case all|hello|movie] [--duration-s 5] [--concurrency 16]

Cases (both modes of a case run the same real processes on free loopback ports; the mTLS mode
gives them certificates from a throwaway PKI shaped like the platform's, so no Vault is needed to
measure TLS itself; modes alternate round by round so drift of the machine hits both alike):

- ``hello``: GET /hello on hello -> response (HTTP). hello is the edge and listens in plain HTTP
  in both modes, so the difference measured is the hello -> response hop (mTLS, connections kept
  alive by hello's pool). ``--fresh-share`` makes a share of the load client's workers reconnect
  to hello for every request.
- ``movie``: GetMovieDetails on movie's gRPC API with auth, metadata, rating and movie as
  processes. In the mTLS mode every hop is mTLS with the identity check: the load client (as the
  operator) -> movie, and movie -> metadata, rating and auth; in the plain mode all are plaintext.
  The client keeps its channels (HTTP/2 connections), as movie keeps its upstream channels.

Results: a table on stdout and ``bench/results/mtls.json``; the target is a p99 ratio
(mTLS / plain) of at most 1.3 for every case.
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
from typing import Any

import aiohttp
import grpc
import grpc.aio

from scripts.local.stack import http_ok
from scripts.movie.client import open_channel
from scripts.movie.stack import tls_env
from scripts.ports import free_port
from scripts.vault.throwaway_pki import ThrowawayPki
from services.common import tls
from services.common.config import TlsFiles
from services.common.grpc_auth import bearer_metadata
from services.common.waiting import wait_until
from services.genproto import auth_pb2, auth_pb2_grpc, movie_pb2, movie_pb2_grpc

RESULTS = Path(__file__).resolve().parent / "results" / "mtls.json"
TARGET_P99_RATIO = 1.3
CASES = ("hello", "movie")
MOVIE_SERVICES = ("auth", "metadata", "rating", "movie")  # start order: auth publishes the JWT keys
MOVIE_ID = "bench-mtls-1"
HEALTH_TIMEOUT_S = 30.0


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
        wait_until(
            lambda: http_ok(self.url(name, "/health"), context=self.client_ssl(name)),
            timeout_s=timeout_s,
            interval_s=0.05,
            what=f"{name} healthy (logs in {self.root / 'logs'})",
        )

    def stop(self) -> None:
        _stop_all(self.processes)


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
    return _result(mode, latencies, failed, elapsed)


def _wait_http_ok(url: str, what: str, logs: Path, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 (loopback URL we built)
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} not healthy after {timeout_s:.0f}s (logs in {logs})")


class MovieServices:
    """auth, metadata, rating and movie as processes, with or without TLS files (same layout)."""

    def __init__(self, root: Path, files: dict[str, TlsFiles] | None) -> None:
        self.root = root
        self.files = files
        self.ports = {name: free_port() for name in MOVIE_SERVICES}
        self.ops_ports = {name: free_port() for name in MOVIE_SERVICES}
        self.processes: list[subprocess.Popen[bytes]] = []

    def _env(self, name: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("FIREDRILL_") and key not in {"OTEL_EXPORTER_OTLP_ENDPOINT"}
        }
        env |= {
            "FIREDRILL_STATE_DIR": str(self.root),
            "FIREDRILL_PROFILE": "drill",
            "FIREDRILL_BIND_HOST": "127.0.0.1",
            "FIREDRILL_PORT": str(self.ports[name]),
            "FIREDRILL_METRICS_PORT": str(self.ops_ports[name]),
            "FIREDRILL_REGISTRY_DIR": str(self.root / "registry"),
            "FIREDRILL_DATA_DIR": str(self.root / "data" / name),
            "FIREDRILL_DISCOVERY": "local",
            "FIREDRILL_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        if name == "movie":
            env["FIREDRILL_HTTP_PORT"] = str(free_port())
            # The bench measures TLS, not the gateway's rate limit.
            env["FIREDRILL_RATE_LIMIT_RPS"] = "1000000"
            env["FIREDRILL_RATE_LIMIT_BURST"] = "1000000"
        if self.files is not None:
            env |= tls_env(self.files[name])
        return env

    @property
    def identity(self) -> TlsFiles | None:
        """What the load client presents: the operator certificate in the mTLS mode."""
        return self.files["operator"] if self.files is not None else None

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def start(self) -> None:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name in MOVIE_SERVICES:
            log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 (the child owns it)
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
            # The ops port is plain HTTP in both modes; its /health includes "gRPC is serving".
            _wait_http_ok(f"http://127.0.0.1:{self.ops_ports[name]}/health", name, logs)

    def stop(self) -> None:
        _stop_all(self.processes)


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    processes.clear()


def _stub(stub_class: Any, channel: grpc.aio.Channel) -> Any:
    return stub_class(channel)  # generated stubs carry no annotations


async def _movie_seed(services: MovieServices) -> tuple[tuple[str, str], ...]:
    """A token for the demo user, one movie and one rating; returns the call metadata."""
    identity = services.identity
    password = (services.root / "secrets" / "auth" / "demo-password").read_text().strip()
    async with open_channel(services.address("auth"), "auth", identity) as channel:
        answer = await _stub(auth_pb2_grpc.AuthServiceStub, channel).GetToken(
            auth_pb2.GetTokenRequest(username="demo", password=password), timeout=10
        )
    metadata = bearer_metadata(answer.token)
    record = movie_pb2.Metadata(id=MOVIE_ID, title="Bench", description="a movie to read", director="B")
    async with open_channel(services.address("metadata"), "metadata", identity) as channel:
        await _stub(movie_pb2_grpc.MetadataServiceStub, channel).PutMetadata(
            movie_pb2.PutMetadataRequest(metadata=record), metadata=metadata, timeout=10
        )
    rating = movie_pb2.PutRatingRequest(
        user_id="bench", record_id=MOVIE_ID, record_type=movie_pb2.RECORD_TYPE_MOVIE, rating_value=4
    )
    async with open_channel(services.address("rating"), "rating", identity) as channel:
        await _stub(movie_pb2_grpc.RatingServiceStub, channel).PutRating(rating, metadata=metadata, timeout=10)
    return metadata


async def _load_movie(services: MovieServices, mode: str, duration_s: float, concurrency: int) -> ModeResult:
    metadata = await _movie_seed(services)
    latencies: list[float] = []
    failed = 0
    degraded = 0
    # A few long-lived channels (HTTP/2 connections), shared by the workers, as a real client would.
    channels = [
        open_channel(services.address("movie"), "movie", services.identity) for _ in range(max(1, concurrency // 4))
    ]
    stubs = [_stub(movie_pb2_grpc.MovieServiceStub, channel) for channel in channels]
    request = movie_pb2.GetMovieDetailsRequest(movie_id=MOVIE_ID)

    async def worker(index: int, until: float, record: bool) -> None:
        nonlocal failed, degraded
        stub = stubs[index % len(stubs)]
        while time.perf_counter() < until:
            started = time.perf_counter()
            try:
                answer = await stub.GetMovieDetails(request, metadata=metadata, timeout=5)
            except grpc.aio.AioRpcError:
                if record:
                    failed += 1
                continue
            if record:
                latencies.append(time.perf_counter() - started)
                if not answer.movie_details.rating_available:
                    degraded += 1  # rating missed its budget: still an answer, but say so

    try:
        warm_until = time.perf_counter() + 1.0
        await asyncio.gather(*(worker(i, warm_until, False) for i in range(concurrency)))
        started = time.perf_counter()
        until = started + duration_s
        await asyncio.gather(*(worker(i, until, True) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        for channel in channels:
            await channel.close()
    if degraded:
        print(f"  note: {degraded} answers in {mode} mode came without the rating (budget missed)", file=sys.stderr)
    return _result(mode, latencies, failed, elapsed)


def _result(mode: str, latencies: list[float], failed: int, elapsed: float) -> ModeResult:
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


def _summary(per_mode: dict[str, list[ModeResult]]) -> dict[str, object]:
    best = {mode: min(results, key=lambda r: r.p99_ms) for mode, results in per_mode.items()}
    plain, mtls = best["plain"], best["mtls"]
    return {
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


def run_movie(root: Path, pki: ThrowawayPki, duration_s: float, concurrency: int, rounds: int) -> dict[str, object]:
    names = (*MOVIE_SERVICES, "operator")
    files = {name: pki.write(root / "movie-secrets" / name, name) for name in names}
    per_mode: dict[str, list[ModeResult]] = {"plain": [], "mtls": []}
    for _ in range(rounds):
        for mode in ("plain", "mtls"):
            services = MovieServices(root / f"movie-{mode}", files if mode == "mtls" else None)
            try:
                services.start()
                per_mode[mode].append(asyncio.run(_load_movie(services, mode, duration_s, concurrency)))
            finally:
                services.stop()
    return {
        "benchmark": "client -> movie -> (metadata, rating, auth), gRPC GetMovieDetails, loopback",
        "mtls_hops": "client->movie (operator identity), movie->metadata, movie->rating, movie->auth",
        "concurrency": concurrency,
        "client_channels": max(1, concurrency // 4),
        "duration_s": duration_s,
        "rounds": rounds,
        **_summary(per_mode),
    }


def run_hello(
    root: Path, pki: ThrowawayPki, duration_s: float, concurrency: int, fresh_share: float, rounds: int
) -> dict[str, object]:
    files = {name: pki.write(root / "secrets" / name, name) for name in ("hello", "response", "operator")}
    per_mode: dict[str, list[ModeResult]] = {"plain": [], "mtls": []}
    # Alternate the modes so drift of the machine's load hits both alike.
    for _ in range(rounds):
        for mode in ("plain", "mtls"):
            services = Services(root / mode, files if mode == "mtls" else None)
            try:
                services.start()
                per_mode[mode].append(asyncio.run(_load(services, mode, duration_s, concurrency, fresh_share)))
            finally:
                services.stop()
    return {
        "benchmark": "hello -> response, GET /hello, loopback",
        "concurrency": concurrency,
        "duration_s": duration_s,
        "rounds": rounds,
        "fresh_connection_share": fresh_share,
        **_summary(per_mode),
    }


def run(
    cases: tuple[str, ...], duration_s: float, concurrency: int, fresh_share: float, rounds: int
) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="fd-mtls-bench-"))
    try:
        pki = ThrowawayPki("bench")
        results: dict[str, dict[str, object]] = {}
        if "hello" in cases:
            results["hello"] = run_hello(root / "hello", pki, duration_s, concurrency, fresh_share, rounds)
        if "movie" in cases:
            results["movie"] = run_movie(root / "movie", pki, duration_s, concurrency, rounds)
        return {
            "cases": results,
            "target_p99_ratio": TARGET_P99_RATIO,
            "within_target": all(bool(r["within_target"]) for r in results.values()),
            "host": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mtls_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=("all", *CASES), default="all", help="which case to run (default: all)")
    parser.add_argument("--duration-s", type=float, default=5.0, help="measured seconds per mode and round (1-60)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent client workers (1-256)")
    parser.add_argument("--rounds", type=int, default=2, help="plain/mTLS rounds, alternating (1-5)")
    parser.add_argument(
        "--fresh-share",
        type=float,
        default=0.0,
        help="hello case: share of client workers opening a new connection per request",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not 1 <= args.duration_s <= 60 or not 1 <= args.concurrency <= 256 or not 1 <= args.rounds <= 5:
        parser.error("bounds: --duration-s 1..60, --concurrency 1..256, --rounds 1..5")
    if not 0 <= args.fresh_share <= 1:
        parser.error("--fresh-share is between 0 and 1")
    cases = CASES if args.case == "all" else (args.case,)
    result = run(cases, args.duration_s, args.concurrency, args.fresh_share, args.rounds)
    by_case = result["cases"]
    assert isinstance(by_case, dict)
    print(f"{'case':<6} {'mode':<6} {'requests':>9} {'failed':>6} {'rps':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
    for case, summary in by_case.items():
        for mode in ("plain", "mtls"):
            r = summary[mode]
            print(
                f"{case:<6} {mode:<6} {r['requests']:>9} {r['failed']:>6} {r['rps']:>9} {r['p50_ms']:>8} "
                f"{r['p90_ms']:>8} {r['p99_ms']:>8}"
            )
    for case, summary in by_case.items():
        verdict = "within" if summary["within_target"] else "OVER"
        print(
            f"{case}: p99 ratio mTLS/plain {summary['p99_ratio']} ({verdict} target {TARGET_P99_RATIO}); "
            f"p50 ratio {summary['p50_ratio']}; throughput ratio {summary['rps_ratio']}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
