"""Operate the local platform: ``python -m scripts.local {up,down,status,start,stop,restart,kill,logs}``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from scripts.deploy_target.interface import Endpoints, PlatformError
from scripts.incidents_cli import UI_PORT
from scripts.local.stack import LocalPlatform
from scripts.promql import Prometheus, PrometheusError
from services.common import catalog
from services.common.config import state_dir


def say(message: str) -> None:
    print(message, flush=True)


def where_things_are(endpoints: Endpoints) -> list[tuple[str, str]]:
    """What a person opens on the local platform, with what works here and what does not."""
    rows = [(name, url) for name, url in endpoints.services.items()]
    prometheus, alertmanager = endpoints.prometheus, endpoints.alertmanager
    # Debian's builds: Prometheus serves only its classic UI (/alerts and /targets answer 404), and
    # Alertmanager has no web UI at all, only its API.
    rows += [
        ("prometheus", f"{prometheus}/classic/graph"),
        *(("", f"{prometheus}/classic/{page}") for page in ("alerts", "targets", "rules")),
        ("", "(Debian's Prometheus has only the classic UI: /alerts and /targets answer 404 here)"),
        ("alertmanager", f"{alertmanager} is an API only: Debian's Alertmanager has no web UI"),
        ("", f"see alerts at {prometheus}/classic/alerts or `amtool alert query --alertmanager.url={alertmanager}`"),
        ("incidents view", f"run `make incidents-ui`, then open http://127.0.0.1:{catalog.port(UI_PORT)}/"),
        (
            "incidents API",
            f"{endpoints.incidents}/incidents (operator certificate: `python -m scripts.incidents_cli list`)",
        ),
    ]
    if endpoints.vault:
        rows.append(("openbao (vault)", endpoints.vault))
    rows.append(("grafana", endpoints.grafana or "not installed here (runs on the cluster: jobs/monitoring)"))
    rows.append(
        (
            "jaeger",
            endpoints.jaeger
            or "not installed here; traces in .firedrill/traces/*.jsonl (the incidents view draws them)",
        )
    )
    return rows


def print_endpoints(endpoints: Endpoints) -> None:
    say("\nWhere things are:")
    for name, url in where_things_are(endpoints):
        say(f"  {name:<16} {url}")


def scrape_health(prometheus: str) -> dict[str, str]:
    """service label -> Prometheus scrape health (up/down/unknown)."""
    try:
        targets = Prometheus(prometheus, timeout_s=2).targets()
    except PrometheusError:
        return {}
    return {
        target["labels"].get("service") or target["labels"].get("job", "?"): target.get("health", "unknown")
        for target in targets
    }


def print_status(platform: LocalPlatform) -> int:
    units = platform.status()
    if not units:
        say(f"local platform is not running (state dir {platform.state.root}); start it with `make up`")
        return 1
    scrape = scrape_health(platform.endpoints().prometheus)
    say(f"{'program':<14} {'state':<10} {'health':<9} {'scrape':<8} detail")
    unhealthy = 0
    for unit in units:
        health = {True: "ok", False: "FAILING", None: "-"}[unit.healthy]
        unhealthy += unit.healthy is False
        say(f"{unit.name:<14} {unit.state:<10} {health:<9} {scrape.get(unit.name, '-'):<8} {unit.detail}")
    return 1 if unhealthy else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.local", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=None, help="default: FIREDRILL_STATE_DIR or .firedrill")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start everything and wait until healthy (harmless when already up)")
    sub.add_parser("down", help="stop everything")
    sub.add_parser("status", help="table of processes, health and scrape state")
    sub.add_parser("endpoints", help="print the URLs")
    for verb in ("start", "stop", "restart", "kill"):
        one = sub.add_parser(verb, help=f"{verb} one program")
        one.add_argument("unit")
    logs = sub.add_parser("logs", help="last lines of a program's log")
    logs.add_argument("unit")
    logs.add_argument("-n", "--lines", type=int, default=40)
    args = parser.parse_args(argv)
    platform = LocalPlatform(args.state_dir or state_dir())
    try:
        if args.command == "up":
            endpoints = platform.up(progress=say)
            print_endpoints(endpoints)
        elif args.command == "down":
            platform.down(progress=say)
        elif args.command == "status":
            return print_status(platform)
        elif args.command == "endpoints":
            print_endpoints(platform.endpoints())
        elif args.command == "logs":
            say(platform.log_tail(args.unit, args.lines))
        else:
            getattr(platform, args.command)(args.unit)
            say(f"{args.command}: {args.unit} done")
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
