"""Firedrill's panel conventions on top of grafana-foundation-sdk (Grafana's own typed builders).

The SDK is the dashboard model; this module only fixes what every Firedrill panel shares: the
Prometheus datasource, exemplars on time series (the datasource links their ``trace_id`` to
Jaeger), a description on every panel, thresholds and value mappings, links to runbooks and to the
other dashboards, and the firing-alert annotation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig, ReduceDataOptions, VizLegendOptions
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prometheus_model
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    GraphThresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
)

PROMETHEUS_UID = "prometheus"
JAEGER_UID = "jaeger"
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
TAG = "firedrill"
GREEN, YELLOW, ORANGE, RED, BLUE = "green", "yellow", "orange", "red", "blue"

PanelBuilder = cogbuilder.Builder[model.Panel]


@dataclass(frozen=True, slots=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    """From ``value`` upwards the field is ``color`` (until the next step)."""

    value: float
    color: str


@dataclass(frozen=True, slots=True)
class Thresholds:
    base: str
    steps: tuple[Step, ...] = ()

    def builder(self) -> dash.ThresholdsConfig:
        steps = [model.Threshold(value=None, color=self.base)]
        steps += [model.Threshold(value=s.value, color=s.color) for s in self.steps]
        return dash.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps)


def above(limit: float, *, warning: float | None = None) -> Thresholds:
    """Green, (yellow from ``warning``,) red from ``limit``: a symptom with an alert threshold."""
    steps = (Step(warning, YELLOW),) if warning is not None else ()
    return Thresholds(GREEN, (*steps, Step(limit, RED)))


def below(limit: float, *, healthy_from: float | None = None) -> Thresholds:
    """Red under ``limit`` (yellow from ``limit`` to ``healthy_from``), green above: a health gauge."""
    if healthy_from is None:
        return Thresholds(RED, (Step(limit, GREEN),))
    return Thresholds(RED, (Step(limit, YELLOW), Step(healthy_from, GREEN)))


def nonzero() -> Thresholds:
    """Red as soon as anything is counted: for series that are errors and nothing else."""
    return Thresholds(GREEN, (Step(1e-9, RED),))


def informational() -> Thresholds:
    """A value that is neither good nor bad (an objective, a count of things)."""
    return Thresholds(BLUE)


def states(down: str, up: str) -> list[model.ValueMapping]:
    """0/1 health gauges read as words: ``0`` in red, ``1`` in green; no series reads as "no data"."""
    return [
        model.ValueMap(
            options={
                "0": model.ValueMappingResult(text=down, color=RED, index=0),
                "1": model.ValueMappingResult(text=up, color=GREEN, index=1),
            }
        ),
        no_data(),
    ]


def no_data(text: str = "no data") -> model.SpecialValueMap:
    return model.SpecialValueMap(
        options=model.DashboardSpecialValueMapOptions(
            match=model.SpecialValueMatch.NULL_AND_NAN, result=model.ValueMappingResult(text=text, index=2)
        )
    )


def link(title: str, url: str, *, new_tab: bool = False, keep_vars: bool = False) -> dash.DashboardLink:
    out = dash.DashboardLink(title).type(model.DashboardLinkType.LINK).url(url).target_blank(new_tab)
    return out.include_vars(keep_vars).keep_time(not new_tab)


def to_dashboard(uid: str, title: str) -> dash.DashboardLink:
    """A link to another generated dashboard, relative so it works on any Grafana host."""
    return link(title, f"/d/{uid}", keep_vars=True)


def _targets(queries: Sequence[Query], exemplar: bool) -> list[cogbuilder.Builder[Any]]:
    return [
        prometheus.Dataquery()
        .ref_id(chr(ord("A") + n))
        .datasource(PROMETHEUS)
        .expr(q.expr)
        .legend_format(q.legend)
        .exemplar(exemplar)
        for n, q in enumerate(queries)
    ]


def timeseries_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    unit: str,
    *,
    thresholds: Thresholds | None = None,
    links: Sequence[dash.DashboardLink] = (),
    width: int = 12,
    height: int = 8,
) -> timeseries.Panel:
    """A time series; with thresholds, the alert limit is drawn as a dashed line across it."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(_targets(queries, exemplar=True))
        .unit(unit)
        .span(width)
        .height(height)
        .legend(
            VizLegendOptions().show_legend(True).display_mode(LegendDisplayMode.LIST).placement(LegendPlacement.BOTTOM)
        )
        .thresholds((thresholds or informational()).builder())
        .links(list(links))
    )
    if thresholds is not None and thresholds.steps:
        panel = panel.thresholds_style(GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED))
    return panel


