"""A bounded load generator for the local platform: loopback targets only, capped in count and time.

python -m scripts.traffic --url http://127.0.0.1:5050/hello --requests 500 --concurrency 10
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import socket
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

MAX_REQUESTS = 1_000_000
MAX_DURATION_S = 3600


class NotLoopback(ValueError):
    pass


def assert_loopback(url: str) -> None:
    """Load only ever goes to this machine: refuse anything that does not resolve to loopback."""
    host = urllib.parse.urlsplit(url).hostname
    if host is None:
        raise NotLoopback(f"no host in {url!r}")
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise NotLoopback(f"cannot resolve {host!r}: {exc}") from None
    for address in addresses:
        if not ipaddress.ip_address(address.split("%")[0]).is_loopback:
            raise NotLoopback(f"{url} resolves to {address}, which is not loopback; refusing to send load")


@dataclass
class TrafficResult:
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    # (time, ok) of every request, for drills that need to know when failures happened.
    timeline: list[tuple[float, bool]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(n for status, n in self.statuses.items() if not status.startswith("2"))

    @property
    def duration_s(self) -> float:
        return max(self.finished - self.started, 1e-9)

    def percentile(self, q: float) -> float | None:
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def send_traffic(
    url: str,
    *,
    requests: int,
    concurrency: int,
    max_duration_s: float,
    rate_per_s: float | None = None,
    timeout_s: float = 5.0,
    stop: asyncio.Event | None = None,
    headers: dict[str, str] | None = None,
) -> TrafficResult:
    if not 0 < requests <= MAX_REQUESTS:
        raise ValueError(f"requests must be between 1 and {MAX_REQUESTS}")
    if not 0 < max_duration_s <= MAX_DURATION_S:
        raise ValueError(f"max_duration_s must be between 0 and {MAX_DURATION_S}")
    assert_loopback(url)
    result = TrafficResult(started=time.monotonic())
    deadline = result.started + max_duration_s
    remaining = requests
    interval = 1.0 / rate_per_s if rate_per_s else 0.0
    next_slot = result.started

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining, next_slot
        while remaining > 0 and time.monotonic() < deadline and not (stop and stop.is_set()):
            remaining -= 1
            if interval:
                next_slot = max(next_slot + interval, time.monotonic())
                await asyncio.sleep(max(0.0, next_slot - time.monotonic()))
            began = time.monotonic()
            try:
                async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)) as answer:
                    await answer.read()
                    status = str(answer.status)
            except TimeoutError:
                status = "timeout"
            except aiohttp.ClientError as exc:
                status = type(exc).__name__
            ended = time.monotonic()
            result.sent += 1
            result.statuses[status] += 1
            result.latencies_s.append(ended - began)
            result.timeline.append((time.time(), status.startswith("2")))

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    result.finished = time.monotonic()
    return result


def summary(result: TrafficResult) -> str:
    p50, p99 = result.percentile(0.5), result.percentile(0.99)
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(result.statuses.items()))
    latency = f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms" if p50 is not None and p99 is not None else "-"
    return (
        f"{result.sent} requests in {result.duration_s:.1f}s ({result.sent / result.duration_s:.0f} req/s), "
        f"{result.failed} failed; {latency}; statuses {statuses}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.traffic", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="a loopback URL (anything else is refused)")
    parser.add_argument("--requests", type=int, default=500, help="stop after this many requests (default 500)")
    parser.add_argument("--concurrency", type=int, default=10, help="parallel connections (default 10)")
    parser.add_argument("--duration", type=float, default=60, help="stop after this many seconds (default 60)")
    parser.add_argument("--rate", type=float, default=None, help="requests per second (default: as fast as possible)")
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(
            send_traffic(
                args.url,
                requests=args.requests,
                concurrency=args.concurrency,
                max_duration_s=args.duration,
                rate_per_s=args.rate,
            )
        )
    except (ValueError, NotLoopback) as exc:
        parser.error(str(exc))
    print(summary(result))
    return 0 if result.failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
