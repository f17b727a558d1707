"""What only the traces show: requests the edge answered well, with a failing or slow call inside.

A user who got a 200 never reports the downstream call that failed and was retried, or the one
that ate most of the request's time; the metrics of the edge stay green. Those requests are found
here from the recorded spans (``scripts.drills.traces``):

- a **hidden failure**: the trace's root (the edge's own span) did not fail, yet a span under it
  did; the culprit is the deepest failed span (the furthest downstream, so the callee's server span
  rather than the caller's client span that only saw the failure come back);
- a **hidden delay**: no span failed, the root took at least ``slow_ms``, and one chain of spans
  under it covers at least ``DOMINANT_SHARE`` of the root's time; the culprit is the deepest span
  of that chain.

``summarise`` groups the findings by culprit (service, operation, kind), most frequent first,
which is what the drill report shows and what a drill's ``expected_trace_finding`` is checked against.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from scripts.drills.traces import Span, Trace

DOMINANT_SHARE = 0.8
DEFAULT_SLOW_MS = 500.0  # the latency SLO's threshold (scripts.monitoring.settings: latency_p95_s)
EXAMPLES_KEPT = 3


@dataclass(frozen=True, slots=True)
class Finding:
    trace_id: str
    span_id: str  # the culprit's
    kind: str  # "error" (a span failed under an edge that did not) or "slow" (one span took the time)
    service: str
    operation: str
    outcome: str  # what the culprit span says went wrong ("HTTP 500", "gRPC code 4", "error"), or its duration
    root: str  # "<service> <operation>" of the trace's root
    root_outcome: str  # "HTTP 200", or "ok"
    start_ns: int


@dataclass(frozen=True, slots=True)
class FindingGroup:
    """One culprit and the traces that point at it."""

    kind: str
    service: str
    operation: str
    outcome: str
    traces: int
    roots: tuple[str, ...]
    example_trace_ids: tuple[str, ...]  # earliest first

    def matches(self, expected: Mapping[str, str]) -> bool:
        """``expected`` names a service and an operation (and optionally a kind)."""
        return (
            expected.get("service") == self.service
            and expected.get("operation") == self.operation
            and expected.get("kind", self.kind) == self.kind
        )

    def consequence(self) -> str:
        what = "failed" if self.kind == "error" else "took most of the time"
        return (
            f"{what} ({self.outcome}) in {self.traces} trace{'s' if self.traces != 1 else ''} "
            f"whose edge answered well ({', '.join(self.roots)})"
        )

    def describe(self) -> str:
        return f"{self.service} {self.operation} {self.consequence()}"

    def to_json(self) -> dict[str, Any]:
        """As saved in result.json (lists, not tuples), so a result reads the same before and after saving."""
        return {**asdict(self), "roots": list(self.roots), "example_trace_ids": list(self.example_trace_ids)}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> FindingGroup:
        return cls(
            kind=str(record["kind"]),
            service=str(record["service"]),
            operation=str(record["operation"]),
            outcome=str(record.get("outcome", "")),
            traces=int(record["traces"]),
            roots=tuple(record.get("roots", ())),
            example_trace_ids=tuple(record.get("example_trace_ids", ())),
        )


def _children(trace: Trace) -> dict[str, list[Span]]:
    ids = {span.span_id for span in trace.spans}
    children: dict[str, list[Span]] = {}
    for span in trace.spans:
        if span.parent_id in ids:
            children.setdefault(str(span.parent_id), []).append(span)
    return children


def _depths(trace: Trace, root: Span, children: Mapping[str, list[Span]]) -> dict[str, int]:
    depths = {root.span_id: 0}
    stack = [root]
    while stack:
        span = stack.pop()
        for child in children.get(span.span_id, ()):
            if child.span_id not in depths:  # a malformed trace with a cycle must not loop
                depths[child.span_id] = depths[span.span_id] + 1
                stack.append(child)
    return depths


def _root_outcome(root: Span) -> str:
    status = root.attributes.get("http.status_code")
    return f"HTTP {status}" if isinstance(status, int) else "ok"


def _dominant(root: Span, children: Mapping[str, list[Span]]) -> Span | None:
    """The deepest span of the chain of children that each cover most of the root's time."""
    budget = root.duration_ms * DOMINANT_SHARE
    culprit: Span | None = None
    current = root
    while True:
        longest = max(children.get(current.span_id, ()), key=lambda s: s.duration_ms, default=None)
        if longest is None or longest.duration_ms < budget:
            return culprit
        culprit = current = longest


def analyse(trace: Trace, slow_ms: float = DEFAULT_SLOW_MS) -> Finding | None:
    """The hidden failure or delay of one trace, or None when its edge failed or nothing hid."""
    root = trace.root
    if root.failed:
        return None  # the edge failed: the user saw it, the metrics count it, nothing is hidden
    children = _children(trace)
    depths = _depths(trace, root, children)
    failed = [span for span in trace.spans if span.failed and span.span_id in depths]
    culprit: Span | None
    if failed:
        culprit = max(failed, key=lambda s: (depths[s.span_id], -s.start_ns))
        kind, outcome = "error", culprit.outcome
    else:
        culprit = _dominant(root, children) if root.duration_ms >= slow_ms else None
        if culprit is None:
            return None
        kind, outcome = "slow", f"{culprit.duration_ms:.0f} ms of {root.duration_ms:.0f} ms"
    return Finding(
        trace_id=trace.trace_id,
        span_id=culprit.span_id,
        kind=kind,
        service=culprit.service,
        operation=culprit.name,
        outcome=outcome,
        root=f"{root.service} {root.name}",
        root_outcome=_root_outcome(root),
        start_ns=trace.start_ns,
    )


def find_hidden(traces: Iterable[Trace], slow_ms: float = DEFAULT_SLOW_MS) -> list[Finding]:
    """Every hidden failure or delay, in time order."""
    found = [finding for trace in traces if (finding := analyse(trace, slow_ms)) is not None]
    return sorted(found, key=lambda f: f.start_ns)


def summarise(findings: Iterable[Finding]) -> list[FindingGroup]:
    """Findings grouped by culprit, failures before delays, then the most frequent first."""
    grouped: dict[tuple[str, str, str], list[Finding]] = {}
    for finding in findings:
        grouped.setdefault((finding.kind, finding.service, finding.operation), []).append(finding)
    groups = []
    for (kind, service, operation), members in grouped.items():
        members.sort(key=lambda f: f.start_ns)
        outcome = Counter(f.outcome for f in members).most_common(1)[0][0] if kind == "error" else members[0].outcome
        groups.append(
            FindingGroup(
                kind=kind,
                service=service,
                operation=operation,
                outcome=outcome,
                traces=len(members),
                roots=tuple(sorted({f"{f.root} → {f.root_outcome}" for f in members})),
                example_trace_ids=tuple(f.trace_id for f in members[:EXAMPLES_KEPT]),
            )
        )
    return sorted(groups, key=lambda g: (g.kind != "error", -g.traces, g.service, g.operation))
