"""Enrichment from Prometheus, in the background: never on the webhook's path.

For a new incident: the current value of its alert expression (``g0.expr`` of the alert's
generatorURL, through ``/api/v1/query``) and the trace id of the slowest exemplar of the
service's ``http_request_duration_seconds_bucket`` over the alert window (``/api/v1/query_exemplars``,
from ``EXEMPLAR_LOOKBACK_S`` before the first alert started until it resolved, or now).

Incidents wait in a bounded queue served by a few workers; each Prometheus call has a short
timeout. When the queue is full the incident stays ``pending`` in the store and a periodic
sweep offers it again, so a burst is enriched late rather than never, and the queue's memory is
bounded. Every outcome is written to the incident: ``done``, ``failed`` (with the error and
whatever was found), or ``skipped`` (no Prometheus configured).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import urllib.parse
from typing import Any

import aiohttp

from services.incidents.metrics import IncidentMetrics
from services.incidents.models import NS_PER_S, parse_time
from services.incidents.store import Enrichment, IncidentStore
from services.incidents.writer import GroupCommitWriter

log = logging.getLogger(__name__)

EXEMPLAR_METRIC = "http_request_duration_seconds_bucket"
EXEMPLAR_LOOKBACK_S = 300
MAX_SAMPLES = 10
TRACE_ID_LABELS = ("trace_id", "traceID", "traceId", "trace-id")
SWEEP_INTERVAL_S = 5.0
WORKERS = 2


class PrometheusError(Exception):
    pass


def expression_of(generator_url: str | None) -> str | None:
    """The PromQL expression Prometheus put in an alert's generatorURL (``g0.expr``)."""
    if not generator_url:
        return None
    query = urllib.parse.urlsplit(generator_url).query
    values = urllib.parse.parse_qs(query).get("g0.expr")
    return values[0] if values and values[0].strip() else None


def promql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class PrometheusClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout_s: float) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            async with self._session.get(f"{self._base}{path}", params=params, timeout=self._timeout) as resp:
                body = await resp.json(content_type=None)
        except TimeoutError:
            raise PrometheusError(f"{path}: no answer within {self._timeout.total}s") from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise PrometheusError(f"{path}: {exc.__class__.__name__}: {str(exc)[:200]}") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("error") if isinstance(body, dict) else None
            raise PrometheusError(f"{path}: answered {resp.status}: {str(detail)[:200]}")
        return body.get("data")

    async def query(self, expr: str) -> list[dict[str, Any]]:
        data = await self._get("/api/v1/query", {"query": expr})
        if not isinstance(data, dict):
            raise PrometheusError("/api/v1/query: unexpected answer")
        kind, result = data.get("resultType"), data.get("result")
        if kind in ("scalar", "string") and isinstance(result, list):
            return [{"labels": {}, "value": _number(result[1])}]
        if kind == "vector" and isinstance(result, list):
            return [
                {"labels": item.get("metric", {}), "value": _number(item.get("value", [0, "NaN"])[1])}
                for item in result
            ]
        if kind == "matrix" and isinstance(result, list):
            return [
                {
                    "labels": item.get("metric", {}),
                    "value": _number(item["values"][-1][1]) if item.get("values") else None,
                }
                for item in result
            ]
        raise PrometheusError(f"/api/v1/query: unexpected result type {kind!r}")

    async def exemplars(self, query: str, start_s: float, end_s: float) -> list[dict[str, Any]]:
        data = await self._get(
            "/api/v1/query_exemplars", {"query": query, "start": f"{start_s:.3f}", "end": f"{end_s:.3f}"}
        )
        return data if isinstance(data, list) else []


def _number(raw: object) -> float | None:
    try:
        value = float(str(raw))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def matching_value(samples: list[dict[str, Any]], alert_labels: dict[str, str]) -> float | None:
    """The value of the series this alert is about (its labels agree with the alert's), else the first."""
    for sample in samples:
        labels = {k: v for k, v in sample["labels"].items() if k != "__name__"}
        if all(alert_labels.get(k) == v for k, v in labels.items()):
            return sample["value"]  # type: ignore[no-any-return]
    return samples[0]["value"] if samples else None


def slowest_trace_id(series: list[dict[str, Any]]) -> str | None:
    best: tuple[float, str] | None = None
    for item in series:
        for exemplar in item.get("exemplars") or []:
            labels = exemplar.get("labels") or {}
            trace_id = next((labels[name] for name in TRACE_ID_LABELS if labels.get(name)), None)
            value = _number(exemplar.get("value")) or 0.0
            if trace_id and (best is None or value > best[0]):
                best = (value, str(trace_id))
    return best[1] if best else None


