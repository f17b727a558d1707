"""The running receiver: store, group-commit writer, file exporter and enricher, wired together."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import aiohttp

from services.incidents.config import IncidentsConfig
from services.incidents.enrichment import Enricher, PrometheusClient
from services.incidents.errors import InvalidPayload
from services.incidents.export import JsonExporter
from services.incidents.metrics import IncidentMetrics
from services.incidents.models import Notification, Status
from services.incidents.store import ApplyResult, IncidentStore
from services.incidents.validation import parse_notification
from services.incidents.writer import GroupCommitWriter

# Bodies remembered as committed (a 16-byte digest and three numbers each: a few MiB when full);
# enough to cover Alertmanager's retries of a burst.
COMMITTED_BODIES = 16_384


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a webhook body did, for the answer; ``repeat`` when it was answered from memory."""

    result: ApplyResult
    truncated_values: int = 0
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class CommittedBody:
    status: Status
    alerts: int
    truncated_values: int


class CommittedBodies:
    """Digests of webhook bodies whose notification is committed, least recently seen dropped first.

    A byte-identical re-send (Alertmanager's retry after a lost answer, or a resend) carries
    nothing the store does not already hold: it is answered as all-deduplicated without being
    parsed or written. Digests are added only after the commit, so a body still in flight is not
    known yet and takes the normal path; after a restart the memory is empty and every body does.
    """

    def __init__(self, capacity: int = COMMITTED_BODIES) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[bytes, CommittedBody] = OrderedDict()

    @staticmethod
    def digest(raw: bytes) -> bytes:
        return hashlib.blake2b(raw, digest_size=16).digest()

    def get(self, digest: bytes) -> CommittedBody | None:
        entry = self._entries.get(digest)
        if entry is not None:
            self._entries.move_to_end(digest)
        return entry

    def add(self, digest: bytes, entry: CommittedBody) -> None:
        self._entries[digest] = entry
        self._entries.move_to_end(digest)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class Receiver:
    def __init__(self, config: IncidentsConfig, metrics: IncidentMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.store = IncidentStore(config.database, enrichment_enabled=config.prometheus_url is not None)
        self._session: aiohttp.ClientSession | None = None
        self.writer: GroupCommitWriter | None = None
        self.exporter: JsonExporter | None = None
        self.enricher: Enricher | None = None
        self.committed = CommittedBodies()

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

    async def receive_body(self, raw: bytes) -> Receipt:
        """A webhook body: parsed and committed, or answered from memory when this exact body was
        committed before. Raises ``InvalidPayload`` (a 400) for a bad body."""
        digest = self.committed.digest(raw)
        known = self.committed.get(digest)
        if known is not None:
            self.metrics.notifications[known.status].inc()
            self.metrics.repeats.inc()
            self.metrics.deduplicated.inc(known.alerts)
            return Receipt(ApplyResult(alerts_deduplicated=known.alerts), known.truncated_values, repeat=True)
        try:
            note = parse_notification(raw)
        except InvalidPayload:
            self.metrics.rejected.inc()
            raise
        result = await self.receive(note)
        self.committed.add(digest, CommittedBody(note.status, len(note.alerts), note.truncated_values))
        return Receipt(result, note.truncated_values)

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
