"""Anonymous floods against movie's HTTP front while an authenticated user reads (issue 11).

    python -m bench.movie_flood [--requests 300] [--rate 15] [--connections 32]

Starts auth, metadata, rating and movie as processes (``python -m services.<name>``) on free
loopback ports, the gateway with its default limits (the user reads below its own 20/s), gets
the demo user's token and reads once (the user's session exists before the flood). Then, for
each kind of flood:

- ``absent``: ``GET /movies/{id}`` without an Authorization header;
- ``forged``: with a token that carries the real key id and a broken signature, which costs a
  signature check unless it is refused before one;

it runs the flood (wrk; a bounded asyncio flood when wrk is not installed), waits until the
gateway has answered a first share of it, then makes ``--requests`` reads as the user, paced at
``--rate`` per second, and counts how many succeeded. Target: at least 99 %.

Bounded (wrk's own duration cap, request counts, timeouts), loopback only. Prints a table and
writes bench/results/movie_flood.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.movie_services import MovieServices
from bench.wrk import parse as parse_wrk
from scripts.traffic import assert_loopback
from services.common.waiting import wait_until_async
from services.movie.config import MovieConfig

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "movie_flood.json"
MOVIE_ID = "bench-1"
TARGET_SUCCESS = 0.99
FLOOD_KINDS = ("absent", "forged")
MAX_FLOOD_S = 120
FLOOD_WARMUP_ANSWERS = 200
ASYNCIO_FLOOD_MAX_REQUESTS = 200_000
ROUTE = "/movies/{movie_id}"


def forged_token(token: str) -> str:
    """``token`` with its signature replaced: same header (key id), so only the signature check refuses it."""
    header, payload, _signature = token.split(".")
    return f"{header}.{payload}.{'A' * 86}"


def flood_headers(kind: str, token: str) -> dict[str, str]:
    if kind == "absent":
        return {}
    if kind == "forged":
        return {"Authorization": f"Bearer {forged_token(token)}"}
    raise ValueError(f"unknown flood kind {kind!r} (one of {', '.join(FLOOD_KINDS)})")


def front_answers(exposition: str) -> float:
    """How many ``GET /movies/{movie_id}`` the front has answered, any status, from a /metrics text."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels.get("path") == ROUTE
    )


@dataclass
class FloodReport:
    tool: str
    requests: int = 0
    non_2xx: int = 0
    requests_per_s: float = 0.0
    lasted_the_whole_run: bool = False


