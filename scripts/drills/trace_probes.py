"""Chaos Toolkit probes that read the recorded traces (the tracing-bug drill).

The spans come from where the platform records them: on the local platform every service appends
its sampled spans to ``<state>/traces/<service>.jsonl`` (``scripts.drills.traces``); on a cluster
they are asked from Jaeger (``scripts.drills.jaeger_spans``).
"""

from __future__ import annotations

import time
from typing import Any

from scripts.drills.jaeger_spans import JaegerError, jaeger_spans
from scripts.drills.recorder import RECORDER
from scripts.drills.trace_findings import FindingGroup, find_hidden, summarise
from scripts.drills.traces import Span, Trace, group_traces, read_spans
from scripts.local.stack import LocalPlatform
from services.common.waiting import wait_until

POLL_S = 1.0
# Spans are written in batches (services.common.telemetry: every 200 ms) after the request ends.
EARLIER_S = 1.0


def recorded_spans(start_s: float, end_s: float) -> list[Span]:
    """The spans of the window: the local platform's span files, or the platform's Jaeger."""
    platform, endpoints = RECORDER.require()
    if isinstance(platform, LocalPlatform):
        if not platform.state.traces.is_dir():
            return []
        return list(read_spans(platform.state.traces, start_s, end_s))
    if endpoints.jaeger is None:
        raise RuntimeError(f"the {platform.name} platform has no Jaeger to read the traces from")
    try:
        return jaeger_spans(endpoints.jaeger, start_s, end_s)
    except JaegerError:
        return []  # Jaeger briefly unreachable: the wait asks again


def hidden_findings(since_s: float) -> list[FindingGroup]:
    """The culprits of traces that answered well at the edge, from spans that started since ``since_s``."""
    spans = recorded_spans(since_s, time.time() + 1)
    return summarise(find_hidden(Trace(t, "hidden", tuple(m)) for t, m in group_traces(spans).items()))


def wait_for_trace_finding(service: str, operation: str, timeout_s: float = 60) -> dict[str, Any]:
    """Wait until a trace that answered well at the edge names ``service`` ``operation`` as its culprit."""
    since = (RECORDER.fault_started() or time.time()) - EARLIER_S
    expected = {"service": service, "operation": operation}

    def named() -> FindingGroup | None:
        return next((g for g in hidden_findings(since) if g.matches(expected)), None)

    found = wait_until(
        named, timeout_s=timeout_s, interval_s=POLL_S, what=f"a trace naming {service} {operation} as its culprit"
    )
    RECORDER.mark("trace_finding")
    return found.to_json()
