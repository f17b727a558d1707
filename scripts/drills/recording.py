"""Everything a drill report shows, gathered once after the drill and saved beside it.

The page is rendered from a ``Recording`` alone (``recording.json`` in the drill's folder), so a
report can be rendered again, tested, or screenshotted without the platform that produced it:

    python -m scripts.drills.page .firedrill/drills/<run>/recording.json -o report.html
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scripts.drills.jaeger_spans import JaegerError, jaeger_spans
from scripts.drills.report import DrillResult
from scripts.drills.trace_findings import FindingGroup, find_hidden, summarise
from scripts.drills.traces import Span, Trace, group_traces, pick_traces, read_spans
from scripts.promql import Prometheus, PrometheusError

RATE_WINDOW_S = 5
HIDDEN_SHOWN = 2  # culprits whose example trace the report draws


@dataclass(frozen=True, slots=True)
class ChartQuery:
    title: str
    expr: str
    unit: str  # "ratio" is drawn as a percentage; anything else is a plain number
    rate_window_s: float | None  # the window of the expression's rate(), which delays its curve


CHARTS = (
    ChartQuery(
        "Request rate through hello (req/s)",
        f'sum(rate(http_requests_total{{service="hello"}}[{RATE_WINDOW_S}s]))',
        "req/s",
        RATE_WINDOW_S,
    ),
    ChartQuery(
        "Error ratio at hello",
        f'(sum(rate(http_requests_total{{service="hello",status=~"5.."}}[{RATE_WINDOW_S}s])) or vector(0))'
        f' / sum(rate(http_requests_total{{service="hello"}}[{RATE_WINDOW_S}s]))',
        "ratio",
        RATE_WINDOW_S,
    ),
    ChartQuery(
        "p95 latency at hello (ms)",
        "1000 * histogram_quantile(0.95, sum by (le) "
        f'(rate(http_request_duration_seconds_bucket{{service="hello"}}[{RATE_WINDOW_S}s])))',
        "ms",
        RATE_WINDOW_S,
    ),
)


@dataclass(frozen=True, slots=True)
class Series:
    query: ChartQuery
    points: list[tuple[float, float]]  # (unix seconds, value); NaN where Prometheus had no value
    error: str | None = None  # why there are no points, when the query failed


@dataclass
class Recording:
    result: DrillResult
    window: tuple[float, float]
    series: list[Series]
    traces: list[Trace]
    jaeger_url: str | None = None
    notes: list[str] = field(default_factory=list)  # what could not be gathered, for the reader

    def to_json(self) -> dict[str, Any]:
        return {
            "result": asdict(self.result),
            "window": list(self.window),
            "series": [
                {"query": asdict(s.query), "points": [[t, _json_number(v)] for t, v in s.points], "error": s.error}
                for s in self.series
            ],
            "traces": [trace.to_json() for trace in self.traces],
            "jaeger_url": self.jaeger_url,
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recording:
        result = DrillResult(**{k: v for k, v in data["result"].items() if k != "passed"})
        series = [
            Series(ChartQuery(**item["query"]), [(float(t), _number(v)) for t, v in item["points"]], item.get("error"))
            for item in data["series"]
        ]
        start, end = data["window"]
        return cls(
            result=result,
            window=(float(start), float(end)),
            series=series,
            traces=[Trace.from_json(item) for item in data.get("traces", [])],
            jaeger_url=data.get("jaeger_url"),
            notes=list(data.get("notes", [])),
        )


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def load(path: Path) -> Recording:
    return Recording.from_json(json.loads(path.read_text()))


def query_series(prometheus: Prometheus, window: tuple[float, float], step_s: float = 1) -> list[Series]:
    start, end = window
    gathered = []
    for query in CHARTS:
        try:
            found = prometheus.range(query.expr, start, end, step_s)
        except PrometheusError as exc:
            gathered.append(Series(query, [], f"query failed: {exc}"))
            continue
        gathered.append(Series(query, found[0][1] if found else [], None if found else "no data"))
    return gathered


def with_hidden_examples(spans: list[Span], groups: list[FindingGroup], picked: list[Trace]) -> list[Trace]:
    """The first example trace of each of the first culprits found (shown first), then the picked ones."""
    grouped = group_traces(spans)
    examples = [group.example_trace_ids[0] for group in groups[:HIDDEN_SHOWN] if group.example_trace_ids]
    hidden = [Trace(trace_id, "hidden", tuple(grouped[trace_id])) for trace_id in examples if trace_id in grouped]
    shown = {trace.trace_id for trace in hidden}
    return hidden + [trace for trace in picked if trace.trace_id not in shown]


def collect(
    result: DrillResult,
    prometheus: Prometheus,
    window: tuple[float, float],
    traces_dir: Path | None,
    jaeger_url: str | None,
) -> Recording:
    """Query the charts' series, find what only the traces show and pick the traces worth showing.

    Never fails the drill; sets ``result.trace_findings`` (which a drill expecting a trace finding
    is judged on).
    """
    notes = []
    traces: list[Trace] = []
    spans: list[Span] | None = None
    if traces_dir is not None and traces_dir.is_dir():
        spans, source = list(read_spans(traces_dir, *window)), str(traces_dir)
    elif jaeger_url:
        source = f"Jaeger ({jaeger_url})"
        try:
            spans = jaeger_spans(jaeger_url, *window)
        except JaegerError as exc:
            notes.append(f"the traces could not be read from Jaeger: {exc}")
    else:
        notes.append("no span files and no Jaeger on this platform: traces are not shown")
    if spans is not None:
        exemplar = ((result.incident or {}).get("enrichment") or {}).get("exemplar_trace_id")
        groups = summarise(find_hidden(Trace(t, "hidden", tuple(m)) for t, m in group_traces(spans).items()))
        result.trace_findings = [group.to_json() for group in groups]
        traces = with_hidden_examples(spans, groups, pick_traces(spans, also=exemplar))
        if not traces:
            notes.append(f"no sampled trace in {source} during the drill")
    return Recording(result, window, query_series(prometheus, window), traces, jaeger_url, notes)