class Flood:
    """wrk (or asyncio workers) sending ``headers`` to ``url`` until ``stop``; at most ``MAX_FLOOD_S``."""

    def __init__(self, url: str, headers: Mapping[str, str], *, connections: int) -> None:
        assert_loopback(url)
        self.url = url
        self.headers = dict(headers)
        self.connections = connections
        self.report = FloodReport("wrk" if shutil.which("wrk") else "asyncio")
        self._process: asyncio.subprocess.Process | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._closer: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._started = 0.0

    @property
    def running(self) -> bool:
        if self._process is not None:
            return self._process.returncode is None
        return any(not worker.done() for worker in self._workers)

    async def start(self) -> None:
        self._started = time.monotonic()
        if self.report.tool == "wrk":
            command = ["wrk", "-t1", f"-c{self.connections}", f"-d{MAX_FLOOD_S}s"]
            for name, value in self.headers.items():
                command += ["-H", f"{name}: {value}"]
            self._process = await asyncio.create_subprocess_exec(
                *command, "--latency", self.url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            return
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        sent: list[int] = [0, 0]  # requests, non-2xx

        async def worker() -> None:
            while not self._stopping.is_set() and sent[0] < ASYNCIO_FLOOD_MAX_REQUESTS:
                if time.monotonic() - self._started > MAX_FLOOD_S:
                    return
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with session.get(self.url, headers=self.headers) as response:
                        await response.read()
                        sent[1] += response.status >= 300
                sent[0] += 1

        self._workers = [asyncio.create_task(worker()) for _ in range(self.connections)]

        async def close_when_done() -> None:
            await asyncio.gather(*self._workers)
            await session.close()
            self.report.requests, self.report.non_2xx = sent

        self._closer = asyncio.create_task(close_when_done())

    async def stop(self) -> FloodReport:
        self.report.lasted_the_whole_run = self.running
        elapsed = time.monotonic() - self._started
        if self._process is not None:
            if self._process.returncode is None:
                self._process.send_signal(signal.SIGINT)  # wrk stops and prints its summary
            stdout, _ = await asyncio.wait_for(self._process.communicate(), timeout=30)
            result = parse_wrk(stdout.decode())
            self.report.requests, self.report.non_2xx = result.requests, result.errors
            self.report.requests_per_s = result.requests_per_s
            return self.report
        self._stopping.set()
        if self._closer is not None:
            await self._closer
        self.report.requests_per_s = self.report.requests / max(elapsed, 1e-9)
        return self.report


@contextlib.asynccontextmanager
async def flooding(
    url: str, headers: Mapping[str, str], *, connections: int, answered: Callable[[], Awaitable[float]]
) -> AsyncIterator[Flood]:
    """A running flood that the gateway is already answering (``answered``: its count of answers)."""
    before = await answered()
    flood = Flood(url, headers, connections=connections)
    await flood.start()
    try:

        async def reached() -> bool:
            return await answered() - before >= FLOOD_WARMUP_ANSWERS

        await wait_until_async(reached, timeout_s=30, interval_s=0.05, what="the flood reaching the gateway")
        yield flood
    finally:
        await flood.stop()


@dataclass
class Reads:
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def success_rate(self) -> float:
        return self.statuses[200] / self.requests if self.requests else 0.0


async def paced_reads(url: str, token: str, *, requests: int, rate: float, timeout_s: float = 5.0) -> Reads:
    """``requests`` reads as the token's user, one every 1/``rate`` s (or back to back when slower);
    a timeout or a refused connection counts as a failure (status 0)."""
    assert_loopback(url)
    reads = Reads()
    loop = asyncio.get_running_loop()
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        next_at = loop.time()
        for _ in range(requests):
            await asyncio.sleep(max(0.0, next_at - loop.time()))  # pacing, not waiting for a condition
            next_at += 1 / rate
            try:
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    reads.statuses[response.status] += 1
            except (TimeoutError, aiohttp.ClientError):
                reads.statuses[0] += 1
    return reads


async def measure(
    url: str,
    token: str,
    kind: str,
    *,
    requests: int,
    rate: float,
    connections: int,
    answered: Callable[[], Awaitable[float]],
) -> dict[str, Any]:
    async with flooding(url, flood_headers(kind, token), connections=connections, answered=answered) as flood:
        reads = await paced_reads(url, token, requests=requests, rate=rate)
    return {
        "flood": kind,
        "user_requests": reads.requests,
        "user_statuses": {str(status): count for status, count in sorted(reads.statuses.items())},
        "user_success_rate": reads.success_rate,
        "flood_report": asdict(flood.report),
        "passed": reads.success_rate >= TARGET_SUCCESS and flood.report.lasted_the_whole_run,
    }


def default_limits(state: Path) -> dict[str, str]:
    """The gateway's default budgets, spelled out (MovieServices lifts them for the other benches)."""
    config = MovieConfig.from_env({"FIREDRILL_STATE_DIR": str(state)})
    env: dict[str, str] = {}
    for prefix, budget in (
        ("FIREDRILL_RATE_LIMIT", config.rate_limit),
        ("FIREDRILL_RATE_LIMIT_CALLER", config.caller_rate_limit),
        ("FIREDRILL_RATE_LIMIT_ANONYMOUS", config.anonymous_rate_limit),
    ):
        env |= {f"{prefix}_RPS": f"{budget.rate:g}", f"{prefix}_BURST": str(budget.burst)}
    return env


async def run(args: argparse.Namespace, state: Path) -> list[dict[str, Any]]:
    services = MovieServices(state, env={"movie": default_limits(state)})
    try:
        await asyncio.to_thread(services.start)
        token = await services.seed(MOVIE_ID)
        url = services.http_url(f"/movies/{MOVIE_ID}")
        metrics_url = f"http://127.0.0.1:{services.processes['movie'].metrics_port}/metrics"

        async def answered() -> float:
            async with aiohttp.ClientSession() as session, session.get(metrics_url) as response:
                return front_answers(await response.text())

        first = await paced_reads(url, token, requests=1, rate=1)
        if first.statuses[200] != 1:
            raise SystemExit(f"the first read failed before any flood: {dict(first.statuses)}")
        results = []
        for kind in args.floods:
            results.append(
                await measure(
                    url,
                    token,
                    kind,
                    requests=args.requests,
                    rate=args.rate,
                    connections=args.connections,
                    answered=answered,
                )
            )
        return results
    finally:
        await asyncio.to_thread(services.stop)


def table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'flood':<8} {'tool':<8} {'flood req/s':>11} {'user reads':>10} {'user ok':>8} {'success':>8}  verdict"]
    for r in results:
        f = r["flood_report"]
        ok = r["user_statuses"].get("200", 0)
        verdict = "PASS" if r["passed"] else "FAIL"
        lines.append(
            f"{r['flood']:<8} {f['tool']:<8} {f['requests_per_s']:>11.0f} {r['user_requests']:>10} {ok:>8} "
            f"{r['user_success_rate']:>8.2%}  {verdict} (target >= {TARGET_SUCCESS:.0%})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.movie_flood", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="authenticated reads per flood (50..5000)")
    parser.add_argument(
        "--rate", type=float, default=15.0, help="authenticated reads per second (1..100; the caller's budget is 20/s)"
    )
    parser.add_argument("--connections", type=int, default=32, help="flood connections (1..256)")
    parser.add_argument("--flood", dest="floods", action="append", choices=FLOOD_KINDS, help="repeatable; default all")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    if not 50 <= args.requests <= 5000 or not 1 <= args.rate <= 100 or not 1 <= args.connections <= 256:
        parser.error("requests 50..5000, rate 1..100, connections 1..256")
    args.floods = args.floods or list(FLOOD_KINDS)
    with tempfile.TemporaryDirectory(prefix="movie-flood-") as state:
        results = asyncio.run(run(args, Path(state)))
    print(table(results))
    output = {
        "results": results,
        "settings": {
            "requests": args.requests,
            "rate": args.rate,
            "connections": args.connections,
            "python": platform.python_version(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(output, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
