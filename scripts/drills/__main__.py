"""Run failure drills against the live platform and report what users saw.

    python -m scripts.drills outage                  # the classic: stop response, measure, restore
    python -m scripts.drills outage --service hello  # stop another service
    python -m scripts.drills latency --dry-run       # what the drill would do, without doing it
    python -m scripts.drills all                     # every drill in turn, then the scorecard

The platform is the local one unless NOMAD_ADDR points at a cluster. Each drill is a Chaos
Toolkit experiment (scripts/drills/experiments/<name>.json) whose ``firedrill`` extension says
which alerts it expects; it refuses to start when the steady state does not hold, and its
rollbacks always run, also after a failure or Ctrl-C. Results go to <state>/drills/<time>-<name>/;
``all`` also writes <state>/drills/<time>-scorecard.html and exits 1 when any drill failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaoslib.experiment import run_experiment
from chaoslib.loader import load_experiment

from scripts.deploy_target.interface import Platform, PlatformError
from scripts.deploy_target.select import current_platform
from scripts.drills import catalogue, recording, report, scorecard
from scripts.drills.interrupts import SigtermAsCtrlC
from scripts.drills.page import render_page
from scripts.drills.probes import incidents, page_burn_settled
from scripts.drills.recorder import RECORDER
from scripts.local.stack import LocalPlatform
from scripts.promql import Prometheus
from services.common import catalog
from services.common.config import state_dir
from services.common.waiting import wait_until

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


def refusal(journal: dict[str, Any]) -> str | None:
    """Why the drill broke nothing: the steady-state probes that failed before the method ran."""
    before = (journal.get("steady_states") or {}).get("before")
    if not before or before.get("steady_state_met", True):
        return None
    failed = []
    for probe in before.get("probes", []):
        if probe.get("tolerance_met") is False or probe.get("status") == "failed":
            failed.append(f"{probe['activity']['name']} (got {probe.get('output', probe.get('exception'))!r})")
    return "the steady state does not hold: " + ("; ".join(failed) or "a probe failed")


def run_drill(
    name: str,
    service: str | None,
    out_root: Path,
    bring_up: bool = True,
    platform: Platform | None = None,
) -> report.DrillResult:
    return run_recorded(name, service, out_root, bring_up, platform).result


def run_recorded(
    name: str,
    service: str | None,
    out_root: Path,
    bring_up: bool = True,
    platform: Platform | None = None,
) -> recording.Recording:
    spec = catalogue.load(name)
    if service not in (None, spec.breaks) and "service" not in spec.experiment.get("configuration", {}):
        raise SystemExit(f"drill {name} always breaks {spec.breaks}; --service does not apply to it")
    service = service or spec.breaks
    experiment_file = catalogue.EXPERIMENTS / f"{name}.json"
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
        journal = run_experiment(experiment, settings=SETTINGS, event_handlers=[SigtermAsCtrlC()])
    finally:
        # Belt and braces: the experiment's rollbacks already do this.
        RECORDER.stop_traffic()
        try:
            if "partition" in RECORDER.notes:
                platform.heal_partition(**RECORDER.notes["partition"])
            if "startup_broken" in RECORDER.notes:
                platform.restore_startup(str(RECORDER.notes["startup_broken"]))
            platform.start(service)
            if "fault" in RECORDER.notes:
                platform.set_fault(str(RECORDER.notes["fault"]["service"]))
        except PlatformError as exc:
            print(f"[drill] WARNING: could not make sure {service} runs unharmed again: {exc}", file=sys.stderr)
    refused = refusal(journal)
    if refused:
        RECORDER.notes["refused_because"] = refused
        print(f"[drill] {name} refused to start: {refused}", file=sys.stderr, flush=True)
    finished = time.time()
    traffic = RECORDER.traffic.result if RECORDER.traffic else None
    window = (RECORDER.moments.get("traffic_started", started) - 5, finished + 2)
    prometheus = Prometheus(endpoints.prometheus)
    try:
        # An incident that opened before the fault (a previous drill's) is not this drill's.
        since = RECORDER.fault_started() or window[0]
        recorded = [i for i in incidents(service=service) if _opened_after(i, since)]
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
        spec=spec,
    )
    traces_dir = platform.state.traces if isinstance(platform, LocalPlatform) else None
    gathered = recording.collect(result, prometheus, window, traces_dir, endpoints.jaeger)
    paths = report.write_outputs(out_dir, result, journal, render_page(gathered), gathered.to_json())
    print(report.terminal_summary(result, paths), flush=True)
    return gathered


def _wait_for_page_burn_to_settle(platform: Platform, timeout_s: float = 180) -> None:
    RECORDER.reset(platform, platform.endpoints())
    if not page_burn_settled():
        print("[drill] waiting for the previous drill's errors to leave the burn-rate windows", flush=True)
        wait_until(page_burn_settled, timeout_s=timeout_s, interval_s=1, what="the SLO burn rate settled")


def run_catalogue(
    names: list[str], out_root: Path, bring_up: bool = True, platform: Platform | None = None
) -> list[recording.Recording]:
    """Every drill in turn, each on the service it breaks by default; stops after an interrupted one."""
    recordings: list[recording.Recording] = []
    for index, name in enumerate(names):
        if index:
            _wait_for_page_burn_to_settle(platform or current_platform())
        recordings.append(run_recorded(name, None, out_root, bring_up=bring_up and index == 0, platform=platform))
        if recordings[-1].result.status == "interrupted":
            print("[drill] interrupted: the remaining drills are not run", file=sys.stderr, flush=True)
            break
    return recordings


def run_all(names: list[str], out_root: Path, bring_up: bool = True, platform: Platform | None = None) -> int:
    """Every drill in turn, the scorecard printed and written as one page; 1 if any drill failed."""
    recordings = run_catalogue(names, out_root, bring_up, platform)
    results = [r.result for r in recordings]
    page = out_root / f"{time.strftime('%Y%m%d-%H%M%S')}-scorecard.html"
    page.write_text(scorecard.render_scorecard_page(recordings))
    print("\nScorecard\n" + scorecard.render_table(results) + f"\n\nreport {page}", flush=True)
    return 0 if all(r.passed for r in results) else 1


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
    parser.add_argument(
        "drill", nargs="?", default="outage", help=f"a drill ({', '.join(catalogue.names())}) or all (default: outage)"
    )
    parser.add_argument(
        "--service", default=None, choices=catalog.service_names(), help="service to break (default: the drill's own)"
    )
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: <state>/drills)")
    parser.add_argument("--no-up", action="store_true", help="do not start the local platform if it is down")
    parser.add_argument("--dry-run", action="store_true", help="print what the drill would do, and do nothing")
    args = parser.parse_args(argv)
    names = catalogue.names() if args.drill == "all" else [args.drill]
    if args.dry_run:
        for name in names:
            spec = catalogue.load(name)
            print(catalogue.describe(spec, args.service or spec.breaks), end="\n\n")
        return 0
    out_root = args.out or state_dir() / "drills"
    # A shell starts background jobs with SIGINT ignored, and the process inherits that: a drill run
    # from a script (`make simulate-all &`, a CI step) would then sit out a Ctrl-C. Every drill must
    # stop and roll back on it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if args.drill == "all":
            return run_all(names, out_root, bring_up=not args.no_up)
        result = run_drill(args.drill, args.service, out_root, bring_up=not args.no_up)
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
