"""One analysis of a canary against its stable version, now, printed with the numbers behind it.

    python -m scripts.canary.evaluate --service response --stable v1 --canary v2
    python -m scripts.canary.evaluate --check-templates path/to/templates   # validate a folder only

What a rollout does at each step, without rolling anything out: useful to try a new analysis
template against live series before a team relies on it. Exit status: 0 PROMOTE, 1 HOLD,
3 ROLLBACK, 4 a bad template (2, as always with argparse, bad arguments).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.canary.analysis import TemplateAnalysis
from scripts.canary.contract import Decision, StepContext
from scripts.canary.log_observer import verdict_lines
from scripts.canary.measure import LivePrometheus
from scripts.canary.templates import TEMPLATES_DIR, TemplateError, load_templates
from scripts.promql import Prometheus
from services.common import catalog

EXIT = {Decision.PROMOTE: 0, Decision.HOLD: 1, Decision.ROLLBACK: 3}
BAD_TEMPLATE = 4


def default_prometheus() -> str:
    """The local platform's Prometheus (its catalog port, shifted by FIREDRILL_PORT_OFFSET)."""
    return f"http://127.0.0.1:{catalog.port(catalog.infra('prometheus').port)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.canary.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--templates", type=Path, default=TEMPLATES_DIR, help="folder of analysis templates")
    parser.add_argument("--check-templates", action="store_true", help="only load and validate the templates")
    parser.add_argument("--prometheus", default=None, help="Prometheus base URL (default: the local platform's)")
    parser.add_argument("--service")
    parser.add_argument("--stable", help="stable's version label")
    parser.add_argument("--canary", help="the canary's version label")
    parser.add_argument("--window", type=int, default=30, help="analysis window in seconds (default 30)")
    parser.add_argument(
        "--failures",
        action="append",
        default=[],
        metavar="CHECK=N",
        help="failures in a row a check already had (repeatable), as a rollout would pass them",
    )
    args = parser.parse_args(argv)
    try:
        checks = load_templates(args.templates)
    except TemplateError as exc:
        print(f"bad analysis template: {exc}", file=sys.stderr)
        return BAD_TEMPLATE
    if args.check_templates:
        for check in checks:
            print(
                f"{check.name:24} {check.kind.value:9} {check.threshold_text:32} every {check.interval_s}s, "
                f"failure limit {check.failure_limit}"
            )
        return 0
    missing = [f"--{name}" for name in ("service", "stable", "canary") if not getattr(args, name)]
    if missing:
        parser.error(f"{', '.join(missing)} required (or --check-templates)")
    if args.window < 1:
        parser.error("--window must be at least 1 second")
    failures: dict[str, int] = {}
    for item in args.failures:
        name, _, count = item.partition("=")
        if name not in {c.name for c in checks} or not count.isdigit():
            parser.error(f"--failures {item!r}: expected CHECK=N with a check of the templates")
        failures[name] = int(count)
    analysis = TemplateAnalysis(LivePrometheus(Prometheus(args.prometheus or default_prometheus())), checks)
    context = StepContext(args.service, args.stable, args.canary, "canary", 0, 0, args.window, failures)
    try:
        verdict = analysis.evaluate(context)
    except ValueError as exc:  # a version or service that cannot go into a label matcher
        parser.error(str(exc))
    print("\n".join(verdict_lines(context, verdict)))
    return EXIT[verdict.decision]


if __name__ == "__main__":
    sys.exit(main())
