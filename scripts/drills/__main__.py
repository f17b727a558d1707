"""Run a failure drill against the live platform and report what users saw.

    python -m scripts.drills outage                  # the classic: stop response, measure, restore
    python -m scripts.drills outage --service hello  # stop another service

The platform is the local one unless NOMAD_ADDR points at a cluster. The drill is a Chaos
Toolkit experiment (scripts/drills/experiments/<name>.json); its rollbacks always restart the
service, also after a failure or Ctrl-C. Results go to <state>/drills/<time>-<name>/.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from chaoslib.experiment import run_experiment
from chaoslib.loader import load_experiment

from scripts.deploy_target.interface import Platform, PlatformError
from scripts.deploy_target.select import current_platform
from scripts.drills import recording, report
from scripts.drills.page import render_page
from scripts.drills.probes import incidents
from scripts.drills.recorder import RECORDER
from scripts.local.stack import LocalPlatform
from scripts.promql import Prometheus
from services.common import catalog
from services.common.config import state_dir

EXPERIMENTS = Path(__file__).resolve().parent / "experiments"
SETTINGS = {"runtime": {"rollbacks": {"strategy": "always"}}}


def _configure_logging(log_file: Path) -> None:
    logger = logging.getLogger("chaostoolkit")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter("[drill %(asctime)s] %(message)s", "%H:%M:%S"))
    to_file = logging.FileHandler(log_file)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.handlers[:] = [console, to_file]


def run_drill(
    name: str, service: str, out_root: Path, bring_up: bool = True, platform: Platform | None = None
) -> report.DrillResult:
    experiment_file = EXPERIMENTS / f"{name}.json"
    if not experiment_file.exists():
        known = ", ".join(sorted(p.stem for p in EXPERIMENTS.glob("*.json")))
        raise SystemExit(f"unknown drill {name!r}; known drills: {known}")
    platform = platform or current_platform()
    if bring_up and isinstance(platform, LocalPlatform):
        print("[drill] making sure the local platform is up", flush=True)
        platform.up(progress=lambda line: print(line, flush=True))
    endpoints = platform.endpoints()
    RECORDER.reset(platform, endpoints)
    out_dir = out_root / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{service}"
    out_dir.mkdir(parents=True, exist_ok=True)
    _configure_logging(out_dir / "chaostoolkit.log")
    os.environ["FIREDRILL_DRILL_SERVICE"] = service
    experiment = load_experiment(str(experiment_file), SETTINGS)
    started = time.time()
    try:
        journal = run_experiment(experiment, settings=SETTINGS)
    finally:
        # Belt and braces: the experiment's rollbacks already do this.
        RECORDER.stop_traffic()
        try:
            platform.start(service)
        except PlatformError as exc:
            print(f"[drill] WARNING: could not make sure {service} runs again: {exc}", file=sys.stderr)
    finished = time.time()
    traffic = RECORDER.traffic.result if RECORDER.traffic else None
    window = (RECORDER.moments.get("traffic_started", started) - 5, finished + 2)
    prometheus = Prometheus(endpoints.prometheus)
    try:
        recorded = [i for i in incidents(service=service) if _opened_after(i, window[0])]
    except OSError:
        recorded = []
    result = report.build_result(
        experiment=name,
        service=service,
        journal=journal,
        moments=dict(RECORDER.moments),
        notes=dict(RECORDER.notes),
        traffic=traffic,
        incidents=recorded,
    )
    traces_dir = platform.state.traces if isinstance(platform, LocalPlatform) else None
    gathered = recording.collect(result, prometheus, window, traces_dir, endpoints.jaeger)
    paths = report.write_outputs(out_dir, result, journal, render_page(gathered), gathered.to_json())
    print(report.terminal_summary(result, paths), flush=True)
    return result


def _opened_after(incident: dict[str, object], since: float) -> bool:
    from datetime import datetime

    opened = incident.get("started_at") or incident.get("created_at")
    if not isinstance(opened, str):
        return True
    try:
        return datetime.fromisoformat(opened.replace("Z", "+00:00")).timestamp() >= since
    except ValueError:
        return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.drills", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("drill", nargs="?", default="outage", help="experiment name (default: outage)")
    parser.add_argument(
        "--service", default="response", choices=catalog.service_names(), help="service to break (default: response)"
    )
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: <state>/drills)")
    parser.add_argument("--no-up", action="store_true", help="do not start the local platform if it is down")
    args = parser.parse_args(argv)
    out_root = args.out or state_dir() / "drills"
    try:
        result = run_drill(args.drill, args.service, out_root, bring_up=not args.no_up)
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
