"""The drill catalogue: every experiment in scripts/drills/experiments and what it expects.

An experiment states its expectations in a ``firedrill`` extension (Chaos Toolkit keeps
``extensions`` for tools like this one):

    {"name": "firedrill", "breaks": "response", "expected_alerts": ["HighLatencyP95{service=response}"],
     "tolerated_alerts": ["HighLatencyP95{service=hello}"], "expects_incident": true,
     "max_failed_requests": 0}

``incident_alert`` (optional) names the alert whose incident counts when the fault fires other alerts
for the same service too; every alert may still open at most one incident (a storm is one incident).

``{service}`` in a label stands for the service the drill breaks (``--service``). An alert that
fires and is neither expected nor tolerated is a false alert and fails the drill.

``inhibited_alerts`` are symptoms Alertmanager must hold back (an inhibit rule, while their cause
fires): Prometheus still shows them firing, and they pass when Alertmanager never held them as
active, i.e. never notified anyone (scripts.drills.inhibition); one that did notify is a false alert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslib.configuration import load_configuration

from services.common import catalog

EXPERIMENTS = Path(__file__).resolve().parent / "experiments"
# The slow-burn SLO ticket outlives every drill that spent budget by its long window: by design.
ALWAYS_TOLERATED = ("ErrorBudgetBurnTicket{service=*}",)


@dataclass(frozen=True, slots=True)
class DrillSpec:
    name: str
    title: str
    description: str
    breaks: str  # the service the drill breaks by default
    expected_alerts: tuple[str, ...]
    tolerated_alerts: tuple[str, ...]
    tolerate_dependents: bool  # every alert of the broken service's callers is a symptom
    expects_incident: bool
    max_failed_requests: int | None  # None: users may see failures (an outage)
    experiment: dict[str, Any]
    # The culprit the traces must name: {"service": ..., "operation": ...} (scripts.drills.trace_findings).
    expected_trace_finding: dict[str, str] | None = None
    # The alert whose incident the drill judges, when the fault also fires symptoms of the same
    # service (each of which may open one incident of its own, never more); None: any alert's.
    incident_alert: str | None = None
    # Drills that deploy a version (scripts.canary): "promoted" or "rolled_back".
    expected_rollout: str | None = None
    inhibited_alerts: tuple[str, ...] = ()  # may fire in Prometheus; Alertmanager must not notify them

    def expected_for(self, service: str) -> list[str]:
        return [label.replace("{service}", service) for label in self.expected_alerts]

    def inhibited_for(self, service: str) -> list[str]:
        return [label.replace("{service}", service) for label in self.inhibited_alerts]

    def tolerated_for(self, service: str) -> list[str]:
        tolerated = [label.replace("{service}", service) for label in (*self.tolerated_alerts, *ALWAYS_TOLERATED)]
        if self.tolerate_dependents:
            tolerated += [f"*{{service={s.name}}}" for s in catalog.SERVICES if service in s.depends_on]
        return tolerated


def alert_label(alertname: str, service: str) -> str:
    return f"{alertname}{{service={service}}}"


def matches(label: str, pattern: str) -> bool:
    """``pattern`` is a label where ``*`` stands for any alert name or any service."""
    name, _, service = label.partition("{service=")
    want_name, _, want_service = pattern.partition("{service=")
    return want_name in ("*", name) and want_service in ("*}", service)


def names() -> list[str]:
    """The drills in the order simulate-all runs them (the ``order`` of each extension, then name)."""
    specs = [load(path.stem) for path in EXPERIMENTS.glob("*.json")]
    return [spec.name for spec in sorted(specs, key=lambda s: (_order(s.experiment), s.name))]


def _extension(experiment: dict[str, Any]) -> dict[str, Any]:
    for extension in experiment.get("extensions", []):
        if extension.get("name") == "firedrill":
            return dict(extension)
    raise ValueError(f"experiment {experiment.get('title')!r} has no firedrill extension")


def _order(experiment: dict[str, Any]) -> int:
    return int(_extension(experiment).get("order", 100))


def load(name: str) -> DrillSpec:
    path = EXPERIMENTS / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in EXPERIMENTS.glob("*.json")))
        raise SystemExit(f"unknown drill {name!r}; known drills: {known}")
    experiment = json.loads(path.read_text())
    extension = _extension(experiment)
    return DrillSpec(
        name=name,
        title=str(experiment["title"]),
        description=str(experiment.get("description", "")),
        breaks=str(extension["breaks"]),
        expected_alerts=tuple(extension.get("expected_alerts", ())),
        tolerated_alerts=tuple(extension.get("tolerated_alerts", ())),
        tolerate_dependents=bool(extension.get("tolerate_dependents", False)),
        expects_incident=bool(extension.get("expects_incident", True)),
        max_failed_requests=extension.get("max_failed_requests"),
        experiment=experiment,
        expected_trace_finding=_trace_finding(extension.get("expected_trace_finding")),
        incident_alert=extension.get("incident_alert"),
        expected_rollout=extension.get("expected_rollout"),
        inhibited_alerts=tuple(extension.get("inhibited_alerts", ())),
    )


def _trace_finding(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not {"service", "operation"} <= set(value):
        raise ValueError(f"expected_trace_finding must name a service and an operation, got {value!r}")
    return {str(key): str(item) for key, item in value.items()}


def _activity(activity: dict[str, Any]) -> str:
    provider = activity.get("provider", {})
    arguments = ", ".join(f"{k}={v}" for k, v in provider.get("arguments", {}).items())
    return f"{activity.get('type', '?')} {activity['name']}: {provider.get('func', '?')}({arguments})"


def describe(spec: DrillSpec, service: str) -> str:
    """What the drill would do, for --dry-run: nothing is called."""
    experiment = spec.experiment
    hypothesis = experiment.get("steady-state-hypothesis", {})
    lines = [
        f"Drill {spec.name} on {service}: {spec.title}",
        f"  {spec.description}",
        f"  steady state before and after ({hypothesis.get('title', '')}):",
        *(f"    - {_activity(p)} (tolerance {json.dumps(p.get('tolerance'))})" for p in hypothesis.get("probes", [])),
        "  method:",
        *(f"    {i}. {_activity(a)}" for i, a in enumerate(experiment.get("method", []), 1)),
        "  rollbacks (always run, also after a failure or Ctrl-C):",
        *(f"    - {_activity(a)}" for a in experiment.get("rollbacks", [])),
        f"  expected alerts: {', '.join(spec.expected_for(service)) or 'none (their absence is the expectation)'}",
        f"  tolerated alerts: {', '.join(spec.tolerated_for(service))}",
        *(
            [f"  inhibited (fire in Prometheus, never notify): {', '.join(spec.inhibited_for(service))}"]
            if spec.inhibited_alerts
            else []
        ),
        f"  incident expected for {service}: {'yes' if spec.expects_incident else 'no'}"
        + (f" (of {spec.incident_alert})" if spec.incident_alert else ""),
        "  failed user requests allowed: "
        + ("any (users see the fault)" if spec.max_failed_requests is None else str(spec.max_failed_requests)),
        *([f"  expected rollout outcome: {spec.expected_rollout}"] if spec.expected_rollout else []),
    ]
    if spec.expected_trace_finding is not None:
        finding = spec.expected_trace_finding
        lines.append(
            f"  the traces must name the culprit: {finding['service']} {finding['operation']}"
            " (a failing span under an edge that answered well)"
        )
    text = "\n".join(lines)
    configuration = load_configuration(experiment.get("configuration", {}), {"service": service})
    for key, value in {**configuration, "service": service}.items():
        text = text.replace(f"${{{key}}}", str(value))
    return text
