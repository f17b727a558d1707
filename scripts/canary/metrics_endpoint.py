"""How Prometheus scrapes a rollout that lives only as long as the CLI running it.

The CLI serves its own /metrics on an ephemeral loopback port and, for the rollout's duration,
registers it as a file-discovery target in the folder Prometheus' ``canary-rollout`` job watches
(``<state>/prometheus/rollout-targets/``, see scripts/monitoring/prometheus_config.py). At the end
it waits until Prometheus has scraped the final state once (a condition, bounded by a timeout), then
removes the target and stops serving: the last status, weight and verdicts are in Prometheus' TSDB,
where the dashboard and its annotations read them.

Why not a Pushgateway or the incident receiver: the platform runs neither a Pushgateway nor
any other place that would keep the state of an operator's command, and a pushed series
never goes stale (a finished rollout would read "progressing" forever); scraping the process itself
keeps Prometheus' ``up`` and staleness meaning what they mean for every other target.

The endpoint answers GET /metrics only (405 for other methods, 404 for other paths), on
127.0.0.1: like the services' ops ports, it is for Prometheus and people on this host.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from scripts.canary.metrics_observer import RolloutMetrics
from scripts.monitoring.prometheus_config import ROLLOUT_JOB, ROLLOUT_TARGETS
from services.common.waiting import TimedOut, wait_until

JOB = ROLLOUT_JOB
TARGETS_FOLDER = ROLLOUT_TARGETS  # beside the services' ``targets`` folder


def rollout_targets_dir(state_dir: Path) -> Path:
    """Where the local platform's Prometheus looks for rollout targets."""
    return state_dir / "prometheus" / TARGETS_FOLDER


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self._answer(404, b"only /metrics here\n", "text/plain; charset=utf-8")
            return
        body = generate_latest(self.server.registry)
        self._answer(200, body, CONTENT_TYPE_LATEST)
        self.server.count_scrape()

    def _refuse(self) -> None:
        self._answer(405, b"GET /metrics only\n", "text/plain; charset=utf-8", allow="GET")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _refuse

    def _answer(self, status: int, body: bytes, content_type: str, allow: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if allow:
            self.send_header("Allow", allow)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per scrape would drown the rollout's own progress


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, registry: CollectorRegistry, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), _Handler)
        self.registry = registry
        self._scrapes = 0
        self._lock = threading.Lock()
        self.timeout = 10  # a client that connects and says nothing is dropped

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return f"{host!s}:{port}"

    def count_scrape(self) -> None:
        with self._lock:
            self._scrapes += 1

    @property
    def scrapes(self) -> int:
        with self._lock:
            return self._scrapes


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def remove_orphaned_targets(targets_dir: Path) -> list[Path]:
    """Targets left by rollouts that died without cleaning up (kill -9): their process is gone."""
    removed = []
    for path in targets_dir.glob("*-*.json"):
        pid = path.stem.rsplit("-", 1)[1]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _write_target(path: Path, address: str, service: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps([{"targets": [address], "labels": {"rollout_service": service}}]), encoding="utf-8")
    os.replace(tmp, path)


class ScrapeRegistration(Protocol):
    """Where a rollout tells Prometheus about its endpoint for as long as it runs."""

    def announce(self, address: str) -> str:
        """Register ``host:port``; returns how it is scraped, for the progress line."""
        ...

    def withdraw(self) -> None: ...


class FileRegistration:
    """A file-discovery target in the folder the local Prometheus' ``canary-rollout`` job watches."""

    def __init__(self, targets_dir: Path, service: str, progress: Callable[[str], None] = print) -> None:
        self._dir = targets_dir
        self._service = service
        self._path = targets_dir / f"{service}-{os.getpid()}.json"
        self._progress = progress

    def announce(self, address: str) -> str:
        for orphan in remove_orphaned_targets(self._dir):
            self._progress(f"removed {orphan}: the rollout that wrote it is gone")
        _write_target(self._path, address, self._service)
        return f"scraped through {self._path}"

    def withdraw(self) -> None:
        self._path.unlink(missing_ok=True)


@contextlib.contextmanager
def exported_rollout(
    service: str,
    registration: ScrapeRegistration | None,
    *,
    registry: CollectorRegistry | None = None,
    host: str = "127.0.0.1",
    final_scrape_timeout_s: float = 35.0,
    progress: Callable[[str], None] = print,
) -> Iterator[RolloutMetrics]:
    """A RolloutMetrics observer whose registry is served on ``host`` and registered with Prometheus meanwhile.

    ``registration`` None serves without registering (Prometheus does not know where to look; the
    endpoint still answers for a person or a test). On the way out, waits up to
    ``final_scrape_timeout_s`` (two production scrape intervals and some) for one scrape of the
    final state, so the rollout's end is recorded.
    """
    registry = registry or CollectorRegistry()
    metrics = RolloutMetrics(registry)
    server = MetricsServer(registry, host)
    thread = threading.Thread(target=server.serve_forever, name="rollout-metrics", daemon=True)
    thread.start()
    say = progress
    announced = False
    try:
        how = registration.announce(server.address) if registration is not None else None
        announced = registration is not None
        say(f"rollout metrics on http://{server.address}/metrics" + (f" ({how})" if how else ""))
        yield metrics
    finally:
        try:
            if announced:
                _wait_for_final_scrape(server, final_scrape_timeout_s, say)
        finally:
            if registration is not None:
                registration.withdraw()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def _wait_for_final_scrape(server: MetricsServer, timeout_s: float, say: Callable[[str], None]) -> None:
    seen = server.scrapes
    try:
        wait_until(
            lambda: server.scrapes > seen,
            timeout_s=timeout_s,
            interval_s=0.1,
            what="Prometheus to scrape the rollout's final state",
        )
    except TimedOut:
        say(
            f"Prometheus did not scrape the final state within {timeout_s:g}s; the last status may be missing "
            "from the dashboard"
        )
