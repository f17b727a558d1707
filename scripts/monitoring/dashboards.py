"""Grafana dashboards, generated: RED overview, SLOs, the gRPC movie app, platform, alerting, cluster.

Panels read the recording rules where one exists, so the dashboards work unchanged with either
timing profile; raw-metric panels use ``$__rate_interval``. Thresholds are the alert thresholds
(settings.THRESHOLDS) and the SLO objectives and burn-rate factors (slo.py), never written here.
"""

from __future__ import annotations

from pathlib import Path

from services.common import catalog
from services.common.catalog import Protocol
from services.common.profiles import PRODUCTION

from . import recording as rec
from . import slo as slo_mod
from .alerts import ALERTING_UID, OVERVIEW_UID, PLATFORM_UID, SLO_UID, certificate_expiry_limit_s
from .dashboard_alerting import alerting
from .dashboard_cluster import cluster
from .dashboard_deployments import deployment_annotations, deployment_panels
from .dashboard_links import header_runbooks, runbooks
from .files import REPO
from .grafana_kit import (
    Board,
    Core,
    Query,
    Step,
    Thresholds,
    above,
    below,
    board,
    informational,
    stat_panel,
    states,
    timeseries_panel,
    to_dashboard,
)
from .settings import THRESHOLDS

MOVIE_UID = "firedrill-movie"
SEL = 'service=~"$service"'
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"


def overview() -> Board:
    t = THRESHOLDS
    return board(
        OVERVIEW_UID,
        "Firedrill — services overview (RED)",
        "Rate, errors and duration of every service, plus process resources. Red lines are the alert thresholds. "
        "The last row follows canary rollouts; their promotions and rollbacks are annotations.",
        (
            Core(
                stat_panel(
                    "Scrape health (up)",
                    "Whether Prometheus scrapes each service: DOWN for more than the profile's `for` is ServiceDown.",
                    (Query(f'max by (service) (up{{job="services",{SEL}}})', "{{service}}"),),
                    "none",
                    below(1),
                    mappings=states("DOWN", "UP"),
                    links=runbooks("ServiceDown"),
                    width=24,
                    height=4,
                )
            ),
            Core(
                timeseries_panel(
                    "Request rate",
                    "Requests per second each service serves (HTTP and gRPC), from the recording rules.",
                    (
                        Query(f"{rec.HTTP_RATE}{{{SEL}}}", "{{service}} http"),
                        Query(f"{rec.GRPC_RATE}{{{SEL}}}", "{{service}} grpc"),
                    ),
                    "reqps",
                )
            ),
            Core(
                timeseries_panel(
                    "Error ratio",
                    f"Share of requests that failed (HTTP 5xx, gRPC server codes); above {t.error_ratio:.0%} for the "
                    "profile's `for` is HighErrorRatio. The SLO dashboard shows what it costs the error budget.",
                    (
                        Query(f"{rec.HTTP_ERROR_RATIO}{{{SEL}}}", "{{service}} http"),
                        Query(f"{rec.GRPC_ERROR_RATIO}{{{SEL}}}", "{{service}} grpc"),
                    ),
                    "percentunit",
                    thresholds=above(t.error_ratio),
                    links=[*runbooks("HighErrorRatio"), to_dashboard(SLO_UID, "SLOs and error budget")],
                )
            ),
            Core(
                timeseries_panel(
                    "p95 latency",
                    f"95th percentile request duration; above {t.latency_p95_s}s is HighLatencyP95. Exemplar dots "
                    "open the slow request's trace in Jaeger.",
                    (
                        Query(f"{rec.HTTP_P95}{{{SEL}}}", "{{service}} http"),
                        Query(f"{rec.GRPC_P95}{{{SEL}}}", "{{service}} grpc"),
                    ),
                    "s",
                    thresholds=above(t.latency_p95_s),
                    links=runbooks("HighLatencyP95"),
                )
            ),
            Core(
                timeseries_panel(
                    "Requests by status",
                    "HTTP requests per second by response status (route templates, never raw URLs).",
                    (
                        Query(
                            f'sum by (service, status) (rate(http_requests_total{{job="services",{SEL}}}'
                            "[$__rate_interval]))",
                            "{{service}} {{status}}",
                        ),
                    ),
                    "reqps",
                )
            ),
            Core(
                timeseries_panel(
                    "In flight",
                    "HTTP requests being served right now: a queue building up shows here before latency does.",
                    (Query(f'sum by (service) (http_requests_in_flight{{job="services",{SEL}}})', "{{service}}"),),
                    "none",
                )
            ),
            Core(
                timeseries_panel(
                    "HTTP calls to upstreams",
                    "Calls each service makes to its upstreams by outcome: a failing dependency shows as errors "
                    "or timeouts here while the dependency's own dashboard row is red.",
                    (
                        Query(
                            "sum by (service, upstream, outcome) (rate(http_client_requests_total"
                            f'{{job="services",{SEL}}}[$__rate_interval]))',
                            "{{service}}→{{upstream}} {{outcome}}",
                        ),
                    ),
                    "reqps",
                )
            ),
            Core(
                timeseries_panel(
                    "CPU (cores)",
                    f"CPU seconds per second of the busiest process, and what it asked for (used plus waited for "
                    f"on a run queue); a Python process saturates at one core (CpuSaturation: asked above "
                    f"{t.cpu_cores}).",
                    (
                        Query(f"{rec.CPU_RATE}{{{SEL}}}", "{{service}} used"),
                        Query(f"{rec.CPU_DEMAND}{{{SEL}}}", "{{service}} asked"),
                    ),
                    "none",
                    thresholds=above(t.cpu_cores),
                    links=runbooks("CpuSaturation"),
                )
            ),
            Core(
                timeseries_panel(
                    "Resident memory",
                    "Resident memory now and where predict_linear says it is heading; the predicted line crossing "
                    f"{t.memory_limit_bytes // 2**20} MiB is MemoryGrowth.",
                    (
                        Query(f"{rec.MEMORY}{{{SEL}}}", "{{service}} now"),
                        Query(f"{rec.MEMORY_PREDICTED}{{{SEL}}}", "{{service}} predicted"),
                    ),
                    "bytes",
                    thresholds=above(t.memory_limit_bytes),
                    links=runbooks("MemoryGrowth"),
                )
            ),
            *deployment_panels(),
        ),
        links=header_runbooks(OVERVIEW_UID),
        annotations=deployment_annotations(),
    )


