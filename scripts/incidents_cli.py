"""Look at incidents from the receiver's HTTP API: ``python -m scripts.incidents_cli {list,show,test-alert,ui}``.

    python -m scripts.incidents_cli list --status firing --service response
    python -m scripts.incidents_cli show 12
    python -m scripts.incidents_cli test-alert          # post a sample notification (then resolve it)
    python -m scripts.incidents_cli ui                  # the incidents in a browser, on 127.0.0.1 only

The API address is --url, else FIREDRILL_INCIDENTS_URL, else the local platform's receiver.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts.deploy_target.interface import PlatformError
from scripts.deploy_target.select import current_platform
from scripts.vault.local import operator_identity, rendered_identity
from services.common import catalog
from services.common.config import state_dir
from services.common.tls import TlsMaterial
from services.incidents.models import NS_PER_S
from services.incidents.payloads import AlertSpec, group_notification

TIMEOUT_S = 5.0
MAX_CELL = 48
# The incidents view's loopback port, shifted by FIREDRILL_PORT_OFFSET like the platform's own ports.
UI_PORT = 5080


class ApiError(Exception):
    pass


def default_url() -> str:
    configured = os.environ.get("FIREDRILL_INCIDENTS_URL")
    if configured:
        return configured.rstrip("/")
    scheme = "https" if operator_identity(state_dir()) else "http"
    return f"{scheme}://127.0.0.1:{catalog.port(catalog.service('incidents').port)}"


def _context(url: str, identity: str) -> ssl.SSLContext | None:
    files = rendered_identity(state_dir(), identity) if url.startswith("https://") else None
    return TlsMaterial(files, identity).client_context() if files else None


def call(url: str, method: str = "GET", body: dict[str, Any] | None = None, *, identity: str = "operator") -> Any:
    """``identity`` is the certificate presented over https: the operator reads incidents, and only
    Alertmanager may post notifications (the catalog's allow-list for incidents)."""
    if not url.startswith(("http://", "https://")):
        raise ApiError(f"not an http(s) URL: {url}")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=data, method=method, headers={"Content-Type": "application/json", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=_context(url, identity)) as answer:  # noqa: S310
            return json.load(answer)
    except urllib.error.HTTPError as exc:
        try:
            error = json.load(exc).get("error", {})
            message = error.get("message", exc.reason)
        except (ValueError, AttributeError):
            message = exc.reason
        raise ApiError(f"{exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ApiError(f"cannot reach the incident receiver at {url}: {exc}") from None


def cell(value: object) -> str:
    text = "-" if value is None or value == "" else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def list_command(args: argparse.Namespace) -> int:
    query = {"limit": str(args.limit), "offset": str(args.offset)}
    if args.status:
        query["status"] = args.status
    if args.service:
        query["service"] = args.service
    body = call(f"{args.url}/incidents?{urllib.parse.urlencode(query)}")
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return 0
    rows = [
        (
            i["id"],
            i["status"],
            i["severity"],
            i["service"],
            i["alertname"],
            f"{i['alerts_firing']}/{i['alerts_total']}",
            i["started_at"],
            duration(i["duration_seconds"]),
            i["summary"],
        )
        for i in body["incidents"]
    ]
    headers = ("id", "status", "severity", "service", "alert", "firing", "started", "duration", "summary")
    print(table(headers, rows))
    shown = len(rows)
    print(f"\n{shown} of {body['total']} incident(s) (offset {body['offset']})")
    return 0


def show_command(args: argparse.Namespace) -> int:
    incident = call(f"{args.url}/incidents/{args.id}")
    if args.json:
        print(json.dumps(incident, indent=2, ensure_ascii=False))
        return 0
    enrichment = incident["enrichment"]
    fields = [
        ("id", incident["id"]),
        ("status", incident["status"]),
        ("alert", incident["alertname"]),
        ("service", incident["service"]),
        ("severity", incident["severity"]),
        ("summary", incident["summary"]),
        ("started", incident["started_at"]),
        ("resolved", incident["resolved_at"]),
        ("duration", duration(incident["duration_seconds"])),
        ("runbook", incident["runbook_url"]),
        ("dashboard", incident["dashboard_url"]),
        ("group", incident["group_key"]),
        ("enrichment", enrichment["status"]),
        ("expr", enrichment["expr"]),
        ("value now", enrichment["value"]),
        ("trace id", enrichment["exemplar_trace_id"]),
        ("enrich error", enrichment["error"]),
    ]
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        print(f"{name:<{width}}  {'-' if value is None else value}")
    print()
    rows = [
        (a["fingerprint"], a["status"], a["starts_at"], a["ends_at"], _labels(a["labels"])) for a in incident["alerts"]
    ]
    print(table(("fingerprint", "status", "starts", "ends", "labels"), rows))
    return 0


def _labels(labels: dict[str, str]) -> str:
    skip = {"alertname", "service", "severity"}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in skip) or "-"


def test_alert_command(args: argparse.Namespace) -> int:
    now = time.time_ns()
    spec = AlertSpec(
        {"alertname": "FiredrillTestAlert", "service": args.service, "severity": "info"},
        now,
        annotations={"summary": "a test alert sent by scripts.incidents_cli"},
        expr="vector(1)",
    )
    # Sent as Alertmanager (its certificate, rendered locally beside the operator's): only it may post.
    created = call(f"{args.url}/alerts", "POST", group_notification([spec]), identity="alertmanager")
    print(f"firing test alert stored: incidents {created['incidents_created'] or created['incidents_changed']}")
    if args.resolve:
        done = AlertSpec(spec.labels, spec.starts_at_ns, now + NS_PER_S, spec.annotations, spec.expr)
        resolved = call(f"{args.url}/alerts", "POST", group_notification([done]), identity="alertmanager")
        print(f"resolved: incidents {resolved['incidents_changed']}")
    return 0


def ui_command(args: argparse.Namespace) -> int:
    from scripts.incidents_view.links import CLASSIC_GRAPH, GRAPH, LinkTargets
    from scripts.incidents_view.server import ViewConfig, serve

    cluster = bool(os.environ.get("NOMAD_ADDR"))
    try:
        endpoints = current_platform().endpoints()
    except PlatformError as exc:
        raise ApiError(str(exc)) from None
    targets = LinkTargets(
        prometheus=args.prometheus or endpoints.prometheus,
        graph_path=GRAPH if cluster else CLASSIC_GRAPH,
        jaeger=args.jaeger or endpoints.jaeger,
    )
    traces = args.traces_dir or (None if cluster else state_dir() / "traces")
    operator = rendered_identity(state_dir(), "operator") if args.url.startswith("https://") else None
    if args.url.startswith("https://") and operator is None:
        raise ApiError(
            f"no operator certificate in {state_dir() / 'secrets'}: the API needs one (start with `make up`)"
        )
    serve(ViewConfig(args.url, targets, traces, operator), args.port)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.incidents_cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", default=default_url(), help="incident receiver base URL (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="incidents as a table, newest first")
    listing.add_argument("--status", choices=("firing", "resolved"))
    listing.add_argument("--service")
    listing.add_argument("--limit", type=int, default=20, help="at most 500 (default 20)")
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    listing.set_defaults(run=list_command)
    show = commands.add_parser("show", help="one incident with its alerts and enrichment")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    show.set_defaults(run=show_command)
    test = commands.add_parser("test-alert", help="post a sample firing notification to check the receiver")
    test.add_argument("--service", default="firedrill-cli")
    test.add_argument("--resolve", action="store_true", help="resolve it right away")
    test.set_defaults(run=test_alert_command)
    ui = commands.add_parser(
        "ui",
        help="serve the incidents as web pages on 127.0.0.1 (read with the operator's certificate)",
        description="Serve the incidents as web pages on 127.0.0.1 only; docs/incidents.md says why.",
    )
    ui.add_argument("--port", type=int, default=catalog.port(UI_PORT), help="loopback port (default: %(default)s)")
    ui.add_argument("--prometheus", help="Prometheus base URL for graph links (default: the platform's)")
    ui.add_argument("--jaeger", help="Jaeger base URL for trace links (default: the platform's, when it has one)")
    ui.add_argument("--traces-dir", type=Path, help="span files to draw traces from (default: <state>/traces)")
    ui.set_defaults(run=ui_command)
    args = parser.parse_args(argv)
    args.url = args.url.rstrip("/")
    try:
        return int(args.run(args))
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
