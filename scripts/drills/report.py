"""Turn what a drill recorded into numbers and a JSON result; the HTML page is ``scripts.drills.page``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scripts.traffic import TrafficResult
from services.common import catalog


@dataclass
class DrillResult:
    experiment: str
    service: str
    status: str  # completed, failed, interrupted, aborted
    deviated: bool
    moments: dict[str, float]
    time_to_alert_s: float | None
    time_to_incident_s: float | None
    time_to_recovery_s: float | None
    requests_sent: int
    requests_failed: int
    requests_failed_during_outage: int
    expected_alerts: list[str]
    symptom_alerts: list[str]
    unexpected_alerts: list[str]
    incidents_for_service: int
    incident: dict[str, Any] | None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return (
            self.status == "completed"
            and not self.deviated
            and not self.unexpected_alerts
            and self.incidents_for_service == 1
        )


def _between(moments: dict[str, float], start: str, end: str) -> float | None:
    if start in moments and end in moments:
        return round(moments[end] - moments[start], 2)
    return None


def failed_during(traffic: TrafficResult | None, start: float | None, end: float | None) -> int:
    if traffic is None or start is None:
        return 0
    stop = end if end is not None else float("inf")
    return sum(1 for when, ok in traffic.timeline if not ok and start <= when <= stop)


def classify_alerts(fired: set[tuple[str, str]], service: str) -> tuple[list[str], list[str], list[str]]:
    """Split alerts that fired into expected, symptoms of the outage downstream, and unexpected."""
    dependents = {spec.name for spec in catalog.SERVICES if service in spec.depends_on}
    expected, symptoms, unexpected = [], [], []
    for alertname, alert_service in sorted(fired):
        label = f"{alertname}{{service={alert_service}}}"
        if alertname == "ServiceDown" and alert_service == service:
            expected.append(label)
        elif alert_service in dependents:
            symptoms.append(label)  # inhibited by Alertmanager while the dependency is down
        else:
            unexpected.append(label)
    return expected, symptoms, unexpected


def alerts_seen(notes: dict[str, Any]) -> set[tuple[str, str]]:
    """Alerts the drill saw firing live (not ALERTS history, which a restarted Prometheus leaves stale)."""
    pairs = (key.split("|", 1) for key in notes.get("alerts_seen", {}))
    return {(name, service) for name, service in pairs}


def build_result(
    *,
    experiment: str,
    service: str,
    journal: dict[str, Any],
    moments: dict[str, float],
    notes: dict[str, Any],
    traffic: TrafficResult | None,
    incidents: list[dict[str, Any]],
) -> DrillResult:
    expected, symptoms, unexpected = classify_alerts(alerts_seen(notes), service)
    in_window = [i for i in incidents if i.get("id") == notes.get("incident_id")] or incidents
    return DrillResult(
        experiment=experiment,
        service=service,
        status=str(journal.get("status", "unknown")),
        deviated=bool(journal.get("deviated", False)),
        moments=moments,
        time_to_alert_s=_between(moments, "stopped", "alert_firing"),
        time_to_incident_s=_between(moments, "stopped", "incident_recorded"),
        time_to_recovery_s=_between(moments, "restarted", "incident_resolved"),
        requests_sent=traffic.sent if traffic else 0,
        requests_failed=traffic.failed if traffic else 0,
        requests_failed_during_outage=failed_during(traffic, moments.get("stopped"), moments.get("steady_again")),
        expected_alerts=expected,
        symptom_alerts=symptoms,
        unexpected_alerts=unexpected,
        incidents_for_service=len(incidents),
        incident=in_window[0] if in_window else None,
        notes=notes,
    )


def write_outputs(
    out_dir: Path, result: DrillResult, journal: dict[str, Any], page: str, recording: dict[str, Any]
) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "journal": out_dir / "journal.json",
        "result": out_dir / "result.json",
        "recording": out_dir / "recording.json",
        "report": out_dir / "report.html",
    }
    paths["journal"].write_text(json.dumps(journal, indent=2, default=str))
    paths["result"].write_text(json.dumps({**asdict(result), "passed": result.passed}, indent=2, default=str))
    paths["recording"].write_text(json.dumps(recording, indent=1, default=str))
    paths["report"].write_text(page)
    return paths


def terminal_summary(result: DrillResult, paths: dict[str, Path]) -> str:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    lines = [
        "",
        f"Drill {result.experiment} on {result.service}: {'PASSED' if result.passed else 'FAILED'}"
        f" (Chaos Toolkit: {result.status}, deviated: {result.deviated})",
        f"  time to alert firing       {fmt(result.time_to_alert_s)}",
        f"  time to incident stored    {fmt(result.time_to_incident_s)}",
        f"  time to recovery           {fmt(result.time_to_recovery_s)}  (restart -> incident resolved)",
        f"  requests sent / failed     {result.requests_sent} / {result.requests_failed}"
        f"  ({result.requests_failed_during_outage} failed during the outage)",
        f"  expected alerts            {', '.join(result.expected_alerts) or 'none'}",
        f"  symptom alerts             {', '.join(result.symptom_alerts) or 'none'} (inhibited downstream)",
        f"  unexpected alerts          {', '.join(result.unexpected_alerts) or 'none'}",
        f"  incidents for the service  {result.incidents_for_service}",
        f"  report  {paths['report']}",
        f"  result  {paths['result']}",
        f"  journal {paths['journal']}",
    ]
    return "\n".join(lines)