def _one_budget() -> float:
    budgets = {s.budget for s in slo_mod.slos()}
    if len(budgets) != 1:
        raise ValueError(f"the SLO panels draw one budget line; the SLOs have several: {sorted(budgets)}")
    return budgets.pop()


def slo() -> Board:
    windows = [w for w in slo_mod.window_names() if w != slo_mod.BUDGET_PERIOD_S]
    budget = _one_budget()
    page, ticket = slo_mod.PAGE, slo_mod.TICKET
    page_factor = min(w.factor for w in page.windows)
    ticket_factor = min(w.factor for w in ticket.windows)
    burn = "Burn rate 1 spends the budget exactly over the budget period."
    return board(
        SLO_UID,
        "Firedrill — SLOs and error-budget burn",
        "Availability SLOs of the edge services. Window names are production windows; the drill profile divides "
        "them (see the rule group names).",
        (
            Core(
                stat_panel(
                    "Error budget remaining (budget period)",
                    "Share of the budget period's error budget left: green while the SLO holds, red below 0 "
                    "(the objective is missed for the period).",
                    (Query(f"{slo_mod.BUDGET_REMAINING_RECORD}{{{SEL}}}", "{{service}} {{slo}}"),),
                    "percentunit",
                    below(0),
                    links=runbooks(page.name, ticket.name),
                )
            ),
            Core(
                stat_panel(
                    "Objective",
                    "The availability objective of each SLO (slo.py): the share of requests that must succeed.",
                    (Query(f"{slo_mod.OBJECTIVE_RECORD}{{{SEL}}}", "{{service}} {{slo}}"),),
                    "percentunit",
                    informational(),
                )
            ),
            Core(
                timeseries_panel(
                    "Burn rate by window",
                    f"How fast each window spends the error budget. {burn} The page alert needs {page_factor}x or more "
                    f"(red line) on both of a pair of windows, the ticket {ticket_factor}x (yellow line).",
                    tuple(
                        Query(
                            f"{slo_mod.ratio_record(w)}{{{SEL}}} / on (service, slo) "
                            f"(1 - {slo_mod.OBJECTIVE_RECORD}{{{SEL}}})",
                            "{{service}} " + slo_mod.ratio_record(w)[-3:],
                        )
                        for w in windows
                    ),
                    "none",
                    thresholds=Thresholds("green", (Step(ticket_factor, "yellow"), Step(page_factor, "red"))),
                    links=runbooks(page.name, ticket.name),
                    width=24,
                )
            ),
            Core(
                timeseries_panel(
                    "SLI error ratio (short windows)",
                    f"Failed share of requests over the short windows; the yellow line is the budget ({budget:.2%}, "
                    f"burn rate 1), the red line the page threshold ({page_factor}x the budget).",
                    tuple(
                        Query(f"{slo_mod.ratio_record(w)}{{{SEL}}}", "{{service}} " + slo_mod.ratio_record(w)[-3:])
                        for w in windows[:3]
                    ),
                    "percentunit",
                    thresholds=above(round(page_factor * budget, 10), warning=budget),
                )
            ),
            timeseries_panel(
                "Burn-rate alerts",
                "Burn-rate alerts pending or firing (1 while active); the alerting dashboard follows their delivery.",
                (Query(f'ALERTS{{alertname=~"ErrorBudgetBurn.*",{SEL}}}', "{{alertname}} {{service}} {{alertstate}}"),),
                "none",
                links=[*runbooks(page.name, ticket.name), to_dashboard(ALERTING_UID, "Alerting pipeline")],
            ),
        ),
        links=header_runbooks(SLO_UID),
    )


