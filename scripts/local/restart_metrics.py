"""The restarter's restart counts as Prometheus metrics, and the scrape target that points at them.

``firedrill_restarts_total{service}`` counts every failed run of a supervised program that is
followed by another start: a start that died within ``startsecs`` (supervisord's BACKOFF, which it
retries itself, or after which the restarter does) and an unexpected exit of a running program.
It is the local twin of Nomad's ``nomad.client.allocs.restart`` counter, so one ``CrashLooping``
rule reads either (``scripts/monitoring/alerts.py``).

Prometheus finds the restarter through the local platform's file discovery: a target file in the
folder the ``services`` scrape job watches, whose ``job`` label (target labels win over the scrape
job's name) keeps the restarter's series apart from the services'.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, start_http_server

METRIC = "firedrill_restarts"  # exposed as firedrill_restarts_total
JOB = "restarter"
TARGET_FILE = "restarter.json"


class RestartMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._restarts = Counter(
            METRIC,
            "Failed runs of a supervised program that were followed by another start (crash-loop signal).",
            ["service"],
            registry=self.registry,
        )

    def seen(self, program: str) -> None:
        """A program is known (running): its series exists from 0, before any restart."""
        self._restarts.labels(program)

    def restarted(self, program: str) -> None:
        self._restarts.labels(program).inc()

    def count(self, program: str) -> float:
        value = self.registry.get_sample_value(f"{METRIC}_total", {"service": program})
        return value or 0.0

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve /metrics on a daemon thread; returns the port (useful when 0 asked for any)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_address[1])


def write_target(targets_dir: Path, address: str) -> Path:
    """The file-discovery target of the restarter (written atomically: Prometheus watches the folder)."""
    targets_dir.mkdir(parents=True, exist_ok=True)
    target = targets_dir / TARGET_FILE
    fd, tmp = tempfile.mkstemp(dir=targets_dir, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump([{"targets": [address], "labels": {"job": JOB}}], handle)
    os.replace(tmp, target)
    return target
