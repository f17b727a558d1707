"""The alerting-pipeline dashboard: rules firing → Prometheus sends → Alertmanager notifies → incidents stores.

Every stage's metrics exist on the local platform (Prometheus' and Alertmanager's own, the incident
receiver's from services/incidents/metrics.py), so its queries are checked live like the others.
"""

from __future__ import annotations

from .alerts import ALERTING_UID, OVERVIEW_UID, PLATFORM_UID
from .dashboard_links import header_runbooks, runbooks
from .grafana_kit import (
    Board,
    Core,
    Query,
    above,
    below,
    board,
    informational,
    link,
    nonzero,
    stat_panel,
    states,
    table_panel,
    timeseries_panel,
    to_dashboard,
)
from .settings import LINKS

RATE = "[$__rate_interval]"
RECEIVER = 'job="services",service="incidents"'


def alerting() -> Board:
    runbook_of_row = link(
        "Runbook of ${__data.fields.alertname}",
        f"{LINKS.runbook_base_url}/${{__data.fields.alertname}}.md",
        new_tab=True,
    )
    return board(
        ALERTING_UID,
        "Firedrill — alerting pipeline",
        "Whether alerts reach people and the incident log: rules firing, Prometheus sending to Alertmanager, "
        "Alertmanager's notifications, and the incident receiver storing them.",
        (
            Core(
                stat_panel(
                    "Alerts firing",
                    "Alerts firing now across all rules; anything above 0 is someone's problem.",
                    (Query('count(ALERTS{alertstate="firing"}) or vector(0)'),),
                    "none",
                    above(1),
                    width=6,
                )
            ),
            Core(
                stat_panel(
                    "Alertmanagers discovered",
                    "Alertmanagers Prometheus knows to send to: 0 means alerts fire into the void.",
                    (Query("max(prometheus_notifications_alertmanagers_discovered)"),),
                    "none",
                    below(1),
                    links=runbooks("IncidentReceiverUnreachable"),
                    width=6,
                )
            ),
            Core(
                stat_panel(
                    "Incident receiver",
                    "Whether Prometheus scrapes the incident receiver; DOWN is IncidentReceiverUnreachable.",
                    (Query(f"max(up{{{RECEIVER}}})"),),
                    "none",
                    below(1),
                    mappings=states("DOWN", "UP"),
                    links=runbooks("IncidentReceiverUnreachable"),
                    width=6,
                )
            ),
            Core(
                stat_panel(
                    "Incidents open",
                    "Incidents the receiver holds as firing now (opened by a firing alert, closed by its resolution).",
                    (Query(f"max(incidents_open{{{RECEIVER}}})"),),
                    "none",
                    informational(),
                    width=6,
                )
            ),
            table_panel(
                "Alerts pending and firing",
                "Every alert that is pending (condition true, waiting out `for`) or firing, with its labels. "
                "Click an alert name for its runbook.",
                (Query("ALERTS"),),
                field_links=[runbook_of_row],
            ),
            Core(
                timeseries_panel(
                    "Prometheus → Alertmanager",
                    "Alerts Prometheus sent to Alertmanager per second, and the sends that failed or were dropped "
                    "(a full queue); errors here mean alerts never reach routing.",
                    (
                        Query(f"sum(rate(prometheus_notifications_sent_total{RATE}))", "sent"),
                        Query(f"sum(rate(prometheus_notifications_errors_total{RATE}))", "errors"),
                        Query(f"sum(rate(prometheus_notifications_dropped_total{RATE}))", "dropped"),
                    ),
                    "ops",
                )
            ),
            Core(
                timeseries_panel(
                    "Alertmanager alerts by state",
                    "Alerts Alertmanager holds: active ones are routed, suppressed ones are silenced or inhibited "
                    "(a dependency's alert hides its dependents' symptoms).",
                    (Query("sum by (state) (alertmanager_alerts)", "{{state}}"),),
                    "none",
                )
            ),
            Core(
                timeseries_panel(
                    "Notifications sent and failed",
                    "Notifications Alertmanager attempted per second by integration, and the failed ones; failed "
                    "webhook notifications are IncidentReceiverUnreachable.",
                    (
                        Query(
                            f"sum by (integration) (rate(alertmanager_notifications_total{RATE}))",
                            "{{integration}} sent",
                        ),
                        Query(
                            f"sum by (integration) (rate(alertmanager_notifications_failed_total{RATE}))",
                            "{{integration}} failed",
                        ),
                    ),
                    "ops",
                    links=runbooks("IncidentReceiverUnreachable"),
                )
            ),
            Core(
                timeseries_panel(
                    "Notification latency (p95)",
                    "95th percentile time Alertmanager took to deliver a notification, per integration.",
                    (
                        Query(
                            "histogram_quantile(0.95, sum by (integration, le) "
                            f"(rate(alertmanager_notification_latency_seconds_bucket{RATE})))",
                            "{{integration}}",
                        ),
                    ),
                    "s",
                )
            ),
            Core(
                timeseries_panel(
                    "Incident receiver ingest",
                    "Notifications the receiver committed per second by status (firing, resolved), and the alerts it "
                    "dropped as repeats of what it already stored.",
                    (
                        Query(
                            f"sum by (status) (rate(incidents_notifications_total{{{RECEIVER}}}{RATE}))", "{{status}}"
                        ),
                        Query(f"sum(rate(incidents_alerts_deduplicated_total{{{RECEIVER}}}{RATE}))", "deduplicated"),
                        Query(f"sum(rate(incidents_created_total{{{RECEIVER}}}{RATE}))", "incidents opened"),
                    ),
                    "ops",
                )
            ),
            Core(
                timeseries_panel(
                    "Incident receiver errors",
                    "Webhook bodies refused as invalid, the receiver's HTTP 5xx answers, and enrichment that failed or "
                    "was dropped; anything above 0 means incidents are missing or incomplete.",
                    (
                        Query(f"sum(rate(incidents_notifications_rejected_total{{{RECEIVER}}}{RATE}))", "rejected"),
                        Query(
                            f'sum(rate(http_requests_total{{{RECEIVER},status=~"5.."}}{RATE})) or vector(0)', "http 5xx"
                        ),
                        Query(
                            f'sum by (outcome) (rate(incidents_enrichment_total{{{RECEIVER},outcome=~"failed|dropped"}}'
                            f"{RATE}))",
                            "enrichment {{outcome}}",
                        ),
                    ),
                    "ops",
                    thresholds=nonzero(),
                    links=runbooks("IncidentReceiverUnreachable"),
                )
            ),
            Core(
                timeseries_panel(
                    "Receiver backlog",
                    "Incidents waiting for enrichment and incidents whose exported JSON file is behind the store.",
                    (
                        Query(f"max(incidents_enrichment_queue_depth{{{RECEIVER}}})", "enrichment queue"),
                        Query(f"max(incidents_export_pending{{{RECEIVER}}})", "export pending"),
                    ),
                    "none",
                )
            ),
        ),
        links=[
            *header_runbooks(ALERTING_UID),
            to_dashboard(OVERVIEW_UID, "Services overview"),
            to_dashboard(PLATFORM_UID, "Platform"),
        ],
        service_filter=False,
    )
