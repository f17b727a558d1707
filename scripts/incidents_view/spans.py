"""One trace's spans from the local platform's span files (``<state>/traces/*.jsonl``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from scripts.drills.traces import Span, Trace

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def read_trace(directory: Path, trace_id: str) -> Trace | None:
    """The spans of ``trace_id`` from every file, or None when none was recorded.

    Only lines that contain the id are parsed, so a long history of spans is read at the speed of
    a text search. A line still being written (or otherwise unreadable) is skipped.
    """
    if not TRACE_ID.match(trace_id):
        raise ValueError("a trace id is 32 lowercase hex digits")
    spans = []
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if trace_id not in line:
                    continue
                try:
                    span = Span.from_record(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue
                if span.trace_id == trace_id:
                    spans.append(span)
    if not spans:
        return None
    spans.sort(key=lambda s: (s.start_ns, s.end_ns))
    return Trace(trace_id, "exemplar", tuple(spans))
