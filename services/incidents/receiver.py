"""The running receiver: store, group-commit writer, file exporter and enricher, wired together."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import aiohttp

from services.incidents.config import IncidentsConfig
from services.incidents.enrichment import Enricher, PrometheusClient
from services.incidents.export import JsonExporter
from services.incidents.metrics import IncidentMetrics
from services.incidents.models import Notification
from services.incidents.store import ApplyResult, IncidentStore
from services.incidents.writer import GroupCommitWriter


class Receiver:
    def __init__(self, config: IncidentsConfig, metrics: IncidentMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.store = IncidentStore(config.database, enrichment_enabled=config.prometheus_url is not None)
        self._session: aiohttp.ClientSession | None = None
        self.writer: GroupCommitWriter | None = None
        self.exporter: JsonExporter | None = None
        self.enricher: Enricher | None = None

    async def start(self) -> None:
        await self.store.open()
        try:
            self.writer = GroupCommitWriter(
                self.store.writer_connection,
                max_batch=self.config.write_batch,
                on_batch=self.metrics.commit_batch.observe,
            )
            self.writer.start()
            self.exporter = JsonExporter(self.store, self.writer, self.config.export_dir, self.metrics)
            await self.exporter.start()
            client = None
            if self.config.prometheus_url is not None:
                self._session = aiohttp.ClientSession()
                client = PrometheusClient(self._session, self.config.prometheus_url, self.config.enrich_timeout_s)
            self.enricher = Enricher(
                self.store,
                self.writer,
                client,
                self.metrics,
                queue_size=self.config.enrich_queue_size,
                on_change=self.exporter.mark,
            )
            self.enricher.start()  # its sweep picks up incidents left pending by a previous run
            self.metrics.open.set(await self.store.open_count())
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop enriching, write the files still behind, finish queued writes, close."""
        if self.enricher is not None:
            await self.enricher.stop()
        if self.exporter is not None:
            await self.exporter.stop()
        if self.writer is not None:
            await self.writer.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.store.close()

    async def receive(self, note: Notification) -> ApplyResult:
        """Commit one notification; returns only once it is durable."""
        if self.writer is None:
            raise RuntimeError("receiver not started")
        now_ns = time.time_ns()

        def apply(conn: sqlite3.Connection) -> ApplyResult:
            return self.store.apply_notification(conn, note, now_ns)

        result = await self.writer.submit(apply)
        self.metrics.notifications[note.status].inc()
        if result.alerts_deduplicated:
            self.metrics.deduplicated.inc(result.alerts_deduplicated)
        if result.alerts_new:
            self.metrics.alerts_stored.inc(result.alerts_new)
        if result.created:
            self.metrics.created.inc(len(result.created))
        if result.opened or result.closed:
            self.metrics.open.inc(result.opened - result.closed)
        if self.exporter is not None and result.changed:
            self.exporter.mark(result.changed)
        if self.enricher is not None:
            for incident_id in result.created:
                self.enricher.offer(incident_id)
        return result

    async def health(self) -> dict[str, Any]:
        if self.writer is None or not self.writer.running:
            raise RuntimeError("the store writer is not running")
        status = await self.store.ping()
        status["export_pending"] = self.exporter.pending if self.exporter is not None else 0
        status["enrichment_queue"] = self.enricher.depth if self.enricher is not None else 0
        return status