def movie() -> Board:
    grpc = [s.name for s in catalog.SERVICES if s.protocol is Protocol.GRPC]
    sel = f'job="services",service=~"{"|".join(grpc)}"'
    t = THRESHOLDS
    return board(
        MOVIE_UID,
        "Firedrill — movie app (gRPC)",
        "movie fans out to metadata and rating (and auth); server and client side of every call.",
        (
            timeseries_panel(
                "Server calls by method and code",
                "gRPC calls each server handled per second, by method and status code.",
                (
                    Query(
                        f"sum by (service, grpc_method, grpc_code) (rate(grpc_server_handled_total{{{sel}}}"
                        "[$__rate_interval]))",
                        "{{service}} {{grpc_method}} {{grpc_code}}",
                    ),
                ),
                "reqps",
            ),
            timeseries_panel(
                "Server p95 by method",
                f"95th percentile handling time per method; above {t.latency_p95_s}s is HighLatencyP95. Exemplar "
                "dots open the trace in Jaeger.",
                (
                    Query(
                        "histogram_quantile(0.95, sum by (service, grpc_method, le) "
                        f"(rate(grpc_server_handling_seconds_bucket{{{sel}}}[$__rate_interval])))",
                        "{{service}} {{grpc_method}}",
                    ),
                ),
                "s",
                thresholds=above(t.latency_p95_s),
                links=runbooks("HighLatencyP95"),
            ),
            timeseries_panel(
                "Client calls (movie → upstreams)",
                "Calls movie makes to metadata, rating and auth, by status: DeadlineExceeded or Unavailable here "
                "while movie still answers means it degraded gracefully.",
                (
                    Query(
                        "sum by (service, grpc_service, grpc_method, grpc_code) "
                        f"(rate(grpc_client_handled_total{{{sel}}}[$__rate_interval]))",
                        "{{service}}→{{grpc_service}}.{{grpc_method}} {{grpc_code}}",
                    ),
                ),
                "reqps",
            ),
            timeseries_panel(
                "Client p95 (movie → upstreams)",
                "95th percentile time movie waits for each upstream, deadline included.",
                (
                    Query(
                        "histogram_quantile(0.95, sum by (service, grpc_service, le) "
                        f"(rate(grpc_client_handling_seconds_bucket{{{sel}}}[$__rate_interval])))",
                        "{{service}}→{{grpc_service}}",
                    ),
                ),
                "s",
                thresholds=above(t.latency_p95_s),
            ),
            timeseries_panel(
                "Error ratio (server faults)",
                f"Share of gRPC calls that failed on the server side; above {t.error_ratio:.0%} is HighErrorRatio.",
                (Query(f'{rec.GRPC_ERROR_RATIO}{{service=~"{"|".join(grpc)}"}}', "{{service}}"),),
                "percentunit",
                thresholds=above(t.error_ratio),
                links=runbooks("HighErrorRatio"),
            ),
            Core(
                stat_panel(
                    "Scrape health",
                    "Whether Prometheus scrapes each gRPC service's ops port.",
                    (Query(f"max by (service) (up{{{sel}}})", "{{service}}"),),
                    "none",
                    below(1),
                    mappings=states("DOWN", "UP"),
                    links=runbooks("ServiceDown"),
                )
            ),
        ),
        links=[to_dashboard(OVERVIEW_UID, "Services overview")],
        service_filter=False,
    )


