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
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import aiohttp
import grpc
import grpc.aio

from bench.movie_services import MOVIE_SERVICES, MovieServices, make_stub
from scripts.processes import ServiceProcess, http_ok, stop_all
from scripts.vault.throwaway_pki import ThrowawayPki
from services.common import tls
from services.common.config import TlsFiles
from services.common.grpc_auth import bearer_metadata
from services.genproto import movie_pb2, movie_pb2_grpc

RESULTS = Path(__file__).resolve().parent / "results" / "mtls.json"
TARGET_P99_RATIO = 1.3
CASES = ("hello", "movie")
MOVIE_ID = "bench-mtls-1"


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


class HelloServices:
    """response and hello as processes, with or without TLS files."""

    def __init__(self, root: Path, files: dict[str, TlsFiles] | None) -> None:
        self.files = files
        self.processes = {
            name: ServiceProcess(name, root, tls=files[name] if files is not None else None)
            for name in ("response", "hello")
        }

    def url(self, name: str, path: str) -> str:
        # hello is the edge: plain HTTP in both modes; the measured difference is hello -> response.
        scheme = "https" if self.files is not None and name != "hello" else "http"
        return f"{scheme}://{self.processes[name].address}{path}"

    def client_ssl(self, server: str) -> ssl.SSLContext | None:
        if self.files is None or server == "hello":
            return None
        return tls.TlsMaterial(self.files["operator"], "operator").client_context(tls.service_dns_name(server))

    def _healthy(self, name: str) -> bool:
        return http_ok(self.url(name, "/health"), context=self.client_ssl(name))

    def start(self) -> None:
        for name, service in self.processes.items():
            service.start(healthy=partial(self._healthy, name))

    def stop(self) -> None:
        stop_all(self.processes.values())


Worker = Callable[[int, float, bool], Awaitable[None]]


async def _warm_then_measure(worker: Worker, concurrency: int, duration_s: float) -> float:
    """One second of unrecorded warm-up, then ``duration_s`` recorded; returns the measured seconds."""
    warm_until = time.perf_counter() + 1.0
    await asyncio.gather(*(worker(i, warm_until, False) for i in range(concurrency)))
    started = time.perf_counter()
    await asyncio.gather(*(worker(i, started + duration_s, True) for i in range(concurrency)))
    return time.perf_counter() - started


async def _load(
    services: HelloServices, mode: str, duration_s: float, concurrency: int, fresh_share: float
) -> ModeResult:
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

    elapsed = await _warm_then_measure(worker, concurrency, duration_s)
    return _result(mode, latencies, failed, elapsed)


async def _load_movie(services: MovieServices, mode: str, duration_s: float, concurrency: int) -> ModeResult:
    metadata = bearer_metadata(await services.seed(MOVIE_ID))
    latencies: list[float] = []
    failed = 0
    degraded = 0
    # A few long-lived channels (HTTP/2 connections), shared by the workers, as a real client would.
    channels = [services.channel("movie") for _ in range(max(1, concurrency // 4))]
    stubs = [make_stub(movie_pb2_grpc.MovieServiceStub, channel) for channel in channels]
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
        elapsed = await _warm_then_measure(worker, concurrency, duration_s)
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
            services = MovieServices(root / f"movie-{mode}", tls=files if mode == "mtls" else None)
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
            services = HelloServices(root / mode, files if mode == "mtls" else None)
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