class Enricher:
    def __init__(
        self,
        store: IncidentStore,
        writer: GroupCommitWriter,
        client: PrometheusClient | None,
        metrics: IncidentMetrics,
        *,
        queue_size: int,
        on_change: Any = None,
    ) -> None:
        self._store = store
        self._writer = writer
        self._client = client
        self._metrics = metrics
        self._queue: asyncio.Queue[int] = asyncio.Queue(maxsize=queue_size)
        self._known: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._on_change = on_change

    @property
    def enabled(self) -> bool:
        return self._client is not None

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def offer(self, incident_id: int) -> bool:
        """Queue an incident for enrichment; False (and it stays pending) when the queue is full."""
        if self._client is None or incident_id in self._known:
            return False
        try:
            self._queue.put_nowait(incident_id)
        except asyncio.QueueFull:
            self._metrics.enrichment["dropped"].inc()
            return False
        self._known.add(incident_id)
        self._metrics.enrichment_queue.set(self._queue.qsize())
        return True

    def start(self) -> None:
        if self._client is None:
            return
        self._tasks = [asyncio.create_task(self._work(), name=f"incidents-enrich-{n}") for n in range(WORKERS)]
        self._tasks.append(asyncio.create_task(self._sweep(), name="incidents-enrich-sweep"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _sweep(self) -> None:
        while True:
            free = self._queue.maxsize - self._queue.qsize()
            if free > 0:
                try:
                    for incident_id in await self._store.pending_enrichment(free + len(self._known)):
                        if self._queue.full():
                            break
                        self.offer(incident_id)
                except Exception:
                    log.warning("enrichment sweep failed", exc_info=True)
            await asyncio.sleep(SWEEP_INTERVAL_S)

    async def _work(self) -> None:
        while True:
            incident_id = await self._queue.get()
            self._metrics.enrichment_queue.set(self._queue.qsize())
            try:
                enrichment = await self.enrich(incident_id)
                if enrichment is not None:

                    def record(conn: Any, found: Enrichment = enrichment, target: int = incident_id) -> None:
                        self._store.record_enrichment(conn, target, found, time.time_ns())

                    await self._writer.submit(record)
                    self._metrics.enrichment[enrichment.status].inc()
                    if self._on_change is not None:
                        self._on_change([incident_id])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("enrichment failed", extra={"incident_id": incident_id})
            finally:
                self._known.discard(incident_id)

    async def enrich(self, incident_id: int) -> Enrichment | None:
        if self._client is None:
            return Enrichment("skipped", error="FIREDRILL_PROMETHEUS_URL is not set")
        incident = await self._store.get(incident_id)
        if incident is None or incident["enrichment"]["status"] != "pending":
            return None
        alerts: list[dict[str, Any]] = incident.get("alerts") or []
        first = alerts[0] if alerts else {}
        expr = next((e for e in (expression_of(a.get("generator_url")) for a in alerts) if e), None)
        errors: list[str] = []
        samples: list[dict[str, Any]] | None = None
        value: float | None = None
        if expr is None:
            errors.append("no g0.expr in the alerts' generatorURL")
        else:
            try:
                found = await self._client.query(expr)
                samples = found[:MAX_SAMPLES]
                value = matching_value(found, first.get("labels") or {})
            except PrometheusError as exc:
                errors.append(f"expression value: {exc}")
        trace_id: str | None = None
        service = incident.get("service")
        if service:
            started = parse_time(incident["started_at"]) or 0
            resolved = parse_time(incident["resolved_at"]) if incident.get("resolved_at") else None
            start_s = started / NS_PER_S - EXEMPLAR_LOOKBACK_S
            end_s = resolved / NS_PER_S if resolved else time.time()
            try:
                series = await self._client.exemplars(
                    f"{EXEMPLAR_METRIC}{{service={promql_string(service)}}}", start_s, end_s
                )
                trace_id = slowest_trace_id(series)
            except PrometheusError as exc:
                errors.append(f"exemplars: {exc}")
        # "failed" only when Prometheus could not be asked; a missing expression is not a failure.
        failed = any(not e.startswith("no g0.expr") for e in errors)
        return Enrichment(
            status="failed" if failed else "done",
            error="; ".join(errors) or None,
            expr=expr,
            value=value,
            samples=samples,
            exemplar_trace_id=trace_id,
        )