def platform() -> Board:
    expiry = certificate_expiry_limit_s(PRODUCTION)
    return board(
        PLATFORM_UID,
        "Firedrill — platform",
        "Scrape health, Vault and certificates, and Prometheus' own rule evaluation. Alert delivery is on the "
        "alerting dashboard, the Nomad, Consul and Vault servers on the cluster dashboard.",
        (
            Core(
                timeseries_panel(
                    "Targets up by job",
                    "Targets Prometheus scrapes successfully, against all it knows, per scrape job.",
                    (Query("sum by (job) (up)", "{{job}} up"), Query("count by (job) (up)", "{{job}} total")),
                    "none",
                )
            ),
            Core(
                stat_panel(
                    "Vault reachable",
                    "Whether the component that renders each service's secrets last reached Vault; UNREACHABLE for "
                    "the profile's `for` is VaultUnreachable (services run on cached secrets meanwhile).",
                    (Query(f"min by (service) (vault_reachable{{{SEL}}})", "{{service}}"),),
                    "none",
                    below(1),
                    mappings=states("UNREACHABLE", "REACHABLE"),
                    links=runbooks("VaultUnreachable"),
                )
            ),
            Core(
                stat_panel(
                    "Registry reachable",
                    "Whether each service's last call to the service registry (Consul, or the local file registry) "
                    "succeeded; every service UNREACHABLE for the profile's `for` is RegistryDown, some is "
                    "RegistryUnreachable (callers keep the instances the registry last named meanwhile).",
                    (Query(f'min by (service) (discovery_registry_reachable{{job="services",{SEL}}})', "{{service}}"),),
                    "none",
                    below(1),
                    mappings=states("UNREACHABLE", "REACHABLE"),
                    links=runbooks("RegistryDown"),
                )
            ),
            Core(
                stat_panel(
                    "TLS certificate expires in",
                    "Time until the certificate each service serves expires. Red below the production "
                    "CertificateExpiringSoon limit (renewal has been failing); a drill's 15-minute certificates "
                    "always read red here, their own alert limit is the drill profile's.",
                    (Query(f'min by (service) (tls_cert_expiry_seconds{{job="services",{SEL}}})', "{{service}}"),),
                    "s",
                    below(expiry, healthy_from=2 * expiry),
                    links=runbooks("CertificateExpiringSoon"),
                )
            ),
            Core(
                timeseries_panel(
                    "Rule evaluation duration",
                    "Time each rule group's last evaluation took; near the evaluation interval, alerts come late.",
                    (Query("max by (rule_group) (prometheus_rule_group_last_duration_seconds)", "{{rule_group}}"),),
                    "s",
                )
            ),
            Core(
                timeseries_panel(
                    "Scrape duration",
                    "How long each service's /metrics scrape takes; close to the scrape timeout means lost samples.",
                    (Query(f'max by (service) (scrape_duration_seconds{{job="services",{SEL}}})', "{{service}}"),),
                    "s",
                )
            ),
        ),
        links=[
            *header_runbooks(PLATFORM_UID),
            to_dashboard(ALERTING_UID, "Alerting pipeline"),
        ],
    )


def dashboards() -> tuple[Board, ...]:
    return (overview(), slo(), movie(), platform(), alerting(), cluster())


def dashboard_files(directory: Path = DASHBOARDS_DIR) -> dict[Path, str]:
    return {directory / f"{d.uid}.json": d.render() for d in dashboards()}


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
