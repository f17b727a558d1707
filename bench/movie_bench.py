"""Movie application benchmark: gateway vs direct reads, and the concurrent fan-out proof.

Starts auth, metadata, rating and movie as real processes (``python -m services.<name>``) on
free loopback ports in a temporary state directory, then:

1. throughput and p50/p99 of GetMovieDetails through the gateway, and of GetMetadata called
   directly on metadata (same concurrency, same duration), in ``--rounds`` alternating rounds:
   the gateway's req/s over the direct req/s (median and spread) is the gateway's cost, and the
   CPU seconds each process spent per successful call (read from /proc) say where it goes;
2. the fan-out proof: with FIREDRILL_FAULT_LATENCY_MS=50 on metadata AND rating, the gateway's
   median latency divided by 50 ms must be at most 1.3 (sequential calls would give ~2).

Bounded (duration, concurrency and request counts are capped), loopback only. Prints a table and
writes bench/results/movie.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from bench.movie_services import MOVIE_SERVICES, MovieServices, make_stub
from bench.proc_stats import cpu_seconds
from services.common.grpc_auth import bearer_metadata
from services.genproto import movie_pb2, movie_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "movie.json"
FANOUT_LATENCY_MS = 50
FANOUT_LIMIT = 1.3


def movie_services(state: Path, latency_ms: int, instrumentation: bool) -> MovieServices:
    """The four services, ``latency_ms`` injected into metadata and rating."""
    common = {"FIREDRILL_INSTRUMENTATION": "true" if instrumentation else "false"}
    latency = {"FIREDRILL_FAULT_LATENCY_MS": str(latency_ms)}
    return MovieServices(
        state, env={name: {**common, **(latency if name in {"metadata", "rating"} else {})} for name in MOVIE_SERVICES}
    )


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_by_process(p: MovieServices) -> dict[str, float]:
    """CPU seconds so far of each service process and of this load generator."""
    return {**{name: cpu_seconds(p.processes[name].pid) for name in MOVIE_SERVICES}, "client": cpu_seconds(os.getpid())}


async def load(
    call: Callable[[], Awaitable[Any]],
    *,
    concurrency: int,
    duration_s: float,
    max_requests: int,
    services: MovieServices | None = None,
) -> dict[str, Any]:
    """Req/s and latency of ``call``; with ``services``, also each process's CPU µs per successful call."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration_s

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < stop_at and len(latencies) + errors < max_requests:
            started = time.perf_counter()
            try:
                await call()
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    cpu_before = cpu_by_process(services) if services is not None else {}
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    cpu_after = cpu_by_process(services) if services is not None else {}
    if not latencies:
        raise SystemExit("no successful request; see the service logs")
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "cpu_us_per_call": {name: (cpu_after[name] - cpu_before[name]) * 1e6 / len(latencies) for name in cpu_after},
    }


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and range over the rounds of req/s, latency, CPU per call and the gateway/direct ratio."""
    summary: dict[str, Any] = {}
    for case in ("gateway_get_movie_details", "direct_get_metadata"):
        runs = [r[case] for r in rounds]
        summary[case] = {
            **{key: spread([run[key] for run in runs]) for key in ("rps", "p50_ms", "p99_ms")},
            "cpu_us_per_call": {
                name: spread([run["cpu_us_per_call"][name] for run in runs]) for name in runs[0]["cpu_us_per_call"]
            },
        }
    summary["rps_gateway_over_direct"] = spread([r["rps_gateway_over_direct"] for r in rounds])
    return summary


async def session(
    state: Path, latency_ms: int, instrumentation: bool, body: Callable[[MovieServices, Any, Any], Awaitable[Any]]
) -> Any:
    services = movie_services(state, latency_ms, instrumentation)
    try:
        await asyncio.to_thread(services.start)
        token = await services.seed("bench-1")
        return await body(services, bearer_metadata(token), token)
    finally:
        await asyncio.to_thread(services.stop)


async def throughput(args: argparse.Namespace, state: Path) -> dict[str, Any]:
    async def body(p: MovieServices, metadata: Any, _token: str) -> dict[str, Any]:
        async with (
            grpc.aio.insecure_channel(p.address("movie")) as gw,
            grpc.aio.insecure_channel(p.address("metadata")) as md,
        ):
            movie: Any = make_stub(movie_pb2_grpc.MovieServiceStub, gw)
            direct: Any = make_stub(movie_pb2_grpc.MetadataServiceStub, md)
            details_request = movie_pb2.GetMovieDetailsRequest(movie_id="bench-1")
            metadata_request = movie_pb2.GetMetadataRequest(movie_id="bench-1")

            async def via_gateway() -> Any:
                return await movie.GetMovieDetails(details_request, metadata=metadata, timeout=5)

            async def directly() -> Any:
                return await direct.GetMetadata(metadata_request, metadata=metadata, timeout=5)

            bounds = {"concurrency": args.concurrency, "duration_s": args.duration, "max_requests": args.max_requests}
            for warm in (via_gateway, directly):
                await load(warm, concurrency=4, duration_s=0.5, max_requests=200)
            rounds = []
            for number in range(args.rounds):
                # Alternate which case runs first, so neither always inherits the other's warm caches.
                order = (via_gateway, directly) if number % 2 == 0 else (directly, via_gateway)
                measured = {call: await load(call, services=p, **bounds) for call in order}
                gateway, plain = measured[via_gateway], measured[directly]
                rounds.append(
                    {
                        "gateway_get_movie_details": gateway,
                        "direct_get_metadata": plain,
                        "rps_gateway_over_direct": gateway["rps"] / plain["rps"],
                    }
                )
        return {"rounds": rounds, "summary": summarise(rounds)}

    return await session(state, 0, args.instrumentation, body)  # type: ignore[no-any-return]


async def fanout(args: argparse.Namespace, state: Path) -> dict[str, Any]:
    async def body(p: MovieServices, metadata: Any, _token: str) -> dict[str, Any]:
        async with grpc.aio.insecure_channel(p.address("movie")) as gw:
            movie: Any = make_stub(movie_pb2_grpc.MovieServiceStub, gw)
            request = movie_pb2.GetMovieDetailsRequest(movie_id="bench-1")
            samples = []
            for i in range(args.fanout_requests + 5):
                started = time.perf_counter()
                answer = await movie.GetMovieDetails(request, metadata=metadata, timeout=5)
                if i >= 5:  # warm-up: channels and token cache
                    samples.append(time.perf_counter() - started)
                if not answer.movie_details.rating_available:
                    raise SystemExit("rating fell back during the fan-out run; raise FIREDRILL_RATING_BUDGET_MS")
        median_ms = statistics.median(samples) * 1000
        return {
            "injected_latency_ms": FANOUT_LATENCY_MS,
            "requests": len(samples),
            "p50_ms": median_ms,
            "p99_ms": percentile(samples, 0.99) * 1000,
            "median_over_injected": median_ms / FANOUT_LATENCY_MS,
            "limit": FANOUT_LIMIT,
            "passed": median_ms / FANOUT_LATENCY_MS <= FANOUT_LIMIT,
        }

    return await session(state, FANOUT_LATENCY_MS, args.instrumentation, body)  # type: ignore[no-any-return]


def table(result: dict[str, Any]) -> str:
    t = result["throughput"]["summary"]
    rows = [
        ("GetMovieDetails via gateway", t["gateway_get_movie_details"]),
        ("GetMetadata direct", t["direct_get_metadata"]),
    ]
    processes = list(t["gateway_get_movie_details"]["cpu_us_per_call"])
    lines = [
        f"{'call (median of rounds)':<30} {'req/s':>15} {'p50 ms':>7} {'p99 ms':>7}  "
        + " ".join(f"{name + ' µs':>11}" for name in processes)
    ]
    for name, r in rows:
        rps = f"{r['rps']['median']:.0f} ({r['rps']['min']:.0f}-{r['rps']['max']:.0f})"
        cpu = " ".join(f"{r['cpu_us_per_call'][process]['median']:>11.0f}" for process in processes)
        lines.append(f"{name:<30} {rps:>15} {r['p50_ms']['median']:>7.2f} {r['p99_ms']['median']:>7.2f}  {cpu}")
    ratio = t["rps_gateway_over_direct"]
    lines.append(
        f"gateway req/s / direct req/s: median {ratio['median']:.3f} "
        f"(range {ratio['min']:.3f}-{ratio['max']:.3f} over {len(result['throughput']['rounds'])} rounds)"
    )
    f = result["fanout"]
    verdict = "PASS" if f["passed"] else "FAIL"
    lines.append(
        f"fan-out with {f['injected_latency_ms']} ms on metadata and rating: p50 {f['p50_ms']:.1f} ms, "
        f"p99 {f['p99_ms']:.1f} ms, median/{f['injected_latency_ms']} ms = {f['median_over_injected']:.3f} "
        f"(limit {f['limit']}) {verdict}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.movie_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per throughput run (0.5..60, default 5)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent callers (1..256, default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating gateway/direct rounds (1..10, default 3)")
    parser.add_argument("--max-requests", type=int, default=50_000, help="cap per throughput run (default 50000)")
    parser.add_argument("--fanout-requests", type=int, default=100, help="sequential fan-out calls (10..1000)")
    parser.add_argument(
        "--no-instrumentation", dest="instrumentation", action="store_false", help="services without tracing/metrics"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    if (
        not 0.5 <= args.duration <= 60
        or not 1 <= args.concurrency <= 256
        or not 10 <= args.fanout_requests <= 1000
        or not 1 <= args.rounds <= 10
    ):
        parser.error("duration 0.5..60 s, concurrency 1..256, fanout-requests 10..1000, rounds 1..10")
    args.max_requests = max(100, min(args.max_requests, 500_000))

    async def run() -> dict[str, Any]:
        with (
            tempfile.TemporaryDirectory(prefix="movie-bench-") as a,
            tempfile.TemporaryDirectory(prefix="movie-bench-") as b,
        ):
            return {"throughput": await throughput(args, Path(a)), "fanout": await fanout(args, Path(b))}

    result = asyncio.run(run())
    result["settings"] = {
        "duration_s": args.duration,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "load_average": os.getloadavg(),
        "fanout_requests": args.fanout_requests,
        "instrumentation": args.instrumentation,
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(table(result))
    print(f"load average (1, 5, 15 min) at the end: {result['settings']['load_average']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0 if result["fanout"]["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
