"""Turn what a drill recorded into numbers and a JSON result; the HTML page is ``scripts.drills.page``."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scripts.drills.canary_drill import rollout_facts
from scripts.drills.catalogue import DrillSpec, alert_label, matches
from scripts.drills.debug_findings import debug_finding_lines
from scripts.drills.inhibition import split_inhibited
from scripts.drills.trace_findings import FindingGroup
from scripts.traffic import TrafficResult


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
    # Expected alerts that never fired (an expectation of the drill that failed).
    missing_alerts: list[str] = field(default_factory=list)
    expects_incident: bool = True
    max_failed_requests: int | None = None  # None: users may see failures (an outage)
    # Fired in Prometheus, held back by Alertmanager as the drill expects (never notified).
    inhibited_alerts: list[str] = field(default_factory=list)
    # The culprit the recorded traces must name (scripts.drills.trace_findings), and what they named.
    expected_trace_finding: dict[str, str] | None = None
    trace_findings: list[dict[str, Any]] = field(default_factory=list)
    expected_rollout: str | None = None  # canary drills: what the rollout must decide

    @property
    def trace_finding_met(self) -> bool:
        if self.expected_trace_finding is None:
            return True
        return any(FindingGroup.from_json(g).matches(self.expected_trace_finding) for g in self.trace_findings)

    @property
    def rollout_outcome(self) -> str | None:
        rollout = self.notes.get("rollout") or {}
        return rollout.get("outcome")

    @property
    def refused(self) -> bool:
        """The steady state did not hold before the drill, so it broke nothing."""
        return self.notes.get("refused_because") is not None

    @property
    def failed_activities(self) -> list[str]:
        """Method activities that raised (a probe whose check did not hold), with their last error line."""
        return list(self.notes.get("failed_activities", []))

    @property
    def repeated_incidents(self) -> list[str]:
        """Alerts that opened more than one incident for the service during the drill (a flapping storm)."""
        return list(self.notes.get("repeated_incidents", []))

    @property
    def passed(self) -> bool:
        return (
            not self.refused
            and self.status == "completed"
            and not self.deviated
            and not self.missing_alerts
            and not self.unexpected_alerts
            and not self.repeated_incidents
            and not self.failed_activities
            and self.incidents_for_service == (1 if self.expects_incident else 0)
            and (self.max_failed_requests is None or self.requests_failed_during_outage <= self.max_failed_requests)
            and self.trace_finding_met
            and not self.notes.get("failed_checks")
            and (self.expected_rollout is None or self.rollout_outcome == self.expected_rollout)
        )

    def failed_expectations(self) -> list[str]:
        """Why the verdict is FAILED, one reason a line (empty when the drill passed)."""
        if self.refused:
            return [f"refused to start: {self.notes['refused_because']}"]
        reasons = []
        if self.status != "completed" or self.deviated:
            reasons.append(f"Chaos Toolkit status {self.status}, deviated {self.deviated}")
        reasons += [f"expected alert never fired: {label}" for label in self.missing_alerts]
        reasons += [f"false alert: {label}" for label in self.unexpected_alerts]
        reasons += [f"more than one incident for one alert: {name}" for name in self.repeated_incidents]
        reasons += [f"activity failed: {failure}" for failure in self.failed_activities]
        wanted = 1 if self.expects_incident else 0
        if self.incidents_for_service != wanted:
            reasons.append(f"{self.incidents_for_service} incidents for {self.service}, expected {wanted}")
        if self.max_failed_requests is not None and self.requests_failed_during_outage > self.max_failed_requests:
            reasons.append(
                f"{self.requests_failed_during_outage} user requests failed, at most {self.max_failed_requests} allowed"
            )
        if not self.trace_finding_met and self.expected_trace_finding is not None:
            wanted_span = f"{self.expected_trace_finding['service']} {self.expected_trace_finding['operation']}"
            named = "; ".join(FindingGroup.from_json(g).describe() for g in self.trace_findings) or "nothing"
            reasons.append(f"the traces did not name {wanted_span} as the hidden culprit (they named: {named})")
        # Checks a drill's own actions make (e.g. the heap snapshot names the leak's allocation site).
        reasons += list(self.notes.get("failed_checks", []))
        if self.expected_rollout is not None and self.rollout_outcome != self.expected_rollout:
            reasons.append(f"the rollout ended {self.rollout_outcome or 'nowhere'}, expected {self.expected_rollout}")
        return reasons


def _between(moments: dict[str, float], start: str, end: str) -> float | None:
    if start in moments and end in moments:
        return round(moments[end] - moments[start], 2)
    return None


def failed_during(traffic: TrafficResult | None, start: float | None, end: float | None) -> int:
    if traffic is None or start is None:
        return 0
    stop = end if end is not None else float("inf")
    return sum(1 for when, ok in traffic.timeline if not ok and start <= when <= stop)


def classify_alerts(
    fired: set[tuple[str, str]], expected: list[str], tolerated: list[str]
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Split alerts that fired into expected, tolerated symptoms and false alerts; list the missing."""
    found, symptoms, unexpected = [], [], []
    for alertname, alert_service in sorted(fired):
        label = alert_label(alertname, alert_service)
        if label in expected:
            found.append(label)
        elif any(matches(label, pattern) for pattern in tolerated):
            symptoms.append(label)  # downstream of the fault; Alertmanager inhibits the dependency's callers
        else:
            unexpected.append(label)
    missing = [label for label in expected if label not in found]
    return found, symptoms, unexpected, missing


