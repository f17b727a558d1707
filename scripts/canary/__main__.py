"""Deploy a new version of a service step by step, analysed against stable, rolled back when it is worse.

    python -m scripts.canary --service response --version 2 [--strategy canary|rolling|blue-green] [--dry-run]
    python -m scripts.canary --abort --service response     # stop a new version a killed rollout left

On the local platform by default; on a Nomad cluster when NOMAD_ADDR is set (docs/canary.md).
Exit status: 0 promoted, 1 rolled back, 2 refused (stable not healthy, bad arguments, no analysis),
3 the rollback itself failed (finish it with --abort).
Ctrl-C or SIGTERM during a rollout rolls it back before exiting.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from scripts.canary.contract import Analysis
from scripts.canary.driver import (
    PROMOTED,
    ROLLBACK_FAILED,
    Refused,
    RolloutRequest,
    RolloutSettings,
    RolloutTarget,
    run_rollout,
    settings_for,
)
from scripts.canary.metrics_endpoint import FileRegistration, ScrapeRegistration, exported_rollout, rollout_targets_dir
from scripts.canary.record import RolloutRecord, records_dir
from scripts.canary.strategies import STRATEGIES
from scripts.deploy_target.interface import PlatformError
from services.common.config import state_dir
from services.common.profiles import profile

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def _say(line: str) -> None:
    print(line, flush=True)


class AnalysisMissing(Exception):
    pass


DEFAULT_ANALYSIS = "scripts.canary.analysis:prometheus_analysis"


def build_analysis(prometheus_url: str, templates_dir: Path, reference: str = DEFAULT_ANALYSIS) -> Analysis:
    """The analysis a rollout asks: ``module:function`` called with the Prometheus URL and the templates
    folder. By default the canary analysis, ``scripts.canary.analysis``; the tests pass a small one."""
    module_name, _, function_name = reference.partition(":")
    if not module_name or not function_name:
        raise AnalysisMissing(f"--analysis {reference!r}: expected module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AnalysisMissing(
            f"the analysis module {module_name} is not available here ({exc}); "
            "a rollout without analysis would promote blindly, so none is started"
        ) from None
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise AnalysisMissing(f"{module_name} has no function {function_name}")
    built: Analysis = factory(prometheus_url, templates_dir)
    return built


def make_target(progress: object = _say) -> tuple[RolloutTarget, str, Path]:
    """(target, Prometheus URL, folder for the records): Nomad when NOMAD_ADDR is set, else local."""
    state = state_dir()
    if os.environ.get("NOMAD_ADDR"):
        from scripts.canary.nomad_target import NomadTarget

        nomad_target = NomadTarget.from_env(progress=_say)
        return nomad_target, nomad_target.prometheus_url, records_dir(state)
    from scripts.canary.local_target import LocalTarget
    from scripts.local.stack import LocalPlatform

    platform = LocalPlatform(state)
    return LocalTarget(platform, progress=_say), platform.endpoints().prometheus, records_dir(state)


def _scrape_registration(target: str, service: str, metrics_host: str | None) -> tuple[ScrapeRegistration, str]:
    """How Prometheus finds the rollout's metrics (docs/canary.md, "Metrics"), and the address to serve
    them on: a file target and loopback locally; on a cluster a Consul registration and this host's
    address towards the Consul agent (or ``--metrics-host``)."""
    if target == "local":
        return FileRegistration(rollout_targets_dir(state_dir()), service, _say), metrics_host or "127.0.0.1"
    from scripts.canary.consul_registration import ConsulRegistration, address_towards

    registration = ConsulRegistration.from_env(service)
    return registration, metrics_host or address_towards(os.environ["CONSUL_HTTP_ADDR"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.canary", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--service", required=True, help="the service to deploy (a catalog name, e.g. response)")
    parser.add_argument("--version", help="the new version (required unless --abort)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="canary", help="default: canary")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the checks, change nothing")
    parser.add_argument("--abort", action="store_true", help="roll back a new version left running, then exit")
    parser.add_argument("--interval", type=float, help="seconds between a step and its verdict (default: by profile)")
    parser.add_argument(
        "--metrics-host",
        help="address to serve the rollout's /metrics on (default: 127.0.0.1 locally; on a cluster this "
        "host's address towards CONSUL_HTTP_ADDR, which Prometheus must be able to reach)",
    )
    parser.add_argument("--max-holds", type=int, help="undecided verdicts in one step before rolling back")
    parser.add_argument(
        "--analysis", default=DEFAULT_ANALYSIS, help="module:function building the analysis (default: %(default)s)"
    )
    parser.add_argument(
        "--templates",
        type=Path,
        default=DEFAULT_TEMPLATES_DIR,
        help="folder of analysis templates (default: %(default)s)",
    )
    return parser


def _settings(args: argparse.Namespace) -> RolloutSettings:
    settings = settings_for(profile().name)
    if args.interval is not None:
        if not 0.1 <= args.interval <= 3600:
            raise Refused("--interval must be between 0.1 and 3600 seconds")
        settings = replace(settings, interval_s=args.interval)
    if args.max_holds is not None:
        if not 1 <= args.max_holds <= 100:
            raise Refused("--max-holds must be between 1 and 100")
        settings = replace(settings, max_holds=args.max_holds)
    return settings


def _dry_run(target: RolloutTarget, request: RolloutRequest) -> int:
    stable = target.stable_version(request.service)
    plan = target.plan(request.service, request.strategy)
    _say(f"dry run on {target.name}: {request.service} {stable} -> {request.version}, strategy {request.strategy}")
    problem = target.stable_problem(request.service)
    _say(f"stable health: {'ok' if problem is None else 'NOT HEALTHY — the rollout would refuse: ' + problem}")
    _say(
        f"each analysed step: wait {request.settings.interval_s:g}s, ask the analysis over the last "
        f"{request.settings.window_s}s; roll back after {request.settings.max_holds} undecided verdicts in a step"
    )
    for line in plan.describe():
        _say(f"  {line}")
    _say("then: the new version becomes stable; on any rollback every call returns to stable and it stops")
    return 0 if problem is None else 2


def _install_stop_handlers(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            _say("still rolling back; wait for it to finish")
            return
        _say(f"{signal.Signals(signum).name}: stopping the rollout, rolling back")
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        target, prometheus_url, folder = make_target()
        if args.abort:
            stable = target.stable_version(args.service)
            exposure = target.rollback(args.service, stable, args.version or "")
            _say(f"every call to {args.service} goes to {stable}; any new version stopped ({exposure})")
            return 0
        if not args.version:
            raise Refused("--version is required")
        request = RolloutRequest(args.service, args.version, args.strategy, _settings(args))
        if args.dry_run:
            return _dry_run(target, request)
        analysis = build_analysis(prometheus_url, args.templates, args.analysis)
        record = RolloutRecord(
            folder,
            service=request.service,
            version=request.version,
            strategy=request.strategy,
            target=target.name,
            plan=target.plan(request.service, request.strategy).describe(),
        )
        stop = threading.Event()
        _install_stop_handlers(stop)
        registration, host = _scrape_registration(target.name, request.service, args.metrics_host)
        with exported_rollout(request.service, registration, host=host, progress=_say) as metrics:
            outcome = run_rollout(request, target, analysis, [record, metrics], stop, _say)
        record.set_exposure(outcome.exposure)
        _say(f"record: {record.path}")
        if outcome.result == ROLLBACK_FAILED:
            print(
                f"the rollback did not finish: python -m scripts.canary --abort --service {request.service}",
                file=sys.stderr,
            )
            return 3
        return 0 if outcome.result == PROMOTED else 1
    except (Refused, AnalysisMissing, PlatformError, ValueError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
