"""A small typed model of the Grafana dashboard JSON we generate (panels, targets, variables)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROMETHEUS_UID = "prometheus"
JAEGER_UID = "jaeger"
PROMETHEUS_DS = {"type": "prometheus", "uid": PROMETHEUS_UID}


@dataclass(frozen=True, slots=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"  # or "stat", "table"
    width: int = 12
    height: int = 8
    # Core panels must return data on a running local platform with some traffic.
    core: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]
    description: str = ""
    service_variable: bool = True
    tags: tuple[str, ...] = field(default=("firedrill",))

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "editable": False,
            "schemaVersion": 38,
            "version": 1,
            "refresh": "10s",
            "time": {"from": "now-30m", "to": "now"},
            "timezone": "browser",
            "templating": {"list": [_service_variable()] if self.service_variable else []},
            "annotations": {"list": [_alert_annotations()]},
            "panels": _layout(self.panels),
        }


def _service_variable() -> dict[str, Any]:
    query = 'label_values(up{job="services"}, service)'
    return {
        "name": "service",
        "label": "service",
        "type": "query",
        "datasource": PROMETHEUS_DS,
        "definition": query,
        "query": {"query": query, "refId": "service"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def _alert_annotations() -> dict[str, Any]:
    return {
        "name": "firing alerts",
        "datasource": PROMETHEUS_DS,
        "enable": True,
        "expr": 'ALERTS{alertstate="firing"}',
        "iconColor": "red",
        "titleFormat": "{{ alertname }}",
        "textFormat": "{{ service }}",
        "step": "30s",
    }


def _layout(panels: tuple[Panel, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    x = y = row_height = 0
    for number, panel in enumerate(panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        out.append(
            {
                "id": number,
                "type": panel.kind,
                "title": panel.title,
                "description": panel.description,
                "datasource": PROMETHEUS_DS,
                "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
                if panel.kind == "timeseries"
                else {},
                "targets": [
                    {
                        "refId": chr(ord("A") + i),
                        "datasource": PROMETHEUS_DS,
                        "expr": q.expr,
                        "legendFormat": q.legend,
                        "exemplar": panel.kind == "timeseries",
                    }
                    for i, q in enumerate(panel.queries)
                ],
            }
        )
        x += panel.width
        row_height = max(row_height, panel.height)
    return out
