"""Build Alertmanager webhook bodies (version "4"): for the operator CLI's test alert, tests and benches.

``group_notification`` mirrors what Alertmanager sends for one group: the group's whole current
alert set, the status "firing" while any alert fires, and the labels every alert shares.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from services.incidents.models import format_time

ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class AlertSpec:
    labels: Mapping[str, str]
    starts_at_ns: int
    ends_at_ns: int | None = None  # set: resolved at that time
    annotations: Mapping[str, str] = field(default_factory=dict)
    expr: str | None = None

    @property
    def fingerprint(self) -> str:
        canonical = "\xff".join(f"{k}\xfe{v}" for k, v in sorted(self.labels.items()))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def resolved(self) -> bool:
        return self.ends_at_ns is not None


def alert_body(alert: AlertSpec, prometheus: str = "http://prometheus:9090") -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "resolved" if alert.resolved else "firing",
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": format_time(alert.starts_at_ns),
        "endsAt": format_time(alert.ends_at_ns) if alert.ends_at_ns is not None else ZERO_TIME,
        "fingerprint": alert.fingerprint,
    }
    if alert.expr is not None:
        body["generatorURL"] = f"{prometheus}/graph?g0.expr={quote_plus(alert.expr)}&g0.tab=1"
    return body


def group_notification(
    alerts: Sequence[AlertSpec],
    *,
    group_by: Sequence[str] = ("alertname", "service"),
    receiver: str = "incidents",
    external_url: str = "http://alertmanager:9093",
) -> dict[str, Any]:
    first = alerts[0].labels
    group_labels = {name: first[name] for name in group_by if name in first}
    common_labels = {k: v for k, v in first.items() if all(a.labels.get(k) == v for a in alerts)}
    common_annotations = {
        k: v for k, v in alerts[0].annotations.items() if all(a.annotations.get(k) == v for a in alerts)
    }
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items())) + "}"
    return {
        "version": "4",
        "receiver": receiver,
        "status": "firing" if any(not a.resolved for a in alerts) else "resolved",
        "alerts": [alert_body(a) for a in alerts],
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common_annotations,
        "externalURL": external_url,
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }
