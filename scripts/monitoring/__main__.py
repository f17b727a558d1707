"""python -m scripts.monitoring {render,check,local}"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.common.profiles import profile as named_profile

from .check import Outcome, run_checks
from .dashboards import render_dashboards
from .files import REPO, render_committed, write_local_config


def _report(outcome: Outcome) -> None:
    mark = "ok  " if outcome.ok else "FAIL"
    print(f"[{mark}] {outcome.what}", flush=True)
    if not outcome.ok and outcome.output:
        print("       " + outcome.output.replace("\n", "\n       "), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.monitoring",
        description="Generate and validate Firedrill's Prometheus rules/config, Alertmanager config and "
        "Grafana dashboards from the service catalog and the timing profiles.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("render", help="rewrite the committed generated files (both profiles, dashboards)")
    commands.add_parser(
        "check",
        help="promtool check config/rules, promtool test rules, amtool check-config, "
        "on both profiles; fails when committed files are stale",
    )
    local = commands.add_parser("local", help="write the local platform's config under a state directory")
    local.add_argument("state_dir", type=Path)
    local.add_argument("--profile", default=None, help="drill or production (default: $FIREDRILL_PROFILE or drill)")
    args = parser.parse_args(argv)

    if args.command == "render":
        written = [*render_committed(), *render_dashboards()]
        print(f"wrote {len(written)} generated files under prometheus/, alertmanager/ and grafana/")
        return 0
    if args.command == "check":
        outcomes = run_checks(_report)
        failed = [o for o in outcomes if not o.ok]
        if failed:
            print(f"monitoring check FAILED: {len(failed)} of {len(outcomes)} checks", file=sys.stderr)
            return 1
        print(f"monitoring check passed: {len(outcomes)} checks")
        return 0
    paths = write_local_config(args.state_dir, named_profile(args.profile))
    for field, value in (
        ("prometheus", paths.prometheus_config),
        ("alertmanager", paths.alertmanager_config),
        ("rules", paths.rules_dir),
        ("targets", paths.file_sd_dir),
    ):
        print(f"{field:13} {value}")
    _ = REPO
    return 0


if __name__ == "__main__":
    sys.exit(main())
