"""The "Deployments" panels and annotations: a canary rollout's state, from the metrics its CLI exports.

The series are scripts/canary/metrics_observer.py's, scraped by the ``canary-rollout`` job while a
rollout runs; they carry the rolled-out service as their ``service`` label, so the overview's
``$service`` filter applies to them as to every other panel. Promotions and rollbacks are
annotations on the overview's time series, next to the error ratio and latency they were decided on.
"""

from __future__ import annotations

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as model

from .grafana_kit import (
    BLUE,
    GREEN,
    RED,
    YELLOW,
    PanelBuilder,
    Query,
    informational,
    no_data,
    prometheus_annotation,
    stat_panel,
    table_panel,
    timeseries_panel,
)

SEL = 'service=~"$service"'
# canary_status is one series per status (1 for the current one); the stat reads them as one code.
STATUS_CODES = (
    ("progressing", "PROGRESSING", BLUE),
    ("holding", "HOLDING", YELLOW),
    ("rolling_back", "ROLLING BACK", RED),
    ("promoted", "PROMOTED", GREEN),
    ("rolled_back", "ROLLED BACK", RED),
)


def status_code_expr() -> str:
    return "\n+ ".join(
        f'{code} * sum by (service) (canary_status{{status="{status}",{SEL}}})'
        for code, (status, _, _) in enumerate(STATUS_CODES)
    )


def status_mappings() -> list[model.ValueMapping]:
    return [
        model.ValueMap(
            options={
                str(code): model.ValueMappingResult(text=text, color=color, index=code)
                for code, (_, text, color) in enumerate(STATUS_CODES)
            }
        ),
        no_data("no rollout"),
    ]


def deployment_panels() -> tuple[PanelBuilder, ...]:
    return (
        stat_panel(
            "Rollout status",
            "The last canary rollout of each service: progressing, holding (a check failed within its limit, or "
            "had no data), rolling back, promoted, or rolled back. Reads 'no rollout' when none ran in the range.",
            (Query(status_code_expr(), "{{service}}"),),
            "none",
            informational(),
            mappings=status_mappings(),
            width=8,
        ),
        timeseries_panel(
            "Canary traffic weight and step",
            "Share of requests the canary version receives (percent) and the index of the rollout's traffic step; "
            "promotions and rollbacks are the annotations on every time series of this dashboard.",
            (
                Query(f"max by (service) (canary_weight_percent{{{SEL}}})", "{{service}} weight %"),
                Query(f"max by (service) (canary_step{{{SEL}}})", "{{service}} step"),
            ),
            "none",
            width=16,
            height=5,
        ),
        timeseries_panel(
            "Analysis checks by result",
            "How many times each analysis check (scripts/canary/templates) passed, failed or had no data, per "
            "rate interval: a failing check here is what held or rolled back the rollout.",
            (
                Query(
                    f"sum by (service, check, result) (increase(canary_analysis_checks_total{{{SEL}}}"
                    "[$__rate_interval]))",
                    "{{service}} {{check}} {{result}}",
                ),
            ),
            "none",
        ),
        table_panel(
            "Last analysis numbers",
            "What each check last judged: the canary's value, stable's and the limit (for z-score checks the "
            "limit is the z the canary may reach; their values are window means).",
            (Query(f"max by (service, check, role) (canary_check_value{{{SEL}}})", ""),),
            width=12,
        ),
    )


def deployment_annotations() -> tuple[cogbuilder.Builder[model.AnnotationQuery], ...]:
    """A marker per promoted step and per rollback, and per finished rollout."""
    return (
        prometheus_annotation(
            "canary decisions",
            f'sum by (service, decision) (increase(canary_decisions_total{{decision=~"promote|rollback",{SEL}}}'
            "[$__rate_interval])) > 0",
            title_format="canary {{decision}}",
            text_format="{{service}}",
            tag_keys="service,decision",
            color=BLUE,
        ),
        prometheus_annotation(
            "canary rollouts",
            f"sum by (service, outcome) (increase(canary_rollouts_total{{{SEL}}}[$__rate_interval])) > 0",
            title_format="rollout {{outcome}}",
            text_format="{{service}}",
            tag_keys="service,outcome",
            color=GREEN,
        ),
    )
