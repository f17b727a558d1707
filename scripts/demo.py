"""`make demo`: start the local platform, send traffic, show live numbers, run the outage drill.

python -m scripts.demo [--skip-drill] [--requests 600]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from collections.abc import Sequence

from scripts.deploy_target.interface import Endpoints, PlatformError
from scripts.incidents_cli import UI_PORT
from scripts.local.__main__ import print_endpoints
from scripts.local.stack import LocalPlatform
from scripts.promql import Prometheus, PrometheusError
from scripts.traffic import send_traffic, summary
from services.common import catalog
from services.common.config import state_dir
from services.common.waiting import TimedOut, wait_until

WINDOW = "30s"
# Spread over several scrapes (1 s apart in the drill profile), so Prometheus sees a rate.
DEMO_RATE = 100.0
DEMO_MOVIE = "tt0133093"


def step(number: int, total: int, text: str) -> None:
    print(f"\n== [{number}/{total}] {text}", flush=True)


def live_summary(endpoints: Endpoints, sent: int) -> None:
    prometheus = Prometheus(endpoints.prometheus)
    hello = 'service="hello",path="/hello"'
    try:
        wait_until(
            lambda: (prometheus.value(f"sum(http_requests_total{{{hello}}})") or 0) >= sent,
            timeout_s=20,
            what="Prometheus has scraped the burst",
        )
    except TimedOut as exc:
        print(f"  (note: {exc})")
    queries = {
        "request rate": (f"sum(rate(http_requests_total{{{hello}}}[{WINDOW}]))", "{:.1f} req/s"),
        "error ratio": (
            f'(sum(rate(http_requests_total{{{hello},status=~"5.."}}[{WINDOW}])) or vector(0))'
            f" / sum(rate(http_requests_total{{{hello}}}[{WINDOW}]))",
            "{:.2%}",
        ),
        "p95 latency": (
            "1000 * histogram_quantile(0.95, sum by (le) "
            f"(rate(http_request_duration_seconds_bucket{{{hello}}}[{WINDOW}])))",
            "{:.1f} ms",
        ),
    }
    print(f"  hello, last {WINDOW}, as Prometheus sees it:")
    for label, (expr, fmt) in queries.items():
        try:
            value = prometheus.value(expr)
        except PrometheusError as exc:
            print(f"    {label:<13} query failed: {exc}")
            continue
        print(f"    {label:<13} {fmt.format(value) if value is not None else 'no data yet'}")


def movie_call() -> None:
    command = [sys.executable, "-m", "scripts.movie.cli", DEMO_MOVIE]
    print("  $ python -m scripts.movie.cli " + DEMO_MOVIE)
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    output = (done.stdout or done.stderr).strip()
    print("\n".join("  " + line for line in output.splitlines()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=600, help="size of the traffic burst (default 600)")
    parser.add_argument("--skip-drill", action="store_true", help="stop before the outage drill")
    args = parser.parse_args(argv)
    total = 4 if args.skip_drill else 5
    platform = LocalPlatform(state_dir())
    try:
        step(1, total, "starting the local platform (supervised processes, real Prometheus and Alertmanager)")
        endpoints = platform.up(progress=lambda line: print(line, flush=True))
        step(2, total, f"{args.requests} requests through hello -> response at {DEMO_RATE:.0f} req/s")
        result = asyncio.run(
            send_traffic(
                endpoints.services["hello"] + "/hello",
                requests=args.requests,
                concurrency=8,
                max_duration_s=60,
                rate_per_s=DEMO_RATE,
            )
        )
        print("  " + summary(result))
        step(3, total, "live summary from Prometheus")
        live_summary(endpoints, result.sent)
        step(4, total, "one call to the movie application (token from auth, details from movie)")
        movie_call()
        passed = True
        if not args.skip_drill:
            step(5, total, "the outage drill: stop response, watch the alert and the incident, restore")
            from scripts.drills.__main__ import run_drill

            drill = run_drill("outage", "response", state_dir() / "drills", bring_up=False)
            passed = drill.passed
            if drill.incident and drill.incident.get("id"):
                view = f"http://127.0.0.1:{catalog.port(UI_PORT)}/incidents/{drill.incident['id']}"
                print(f"  the drill's incident in a browser: `make incidents-ui`, then open {view}")
        print_endpoints(endpoints)
        print("\nStop everything with `make down`.")
        return 0 if passed else 1
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
