"""Record the canary analysis' fixtures: real Prometheus answers for a good, an erroring and a slow version.

    .venv/bin/python -m tests.unit.canary_series.record [--window 20]

On a private drill-profile platform (its own port offset and state directory, stopped at the end):
a second ``response`` instance runs beside the supervised one and registers in discovery, so hello
spreads its calls over both. A file-discovery target gives the supervised instance's series
``version="v1"`` and the second instance's the version of the scenario, as the rollout's discovery
metadata does. For each scenario, the second instance gets the scenario's fault through its own
/admin/faults (none, 30 % errors, 250 ms latency), bounded traffic goes through hello, and once
Prometheus holds a full window of the scenario's series, ``scripts.canary.capture`` records every
check's answers. The "absent" recording asks for a version no instance has.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.private_platform import private_platform
from scripts.canary.capture import capture
from scripts.canary.measure import LivePrometheus
from scripts.canary.templates import TEMPLATES_DIR
from scripts.local.programs import StateLayout
from scripts.local.programs import service_environment as program_environment
from scripts.processes import ServiceProcess
from scripts.promql import Prometheus
from scripts.traffic import send_traffic
from scripts.vault.local import service_env, tls_files
from services.common import catalog
from services.common.profiles import DRILL
from services.common.tls import TlsMaterial
from services.common.waiting import wait_until

HERE = Path(__file__).resolve().parent
STABLE = "v1"
# (file name, canary version label, fault on the canary instance)
SCENARIOS = (
    ("good", "v2-good", {"latency_ms": 0, "error_ratio": 0.0}),
    ("errors", "v3-errors", {"latency_ms": 0, "error_ratio": 0.3}),
    ("latency", "v4-slow", {"latency_ms": 250, "error_ratio": 0.0}),
)
ABSENT = "v9-never-deployed"


def label_versions(targets_dir: Path, stable_ops: str, canary_ops: str, canary_version: str) -> None:
    """Scrape both instances once more, with the version labels discovery metadata would give them."""
    groups = [
        {"targets": [stable_ops], "labels": {"service": "response", "version": STABLE}},
        {"targets": [canary_ops], "labels": {"service": "response", "version": canary_version}},
    ]
    tmp = targets_dir / ".versions.tmp"
    tmp.write_text(json.dumps(groups), encoding="utf-8")
    tmp.replace(targets_dir / "versions.json")


def set_fault(base_url: str, state_dir: Path, fault: dict[str, float]) -> None:
    token = StateLayout(state_dir).admin_token_file.read_text().strip()
    request = urllib.request.Request(  # noqa: S310 (loopback URL we built)
        f"{base_url}/admin/faults",
        data=json.dumps(fault).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    ssl_context = TlsMaterial(tls_files(state_dir, "operator"), "operator").client_context()
    with urllib.request.urlopen(request, timeout=5, context=ssl_context) as answer:  # noqa: S310
        assert answer.status == 200, answer.status


@contextmanager
def traffic(url: str, seconds: float, rate_per_s: float) -> Iterator[None]:
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()

    def run() -> None:
        loop.run_until_complete(
            send_traffic(
                url,
                requests=int(seconds * rate_per_s) + 1,
                concurrency=4,
                max_duration_s=seconds,
                rate_per_s=rate_per_s,
                stop=stop,
            )
        )

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        worker.join(timeout=seconds)
        loop.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.unit.canary_series.record",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--window", type=int, default=20, help="analysis window in seconds (default 20)")
    parser.add_argument("--rate", type=float, default=20, help="requests per second through hello (default 20)")
    args = parser.parse_args()
    with private_platform("fd-canary-rec-") as (_platform, endpoints, state_dir):
        state = StateLayout(state_dir)
        spec = catalog.service("response")
        env = {**program_environment(spec, state, DRILL.name), **service_env(state_dir, "response")}
        # Its own free ports (ServiceProcess picks them), not the supervised instance's.
        env = {k: v for k, v in env.items() if k not in ("FIREDRILL_PORT", "FIREDRILL_METRICS_PORT")}
        second = ServiceProcess("response", state_dir, log_level=None, env=env)
        second.start()
        prometheus = Prometheus(endpoints.prometheus)
        targets_dir = state_dir / "prometheus" / "targets"
        stable_ops = f"127.0.0.1:{catalog.port(spec.scrape_port)}"
        canary_ops = f"127.0.0.1:{second.metrics_port}"
        hello = endpoints.services["hello"] + "/hello"
        try:
            for name, version, fault in SCENARIOS:
                print(f"{name}: canary {version} with {fault}", flush=True)
                set_fault(f"https://{second.address}", state_dir, fault)
                label_versions(targets_dir, stable_ops, canary_ops, version)
                with traffic(hello, seconds=args.window * 4, rate_per_s=args.rate):
                    selector = f'http_requests_total{{service="response",version="{version}"}}'
                    started = time.time()
                    query = f"count_over_time({selector}[1h])"
                    wait_until(
                        lambda query=query: bool(prometheus.query(query)),  # type: ignore[misc]
                        timeout_s=60,
                        interval_s=0.5,
                        what=f"series of {version}",
                    )
                    # A full window of the canary's series, plus one rate window of stable's after the fault.
                    wait_until(
                        lambda started=started: time.time() - started >= args.window + 2,  # type: ignore[misc]
                        timeout_s=args.window * 3,
                        interval_s=0.5,
                        what="a full window",
                    )
                    at = time.time()
                    answers = LivePrometheus(prometheus)
                    note = (
                        f"response {STABLE} (supervised) and {version} (a second instance with fault {fault}), "
                        f"hello at {args.rate:g} req/s spread over both; recorded on a private drill-profile platform"
                    )
                    document = capture(answers, TEMPLATES_DIR, "response", STABLE, version, args.window, at, note)
                    (HERE / f"{name}.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
                    if name == "good":
                        absent = capture(
                            answers,
                            TEMPLATES_DIR,
                            "response",
                            STABLE,
                            ABSENT,
                            args.window,
                            at,
                            f"no instance carries {ABSENT}: every canary query is empty; stable as in good.json",
                        )
                        (HERE / "absent.json").write_text(json.dumps(absent, indent=1) + "\n", encoding="utf-8")
                print(f"  recorded {name}.json", flush=True)
        finally:
            second.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
