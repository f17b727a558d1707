"""Record what Prometheus answers to every analysis check, for a canary and its stable version.

The file it writes is what the unit tests play back (scripts/canary/recorded.py): the same queries
the analysis sends, with Prometheus' own answers, so the decision is tested on real series.

    python -m scripts.canary.capture --prometheus http://127.0.0.1:9090 --service response \\
        --stable v1 --canary v2-errors --window 20 --note "how the series were made" out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from scripts.canary.measure import LivePrometheus, PrometheusAnswers, ask
from scripts.canary.templates import TEMPLATES_DIR, TemplateError, load_templates
from scripts.promql import Prometheus, PrometheusError


def capture(
    answers: PrometheusAnswers,
    templates_dir: Path,
    service: str,
    stable: str,
    canary: str,
    window_s: int,
    at: float,
    note: str,
) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    for check in load_templates(templates_dir):
        recorded: dict[str, Any] = {"kind": check.kind.value}
        for role, version in (("canary", canary), ("stable", stable)):
            query = check.render(service, version, window_s)
            recorded[role] = {"query": query, "data": ask(answers, check, query, window_s, at)}
        checks[check.name] = recorded
    return {
        "note": note,
        "at": round(at, 3),
        "service": service,
        "stable_version": stable,
        "canary_version": canary,
        "window_s": window_s,
        "checks": checks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.canary.capture",
        description="Record Prometheus' answers to every analysis check, canary and stable, into a JSON file.",
    )
    parser.add_argument("out", type=Path, help="the JSON file to write")
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--service", required=True)
    parser.add_argument("--stable", required=True, help="stable's version label")
    parser.add_argument("--canary", required=True, help="the canary's version label")
    parser.add_argument("--window", type=int, default=20, help="analysis window in seconds (default 20)")
    parser.add_argument("--templates", type=Path, default=TEMPLATES_DIR, help="folder of analysis templates")
    parser.add_argument("--note", default="", help="how the series were produced (kept in the file)")
    args = parser.parse_args(argv)
    answers = LivePrometheus(Prometheus(args.prometheus))
    try:
        document = capture(
            answers, args.templates, args.service, args.stable, args.canary, args.window, time.time(), args.note
        )
    except (TemplateError, PrometheusError, ValueError) as exc:
        print(f"capture: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(document['checks'])} checks, {args.canary} against {args.stable}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