def stat_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    unit: str,
    thresholds: Thresholds,
    *,
    mappings: Sequence[model.ValueMapping] = (),
    links: Sequence[dash.DashboardLink] = (),
    width: int = 12,
    height: int = 5,
) -> stat.Panel:
    """One coloured number per series, read from its last value; red and green come from thresholds."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(_targets(queries, exemplar=False))
        .unit(unit)
        .span(width)
        .height(height)
        .thresholds(thresholds.builder())
        .mappings([*mappings] or [no_data()])
        .color_mode(BigValueColorMode.BACKGROUND)
        .graph_mode(BigValueGraphMode.NONE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .links(list(links))
    )


def table_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    field_links: Sequence[dash.DashboardLink] = (),
    mappings: Sequence[model.ValueMapping] = (),
    links: Sequence[dash.DashboardLink] = (),
    width: int = 24,
    height: int = 8,
) -> table.Panel:
    """The current series of instant queries as rows, one column per label."""
    targets: list[cogbuilder.Builder[Any]] = [
        prometheus.Dataquery()
        .ref_id(chr(ord("A") + n))
        .datasource(PROMETHEUS)
        .expr(q.expr)
        .legend_format(q.legend)
        .instant()
        .format(prometheus_model.PromQueryFormat.TABLE)
        for n, q in enumerate(queries)
    ]
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(targets)
        .span(width)
        .height(height)
        .thresholds(informational().builder())
        .mappings(list(mappings))
        .data_links(list(field_links))
        .links(list(links))
    )


class PrometheusAnnotation(model.AnnotationQuery):
    """A Prometheus annotation query with the fields Grafana's Prometheus datasource reads.

    The SDK's AnnotationQuery has ``expr`` but not ``titleFormat``, ``textFormat`` and ``tagKeys``,
    which the Prometheus datasource reads from the annotation itself to label each event.
    """

    def __init__(
        self, name: str, expr: str, *, title_format: str, text_format: str, tag_keys: str, color: str = RED
    ) -> None:
        super().__init__(name=name, datasource=PROMETHEUS, enable=True, icon_color=color, expr=expr)
        self.title_format = title_format
        self.text_format = text_format
        self.tag_keys = tag_keys

    def to_json(self) -> dict[str, object]:
        out = super().to_json()
        out.update(titleFormat=self.title_format, textFormat=self.text_format, tagKeys=self.tag_keys)
        return out


# Keys PrometheusAnnotation adds beyond the SDK's model (the model-conformance test allows these).
ANNOTATION_EXTENSIONS = ("titleFormat", "textFormat", "tagKeys")


@dataclass(frozen=True, slots=True)
class _Built(cogbuilder.Builder[model.AnnotationQuery]):
    annotation: model.AnnotationQuery

    def build(self) -> model.AnnotationQuery:
        return self.annotation


def prometheus_annotation(
    name: str, expr: str, *, title_format: str, text_format: str, tag_keys: str, color: str
) -> cogbuilder.Builder[model.AnnotationQuery]:
    """Every point where ``expr`` has a value is an event on the dashboard's time series."""
    return _Built(
        PrometheusAnnotation(
            name, expr, title_format=title_format, text_format=text_format, tag_keys=tag_keys, color=color
        )
    )


def firing_alerts(selector: str = "") -> cogbuilder.Builder[model.AnnotationQuery]:
    """Every firing alert as a red region on every time series of the dashboard."""
    matchers = ",".join(m for m in ('alertstate="firing"', selector) if m)
    return _Built(
        PrometheusAnnotation(
            "firing alerts",
            f"ALERTS{{{matchers}}}",
            title_format="{{alertname}}",
            text_format="{{service}} ({{severity}})",
            tag_keys="alertname,service,severity",
        )
    )


def service_variable() -> dash.QueryVariable:
    query = 'label_values(up{job="services"}, service)'
    return (
        dash.QueryVariable("service")
        .label("service")
        .datasource(PROMETHEUS)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True)
        .multi(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )


@dataclass(frozen=True, slots=True)
class Core:
    """A panel that must show data on a running local platform once it has had some traffic."""

    panel: PanelBuilder


@dataclass(slots=True)
class Board:
    """One generated dashboard: the SDK model plus what the tests need to know about it."""

    definition: model.Dashboard
    core: frozenset[str] = field(default_factory=frozenset)
    # False when its series exist only on a cluster (checked by name instead of against Prometheus).
    live: bool = True

    @property
    def uid(self) -> str:
        assert self.definition.uid is not None
        return self.definition.uid

    def panels(self) -> list[model.Panel]:
        return [p for p in self.definition.panels or [] if isinstance(p, model.Panel)]

    def queries(self) -> Iterator[tuple[str, str]]:
        """(panel title, PromQL) for every query of every panel."""
        for panel in self.panels():
            for target in panel.targets or []:
                expr = getattr(target, "expr", None)
                if isinstance(expr, str):
                    yield panel.title or "", expr

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(json.dumps(self.definition, cls=JSONEncoder))
        return document

    def render(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"


def board(
    uid: str,
    title: str,
    description: str,
    panels: Sequence[PanelBuilder | Core],
    *,
    links: Sequence[dash.DashboardLink] = (),
    service_filter: bool = True,
    live: bool = True,
    annotations: Sequence[cogbuilder.Builder[model.AnnotationQuery]] = (),
) -> Board:
    """A dashboard: panels laid out left to right in the order given, ids from 1.

    Every dashboard links to the others (the ``firedrill`` tag) and shows firing alerts as
    annotations; with ``service_filter`` it has the ``$service`` variable and the annotation follows it.
    """
    builder = (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .readonly()
        .refresh("10s")
        .time("now-30m", "now")
        .timezone("browser")
        .version(1)
        .annotation(firing_alerts('service=~"$service"' if service_filter else ""))
        .link(
            dash.DashboardLink("Firedrill dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(service_filter)
            .keep_time(True)
        )
    )
    for annotation in annotations:
        builder = builder.annotation(annotation)
    for extra in links:
        builder = builder.link(extra)
    if service_filter:
        builder = builder.with_variable(service_variable())
    core: set[str] = set()
    for number, item in enumerate(panels, start=1):
        panel = item.panel if isinstance(item, Core) else item
        built = panel.build()
        built.id_val = number
        if isinstance(item, Core):
            core.add(built.title or "")
        builder = builder.with_panel(_Ready(built))
    return Board(builder.build(), frozenset(core), live)


@dataclass(frozen=True, slots=True)
class _Ready(cogbuilder.Builder[model.Panel]):
    panel: model.Panel

    def build(self) -> model.Panel:
        return self.panel
