"""Grafana dashboards, generated: RED overview, SLO and burn rate, the gRPC movie app, platform.

Panels read the recording rules where one exists, so the dashboards work unchanged with either
timing profile; raw-metric panels use ``$__rate_interval``.
"""

from __future__ import annotations

import json
from pathlib import Path

from services.common import catalog
from services.common.catalog import Protocol

from . import recording as rec
from . import slo as slo_mod
from .alerts import OVERVIEW_UID, PLATFORM_UID, SLO_UID
from .files import REPO
from .grafana_model import Dashboard, Panel, Query

MOVIE_UID = "firedrill-movie"
SEL = 'service=~"$service"'
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"


def overview() -> Dashboard:
    return Dashboard(
        uid=OVERVIEW_UID,
        title="Firedrill — services overview (RED)",
        description="Rate, errors and duration of every service, plus process resources.",
        panels=(
            Panel(
                "Scrape health (up)",
                (Query(f'max by (service) (up{{job="services",{SEL}}})', "{{service}}"),),
                unit="none",
                kind="stat",
                width=24,
                height=4,
                core=True,
            ),
            Panel(
                "Request rate",
                (
                    Query(f"{rec.HTTP_RATE}{{{SEL}}}", "{{service}} http"),
                    Query(f"{rec.GRPC_RATE}{{{SEL}}}", "{{service}} grpc"),
                ),
                unit="reqps",
                core=True,
            ),
            Panel(
                "Error ratio",
                (
                    Query(f"{rec.HTTP_ERROR_RATIO}{{{SEL}}}", "{{service}} http"),
                    Query(f"{rec.GRPC_ERROR_RATIO}{{{SEL}}}", "{{service}} grpc"),
                ),
                unit="percentunit",
                core=True,
            ),
            Panel(
                "p95 latency",
                (
                    Query(f"{rec.HTTP_P95}{{{SEL}}}", "{{service}} http"),
                    Query(f"{rec.GRPC_P95}{{{SEL}}}", "{{service}} grpc"),
                ),
                unit="s",
                core=True,
            ),
            Panel(
                "Requests by status",
                (
                    Query(
                        f'sum by (service, status) (rate(http_requests_total{{job="services",{SEL}}}'
                        "[$__rate_interval]))",
                        "{{service}} {{status}}",
                    ),
                ),
                unit="reqps",
                core=True,
            ),
            Panel(
                "In flight",
                (Query(f'sum by (service) (http_requests_in_flight{{job="services",{SEL}}})', "{{service}}"),),
                unit="none",
                core=True,
            ),
            Panel(
                "HTTP calls to upstreams",
                (
                    Query(
                        f'sum by (service, upstream, outcome) (rate(http_client_requests_total{{job="services",{SEL}}}'
                        "[$__rate_interval]))",
                        "{{service}}→{{upstream}} {{outcome}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel("CPU (cores)", (Query(f"{rec.CPU_RATE}{{{SEL}}}", "{{service}}"),), unit="none", core=True),
            Panel(
                "Resident memory",
                (
                    Query(f"{rec.MEMORY}{{{SEL}}}", "{{service}} now"),
                    Query(f"{rec.MEMORY_PREDICTED}{{{SEL}}}", "{{service}} predicted"),
                ),
                unit="bytes",
                core=True,
            ),
        ),
    )


def slo() -> Dashboard:
    windows = [w for w in slo_mod.window_names() if w != slo_mod.BUDGET_PERIOD_S]
    return Dashboard(
        uid=SLO_UID,
        title="Firedrill — SLOs and error-budget burn",
        description="Availability SLOs of the edge services. Window names are production windows; the drill "
        "profile divides them (see the rule group names).",
        panels=(
            Panel(
                "Error budget remaining (budget period)",
                (Query(f"{slo_mod.BUDGET_REMAINING_RECORD}{{{SEL}}}", "{{service}} {{slo}}"),),
                unit="percentunit",
                kind="stat",
                width=12,
                core=True,
            ),
            Panel(
                "Objective",
                (Query(f"{slo_mod.OBJECTIVE_RECORD}{{{SEL}}}", "{{service}} {{slo}}"),),
                unit="percentunit",
                kind="stat",
                width=12,
                core=True,
            ),
            Panel(
                "Burn rate by window",
                tuple(
                    Query(
                        f"{slo_mod.ratio_record(w)}{{{SEL}}} / on (service, slo) "
                        f"(1 - {slo_mod.OBJECTIVE_RECORD}{{{SEL}}})",
                        "{{service}} " + slo_mod.ratio_record(w)[-3:],
                    )
                    for w in windows
                ),
                unit="none",
                width=24,
                core=True,
            ),
            Panel(
                "SLI error ratio (short windows)",
                tuple(
                    Query(f"{slo_mod.ratio_record(w)}{{{SEL}}}", "{{service}} " + slo_mod.ratio_record(w)[-3:])
                    for w in windows[:3]
                ),
                unit="percentunit",
                core=True,
            ),
            Panel(
                "Burn-rate alerts",
                (Query(f'ALERTS{{alertname=~"ErrorBudgetBurn.*",{SEL}}}', "{{alertname}} {{service}} {{alertstate}}"),),
                unit="none",
            ),
        ),
    )


def movie() -> Dashboard:
    grpc = [s.name for s in catalog.SERVICES if s.protocol is Protocol.GRPC]
    sel = f'job="services",service=~"{"|".join(grpc)}"'
    return Dashboard(
        uid=MOVIE_UID,
        title="Firedrill — movie app (gRPC)",
        description="movie fans out to metadata and rating (and auth); server and client side of every call.",
        service_variable=False,
        panels=(
            Panel(
                "Server calls by method and code",
                (
                    Query(
                        f"sum by (service, grpc_method, grpc_code) (rate(grpc_server_handled_total{{{sel}}}"
                        "[$__rate_interval]))",
                        "{{service}} {{grpc_method}} {{grpc_code}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Server p95 by method",
                (
                    Query(
                        f"histogram_quantile(0.95, sum by (service, grpc_method, le) "
                        f"(rate(grpc_server_handling_seconds_bucket{{{sel}}}[$__rate_interval])))",
                        "{{service}} {{grpc_method}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Client calls (movie → upstreams)",
                (
                    Query(
                        f"sum by (service, grpc_service, grpc_method, grpc_code) "
                        f"(rate(grpc_client_handled_total{{{sel}}}[$__rate_interval]))",
                        "{{service}}→{{grpc_service}}.{{grpc_method}} {{grpc_code}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Client p95 (movie → upstreams)",
                (
                    Query(
                        f"histogram_quantile(0.95, sum by (service, grpc_service, le) "
                        f"(rate(grpc_client_handling_seconds_bucket{{{sel}}}[$__rate_interval])))",
                        "{{service}}→{{grpc_service}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Error ratio (server faults)",
                (Query(f'{rec.GRPC_ERROR_RATIO}{{service=~"{"|".join(grpc)}"}}', "{{service}}"),),
                unit="percentunit",
            ),
            Panel(
                "Scrape health",
                (Query(f"max by (service) (up{{{sel}}})", "{{service}}"),),
                unit="none",
                kind="stat",
                core=True,
            ),
        ),
    )


def platform() -> Dashboard:
    return Dashboard(
        uid=PLATFORM_UID,
        title="Firedrill — platform and alerting",
        description="Alerts, Alertmanager delivery to the incident receiver, scrape health, Vault and certificates.",
        panels=(
            Panel(
                "Firing alerts",
                (Query('sum by (alertname, severity) (ALERTS{alertstate="firing"})', "{{alertname}} {{severity}}"),),
                unit="none",
            ),
            Panel(
                "Targets up by job",
                (Query("sum by (job) (up)", "{{job}} up"), Query("count by (job) (up)", "{{job}} total")),
                unit="none",
                core=True,
            ),
            Panel(
                "Alertmanager notifications",
                (
                    Query(
                        "sum by (integration) (rate(alertmanager_notifications_total[$__rate_interval]))",
                        "{{integration}} sent",
                    ),
                    Query(
                        "sum by (integration) (rate(alertmanager_notifications_failed_total[$__rate_interval]))",
                        "{{integration}} failed",
                    ),
                ),
                unit="ops",
                core=True,
            ),
            Panel(
                "Alerts received by Alertmanager",
                (Query("sum by (status) (rate(alertmanager_alerts_received_total[$__rate_interval]))", "{{status}}"),),
                unit="ops",
                core=False,
            ),
            Panel(
                "Vault reachable",
                (Query(f"min by (service) (vault_reachable{{{SEL}}})", "{{service}}"),),
                unit="bool",
                kind="stat",
            ),
            Panel(
                "TLS certificate expires in",
                (Query(f'min by (service) (tls_cert_expiry_seconds{{job="services",{SEL}}})', "{{service}}"),),
                unit="s",
                kind="stat",
            ),
            Panel(
                "Rule evaluation duration",
                (Query("max by (rule_group) (prometheus_rule_group_last_duration_seconds)", "{{rule_group}}"),),
                unit="s",
                core=True,
            ),
            Panel(
                "Scrape duration",
                (Query(f'max by (service) (scrape_duration_seconds{{job="services",{SEL}}})', "{{service}}"),),
                unit="s",
                core=True,
            ),
        ),
    )


def dashboards() -> tuple[Dashboard, ...]:
    return (overview(), slo(), movie(), platform())


def dashboard_files(directory: Path = DASHBOARDS_DIR) -> dict[Path, str]:
    return {
        directory / f"{d.uid}.json": json.dumps(d.to_json(), indent=2, sort_keys=False) + "\n" for d in dashboards()
    }


def render_dashboards(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    files = dashboard_files(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.json"):
        if old not in files:
            old.unlink()
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return sorted(files)


def stale_dashboards(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    files = dashboard_files(directory)
    stale = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    return sorted(stale + [p for p in directory.glob("*.json") if p not in files])