def failed_activities(journal: dict[str, Any]) -> list[str]:
    """The method's activities Chaos Toolkit ran and saw raise; it carries on after them, the verdict must not."""
    failed = []
    for run in journal.get("run") or []:
        if run.get("status") == "failed":
            lines = [line.strip() for line in "".join(run.get("exception") or []).splitlines() if line.strip()]
            failed.append(f"{run['activity']['name']}: {lines[-1] if lines else 'raised'}")
    return failed


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
    spec: DrillSpec,
) -> DrillResult:
    fired, inhibited = split_inhibited(alerts_seen(notes), spec.inhibited_for(service), notes)
    expected, symptoms, unexpected, missing = classify_alerts(
        fired, spec.expected_for(service), spec.tolerated_for(service)
    )
    start = "stopped" if "stopped" in moments else "fault_on"
    end = "restarted" if "restarted" in moments else "fault_off"
    per_alert = Counter(str(i.get("alertname")) for i in incidents)
    repeated = sorted(name for name, count in per_alert.items() if count > 1)
    if repeated:
        notes = {**notes, "repeated_incidents": repeated}
    failed = failed_activities(journal)
    if failed:
        notes = {**notes, "failed_activities": failed}
    if spec.incident_alert is not None:
        incidents = [i for i in incidents if i.get("alertname") == spec.incident_alert]
    in_window = [i for i in incidents if i.get("id") == notes.get("incident_id")] or incidents
    return DrillResult(
        experiment=experiment,
        service=service,
        status=str(journal.get("status", "unknown")),
        deviated=bool(journal.get("deviated", False)),
        moments=moments,
        time_to_alert_s=_between(moments, start, "alert_firing"),
        time_to_incident_s=_between(moments, start, "incident_recorded"),
        time_to_recovery_s=_between(moments, end, "incident_resolved" if spec.expects_incident else "steady_again"),
        requests_sent=traffic.sent if traffic else 0,
        requests_failed=traffic.failed if traffic else 0,
        requests_failed_during_outage=failed_during(traffic, moments.get(start), moments.get("steady_again")),
        expected_alerts=expected,
        symptom_alerts=symptoms,
        unexpected_alerts=unexpected,
        incidents_for_service=len(incidents),
        incident=in_window[0] if in_window else None,
        notes=notes,
        missing_alerts=missing,
        expects_incident=spec.expects_incident,
        max_failed_requests=spec.max_failed_requests,
        inhibited_alerts=inhibited,
        expected_trace_finding=spec.expected_trace_finding,
        expected_rollout=spec.expected_rollout,
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
        f"  time to recovery           {fmt(result.time_to_recovery_s)}  (repair -> incident resolved)",
        f"  requests sent / failed     {result.requests_sent} / {result.requests_failed}"
        f"  ({result.requests_failed_during_outage} failed during the fault)",
        f"  expected alerts            {', '.join(result.expected_alerts) or 'none'}"
        + (f"  (never fired: {', '.join(result.missing_alerts)})" if result.missing_alerts else ""),
        f"  symptom alerts             {', '.join(result.symptom_alerts) or 'none'} (tolerated downstream)",
        f"  inhibited alerts           {', '.join(result.inhibited_alerts) or 'none'} (fired, never notified)",
        f"  unexpected alerts          {', '.join(result.unexpected_alerts) or 'none'}",
        f"  incidents for the service  {result.incidents_for_service}",
        *(f"  found in the traces        {FindingGroup.from_json(g).describe()}" for g in result.trace_findings[:3]),
        *debug_finding_lines(result.notes),
        *(f"  {name:<26} {value}" for name, value in rollout_facts(result.notes)),
        *(f"  FAILED: {reason}" for reason in result.failed_expectations()),
        f"  report  {paths['report']}",
        f"  result  {paths['result']}",
        f"  journal {paths['journal']}",
    ]
    return "\n".join(lines)
