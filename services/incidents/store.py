"""The incident repository over SQLite (WAL): writes inside the writer's transactions, reads apart.

Two connections: one for writes, a plain sqlite3 connection on its own thread used only by the
group-commit writer (services.incidents.writer), which runs every operation synchronously inside a
transaction of its own making; and one for reads (aiosqlite), which in WAL mode sees only
committed data and never waits for the writer.

Rules the write side keeps (they are what makes retries, reordering and restarts safe). An alert
is what Alertmanager says it is: its fingerprint, within one firing *episode*. Alertmanager keeps
one alert per fingerprint and merges what it is sent about it, so the startsAt of the same episode
can differ in precision between notifications (Prometheus, amtool and the API round differently,
and a merge keeps the earliest); startsAt only tells episodes apart.

- A firing alert belongs to its fingerprint's open episode when there is one (nothing changes).
  Without one, it starts a new episode if it started after the latest episode ended; otherwise it
  is a late copy of a closed episode and changes nothing: "resolved" is final.
- A resolve closes its fingerprint's open episode whatever its startsAt says, ending it at the
  resolve's endsAt. It is a late copy of an earlier episode's resolve (and changes nothing) only
  when it ended before the open episode started. Without an open episode, a resolve for a start
  after the latest episode's end is an episode whose firing never arrived (or arrives later, and is
  then a late copy): it is stored resolved. Anything else is a repeat.
- One notification's alerts are applied per fingerprint in time order, with the same rules, so
  duplicates inside it and an episode that starts and ends in it need nothing special.
- New episodes join the open (firing) incident of their Alertmanager group (groupKey), or start a
  new incident when the group has none open. They are attached *before* this notification's
  resolutions are applied, so a notification that both adds and resolves alerts stays one incident.
  An episode after a resolve is a new record, so a group that fires again after its incident
  resolved is a new incident; the resolved one is never reopened.
- An incident is resolved when all its alerts are; it then ends at the last alert's endsAt and
  its duration runs from the first alert's startsAt. It records the most alerts Alertmanager left
  out of one of its notifications (``truncatedAlerts``, from the webhook's ``max_alerts``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from services.common.sqlite_store import create_private
from services.incidents.models import NS_PER_S, RANK_SEVERITY, Alert, Notification, Status, format_time
from services.incidents.schema import migrate
from services.incidents.writer import WriteConnection

_CHUNK = 400
# Only "?" placeholders are interpolated into these.
# Each incident's status before this write, beside the aggregate of its alerts.
_AGGREGATE = (
    "SELECT i.id, i.status, count(*), sum(a.status = 'firing'), min(a.starts_at_ns), max(a.ends_at_ns),"
    " max(a.severity_rank) FROM incidents AS i JOIN alerts AS a ON a.incident_id = i.id"
    " WHERE i.id IN ({marks}) GROUP BY i.id"
)
# Per fingerprint: its open episodes (alert id, incident id, start), then the end of its latest closed one.
_EPISODES = (
    "SELECT fingerprint, id, incident_id, starts_at_ns, NULL FROM alerts"
    " WHERE fingerprint IN ({marks}) AND status = 'firing'"
    " UNION ALL"
    " SELECT fingerprint, NULL, NULL, NULL, max(ends_at_ns) FROM alerts"
    " WHERE fingerprint IN ({marks}) AND status = 'resolved' GROUP BY fingerprint"
)
MAX_DETAIL_ALERTS = 1_000
# Each incident's first MAX_DETAIL_ALERTS alerts, in the order ``IncidentStore.get`` lists them.
_DETAIL_ALERTS = (
    "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY incident_id ORDER BY starts_at_ns, id) AS nth"
    " FROM alerts WHERE incident_id IN ({marks})) WHERE nth <= ? ORDER BY incident_id, nth"
)


@dataclass(frozen=True, slots=True)
class Enrichment:
    status: str  # done | failed | skipped | dropped
    error: str | None = None
    expr: str | None = None
    value: float | None = None
    samples: list[dict[str, Any]] | None = None
    exemplar_trace_id: str | None = None


@dataclass(slots=True)
class ApplyResult:
    """What one notification did; the caller turns it into metrics and follow-up work."""

    alerts_new: int = 0
    alerts_resolved: int = 0
    alerts_deduplicated: int = 0
    created: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    opened: int = 0  # incidents that became firing (created firing)
    closed: int = 0  # incidents that went from firing to resolved

    def as_dict(self) -> dict[str, Any]:
        return {
            "alerts_new": self.alerts_new,
            "alerts_resolved": self.alerts_resolved,
            "alerts_deduplicated": self.alerts_deduplicated,
            "incidents_created": self.created,
            "incidents_changed": self.changed,
        }


@dataclass(slots=True)
class _NewEpisode:
    """An episode this notification starts: inserted as resolved when ``ends_at_ns`` is set."""

    starts_at_ns: int
    ends_at_ns: int | None
    alert: Alert  # the latest word on it in this notification (labels, annotations)


@dataclass(frozen=True, slots=True)
class _Open:
    """A firing episode: stored (its alert id and incident id), or started earlier in this notification."""

    starts_at_ns: int
    record: tuple[int, int] | _NewEpisode


@dataclass(slots=True)
class _Episodes:
    open: list[_Open] = field(default_factory=list)
    last_end: int | None = None  # endsAt of the latest closed episode


def _arrival_order(alert: Alert) -> tuple[str, int, bool, int]:
    return alert.fingerprint, alert.starts_at_ns, alert.status is Status.RESOLVED, alert.ends_at_ns or 0


@dataclass(frozen=True, slots=True)
class _Close:
    alert_id: int
    incident_id: int
    ends_at_ns: int
    alert: Alert  # the resolve (its annotations replace the stored ones)


@dataclass(slots=True)
class _Plan:
    new: list[_NewEpisode] = field(default_factory=list)
    closing: list[_Close] = field(default_factory=list)
    unchanged: int = 0  # repeats and late copies


def _plan(alerts: Iterable[Alert], episodes: dict[str, _Episodes], now_ns: int) -> _Plan:
    """What a notification's alerts do to their fingerprints' episodes (the rules in the module doc).

    One fingerprint's alerts are taken in time order, so duplicates and both ends of an episode in
    one notification fall out of the same rules as separate notifications would.
    """
    plan = _Plan()
    for alert in sorted(alerts, key=_arrival_order):
        state = episodes.setdefault(alert.fingerprint, _Episodes())
        if alert.status is Status.FIRING:
            if state.open or (state.last_end is not None and alert.starts_at_ns <= state.last_end):
                plan.unchanged += 1  # the open episode again, or a late copy of a closed one
                continue
            episode = _NewEpisode(alert.starts_at_ns, None, alert)
            plan.new.append(episode)
            state.open.append(_Open(alert.starts_at_ns, episode))
            continue
        end = _resolved_at(alert, now_ns)
        if state.open:
            if state.last_end is not None and end < min(o.starts_at_ns for o in state.open):
                plan.unchanged += 1  # a late copy of an earlier episode's resolve
                continue
            for episode_open in state.open:
                closed_at = max(end, episode_open.starts_at_ns)
                if isinstance(episode_open.record, _NewEpisode):
                    episode_open.record.ends_at_ns = closed_at
                    episode_open.record.alert = alert
                else:
                    alert_id, incident_id = episode_open.record
                    plan.closing.append(_Close(alert_id, incident_id, closed_at, alert))
            state.open = []
            state.last_end = max(end, state.last_end or end)
        elif state.last_end is not None and alert.starts_at_ns <= state.last_end:
            plan.unchanged += 1  # the resolve of an episode already closed
        else:
            plan.new.append(_NewEpisode(alert.starts_at_ns, end, alert))  # resolved before its firing arrived
            state.last_end = end
    return plan


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class IncidentStore:
    def __init__(self, path: Path, *, enrichment_enabled: bool = True) -> None:
        self.path = path
        self._enrichment_enabled = enrichment_enabled
        self._write: WriteConnection | None = None
        self._read: aiosqlite.Connection | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        create_private(self.path)  # alerts carry whatever rules put in labels and annotations
        write = await WriteConnection.open(self.path, _prepare_writer)
        try:
            read = await aiosqlite.connect(self.path, isolation_level=None)
            await read.execute("PRAGMA busy_timeout = 5000")
            await read.execute("PRAGMA query_only = ON")
            read.row_factory = aiosqlite.Row
        except BaseException:
            await write.close()
            raise
        self._write, self._read = write, read

    async def close(self) -> None:
        if self._read is not None:
            await self._read.close()
        if self._write is not None:
            await self._write.close()
        self._read = self._write = None

    @property
    def writer_connection(self) -> WriteConnection:
        if self._write is None:
            raise RuntimeError("store is not open")
        return self._write

    @property
    def _reader(self) -> aiosqlite.Connection:
        if self._read is None:
            raise RuntimeError("store is not open")
        return self._read

    # -- writes (run inside the writer's transaction) --------------------------------------------

    def apply_notification(self, conn: sqlite3.Connection, note: Notification, now_ns: int) -> ApplyResult:
        result = ApplyResult()
        episodes = self._episodes(conn, {alert.fingerprint for alert in note.alerts})
        plan = _plan(note.alerts, episodes, now_ns)
        new, closing = plan.new, plan.closing
        result.alerts_deduplicated = plan.unchanged
        touched: set[int] = set()
        created: int | None = None
        if new:
            incident_id = self._open_incident(conn, note.group_key)
            if incident_id is None:
                started = min(episode.starts_at_ns for episode in new)
                incident_id = created = self._create_incident(conn, note, started, now_ns)
            conn.executemany(
                "INSERT INTO alerts (incident_id, fingerprint, starts_at_ns, ends_at_ns, status, severity_rank,"
                " labels, annotations, generator_url, first_seen_at_ns, updated_at_ns)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        incident_id,
                        episode.alert.fingerprint,
                        episode.starts_at_ns,
                        episode.ends_at_ns,
                        Status.FIRING.value if episode.ends_at_ns is None else Status.RESOLVED.value,
                        episode.alert.severity_rank,
                        _dumps(episode.alert.labels),
                        _dumps(episode.alert.annotations),
                        episode.alert.generator_url,
                        now_ns,
                        now_ns,
                    )
                    for episode in new
                ],
            )
            result.alerts_new = len(new)
            touched.add(incident_id)
        if closing:
            conn.executemany(
                "UPDATE alerts SET status = 'resolved', ends_at_ns = ?, annotations = ?, updated_at_ns = ?"
                " WHERE id = ?",
                [(close.ends_at_ns, _dumps(close.alert.annotations), now_ns, close.alert_id) for close in closing],
            )
            result.alerts_resolved = len(closing)
            touched.update(close.incident_id for close in closing)
        if note.truncated_alerts:
            touched.update(self._record_truncation(conn, note, touched))
        if touched:
            opened, closed = self._refresh_incidents(conn, sorted(touched), note, now_ns, created)
            result.opened, result.closed = opened, closed
            result.changed = sorted(touched)
        if created is not None:
            result.created = [created]
        return result

    def _episodes(self, conn: sqlite3.Connection, fingerprints: set[str]) -> dict[str, _Episodes]:
        """Per fingerprint: its open episode (one; several only in databases from before migration 2)
        and the end of its latest closed one."""
        found: dict[str, _Episodes] = {}
        for chunk in _chunks(sorted(fingerprints)):
            marks = ",".join("?" * len(chunk))
            for fingerprint, alert_id, incident_id, starts_at, last_end in _write_rows(
                conn, _EPISODES.format(marks=marks), (*chunk, *chunk)
            ):
                episodes = found.setdefault(fingerprint, _Episodes())
                if alert_id is None:
                    episodes.last_end = last_end
                else:
                    episodes.open.append(_Open(starts_at, (alert_id, incident_id)))
        return found

    def _record_truncation(self, conn: sqlite3.Connection, note: Notification, touched: set[int]) -> set[int]:
        """Keep on the group's incident the most alerts Alertmanager left out of one notification."""
        ids = set(touched)
        open_id = self._open_incident(conn, note.group_key)
        if open_id is not None:
            ids.add(open_id)
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        rows = _write_rows(
            conn,
            f"UPDATE incidents SET truncated_alerts = ? WHERE id IN ({marks}) AND truncated_alerts < ?"  # noqa: S608
            " RETURNING id",
            [note.truncated_alerts, *sorted(ids), note.truncated_alerts],
        )
        return {int(row[0]) for row in rows}

    def _open_incident(self, conn: sqlite3.Connection, group_key: str) -> int | None:
        rows = _write_rows(
            conn,
            "SELECT id FROM incidents WHERE group_key = ? AND status = 'firing' ORDER BY id DESC LIMIT 1",
            (group_key,),
        )
        return int(rows[0][0]) if rows else None

    def _create_incident(self, conn: sqlite3.Connection, note: Notification, started_at_ns: int, now_ns: int) -> int:
        enrichment = "pending" if self._enrichment_enabled else "skipped"
        error = None if self._enrichment_enabled else "FIREDRILL_PROMETHEUS_URL is not set"
        rows = _write_rows(
            conn,
            "INSERT INTO incidents (group_key, receiver, status, alertname, service, severity, summary,"
            " started_at_ns, created_at_ns, updated_at_ns, group_labels, common_labels, common_annotations,"
            " external_url, runbook_url, dashboard_url, enrichment_status, enrichment_error)"
            " VALUES (?, ?, 'firing', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                note.group_key,
                note.receiver,
                note.label("alertname"),
                note.label("service"),
                note.label("severity"),
                note.annotation("summary"),
                started_at_ns,
                now_ns,
                now_ns,
                _dumps(note.group_labels),
                _dumps(note.common_labels),
                _dumps(note.common_annotations),
                note.external_url,
                note.annotation("runbook_url"),
                note.annotation("dashboard_url"),
                enrichment,
                error,
            ),
        )
        return int(rows[0][0])

    def _refresh_incidents(
        self, conn: sqlite3.Connection, ids: list[int], note: Notification, now_ns: int, created: int | None
    ) -> tuple[int, int]:
        marks = ",".join("?" * len(ids))
        aggregates = _write_rows(conn, _AGGREGATE.format(marks=marks), ids)
        updates = []
        opened = closed = 0
        for incident_id, before, total, firing, started, ended, rank in aggregates:
            status = Status.FIRING.value if firing else Status.RESOLVED.value
            previous = None if incident_id == created else before
            if status == Status.FIRING.value and previous is None:
                opened += 1
            if status == Status.RESOLVED.value and previous == Status.FIRING.value:
                closed += 1
            updates.append(
                (
                    status,
                    int(total),
                    int(firing or 0),
                    int(started),
                    None if firing else (ended if ended is not None else now_ns),
                    RANK_SEVERITY.get(int(rank or 0)),
                    note.annotation("runbook_url"),
                    note.annotation("dashboard_url"),
                    note.annotation("summary"),
                    now_ns,
                    incident_id,
                )
            )
        conn.executemany(
            "UPDATE incidents SET status = ?, alerts_total = ?, alerts_firing = ?, started_at_ns = ?,"
            " resolved_at_ns = ?, severity = COALESCE(?, severity), runbook_url = COALESCE(runbook_url, ?),"
            " dashboard_url = COALESCE(dashboard_url, ?), summary = COALESCE(summary, ?), updated_at_ns = ?,"
            " updates = updates + 1, revision = revision + 1 WHERE id = ?",
            updates,
        )
        return opened, closed

    def record_enrichment(
        self, conn: sqlite3.Connection, incident_id: int, enrichment: Enrichment, now_ns: int
    ) -> None:
        conn.execute(
            "UPDATE incidents SET enrichment_status = ?, enrichment_error = ?, enriched_at_ns = ?, expr = ?,"
            " expr_value = ?, expr_samples = ?, exemplar_trace_id = ?, updated_at_ns = ?, revision = revision + 1"
            " WHERE id = ?",
            (
                enrichment.status,
                enrichment.error,
                now_ns,
                enrichment.expr,
                enrichment.value,
                _dumps(enrichment.samples) if enrichment.samples is not None else None,
                enrichment.exemplar_trace_id,
                now_ns,
                incident_id,
            ),
        )

    def mark_exported(self, conn: sqlite3.Connection, revisions: list[tuple[int, int]]) -> None:
        conn.executemany(
            "UPDATE incidents SET exported_revision = max(exported_revision, ?) WHERE id = ?",
            [(revision, incident_id) for incident_id, revision in revisions],
        )

    # -- reads -----------------------------------------------------------------------------------

    async def ping(self) -> dict[str, Any]:
        rows = await _rows(self._reader, "SELECT count(*) FROM incidents")
        return {"ok": True, "incidents": int(rows[0][0])}

    async def open_count(self) -> int:
        rows = await _rows(self._reader, "SELECT count(*) FROM incidents WHERE status = 'firing'")
        return int(rows[0][0])

    async def unexported(self) -> list[int]:
        rows = await _rows(self._reader, "SELECT id FROM incidents WHERE exported_revision < revision")
        return [int(row[0]) for row in rows]

    async def pending_enrichment(self, limit: int) -> list[int]:
        rows = await _rows(
            self._reader,
            "SELECT id FROM incidents WHERE enrichment_status = 'pending' ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [int(row[0]) for row in rows]

    async def get(self, incident_id: int, *, with_alerts: bool = True) -> dict[str, Any] | None:
        rows = await _rows(self._reader, "SELECT * FROM incidents WHERE id = ?", (incident_id,))
        if not rows:
            return None
        document = incident_document(rows[0])
        if with_alerts:
            alerts = await _rows(
                self._reader,
                "SELECT * FROM alerts WHERE incident_id = ? ORDER BY starts_at_ns, id LIMIT ?",
                (incident_id, MAX_DETAIL_ALERTS),
            )
            document["alerts"] = [alert_document(alert) for alert in alerts]
        return document

    async def get_many(self, incident_ids: Iterable[int]) -> list[dict[str, Any]]:
        """Incidents with their alerts, as ``get`` gives them, in two queries per chunk of ids (the
        exporter's read: one trip to the reader's thread per query instead of two per incident)."""
        documents: list[dict[str, Any]] = []
        for chunk in _chunks(sorted(set(incident_ids))):
            marks = ",".join("?" * len(chunk))
            rows = await _rows(self._reader, f"SELECT * FROM incidents WHERE id IN ({marks}) ORDER BY id", chunk)  # noqa: S608
            alerts = await _rows(self._reader, _DETAIL_ALERTS.format(marks=marks), [*chunk, MAX_DETAIL_ALERTS])
            by_incident: dict[int, list[dict[str, Any]]] = {}
            for alert in alerts:
                by_incident.setdefault(int(alert["incident_id"]), []).append(alert_document(alert))
            for row in rows:
                document = incident_document(row)
                document["alerts"] = by_incident.get(int(row["id"]), [])
                documents.append(document)
        return documents

    async def list(
        self, *, status: str | None, service: str | None, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if service is not None:
            where.append("service = ?")
            params.append(service)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        counted = await _rows(self._reader, f"SELECT count(*) FROM incidents{clause}", params)  # noqa: S608
        rows = await _rows(
            self._reader,
            f"SELECT * FROM incidents{clause} ORDER BY started_at_ns DESC, id DESC LIMIT ? OFFSET ?",  # noqa: S608
            [*params, limit, offset],
        )
        return [incident_document(item) for item in rows], int(counted[0][0])

    async def counts(self) -> dict[str, int]:
        """Totals for tests, benchmarks and the operator: incidents by status and alerts."""
        result: dict[str, int] = {"firing": 0, "resolved": 0}
        for status, count in await _rows(self._reader, "SELECT status, count(*) FROM incidents GROUP BY status"):
            result[str(status)] = int(count)
        (row,) = await _rows(
            self._reader, "SELECT count(*), count(DISTINCT fingerprint || '@' || starts_at_ns) FROM alerts"
        )
        result["alerts"] = int(row[0])
        result["alerts_distinct"] = int(row[1])
        result["incidents"] = result["firing"] + result["resolved"]
        return result


def _write_rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    return conn.execute(sql, params).fetchall()


async def _rows(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """Execute and fetch everything in one trip to the connection's thread."""
    return list(await conn.execute_fetchall(sql, params))


def _prepare_writer(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is on disk (WAL fsynced) before Alertmanager hears 200.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    migrate(conn)


def _resolved_at(alert: Alert, now_ns: int) -> int:
    """A resolve's endsAt; now when Alertmanager left it unset."""
    return alert.ends_at_ns if alert.ends_at_ns is not None else max(now_ns, alert.starts_at_ns)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _columns(row: sqlite3.Row) -> dict[str, Any]:
    """A row's values by column name. ``sqlite3.Row`` finds a name by a case-insensitive scan of
    its columns on every lookup; the documents below look up most of ~30 columns, for every
    incident the exporter writes."""
    return dict(zip(row.keys(), row, strict=True))


def incident_document(record: sqlite3.Row) -> dict[str, Any]:
    row = _columns(record)
    started, resolved = row["started_at_ns"], row["resolved_at_ns"]
    return {
        "id": row["id"],
        "status": row["status"],
        "group_key": row["group_key"],
        "receiver": row["receiver"],
        "alertname": row["alertname"],
        "service": row["service"],
        "severity": row["severity"],
        "summary": row["summary"],
        "started_at": format_time(started),
        "resolved_at": format_time(resolved),
        "duration_seconds": (resolved - started) / NS_PER_S if resolved is not None else None,
        "created_at": format_time(row["created_at_ns"]),
        "updated_at": format_time(row["updated_at_ns"]),
        "alerts_total": row["alerts_total"],
        "alerts_firing": row["alerts_firing"],
        "updates": row["updates"],
        "runbook_url": row["runbook_url"],
        "dashboard_url": row["dashboard_url"],
        "external_url": row["external_url"],
        "group_labels": _loads(row["group_labels"]) or {},
        "common_labels": _loads(row["common_labels"]) or {},
        "common_annotations": _loads(row["common_annotations"]) or {},
        "enrichment": {
            "status": row["enrichment_status"],
            "error": row["enrichment_error"],
            "enriched_at": format_time(row["enriched_at_ns"]),
            "expr": row["expr"],
            "value": row["expr_value"],
            "samples": _loads(row["expr_samples"]),
            "exemplar_trace_id": row["exemplar_trace_id"],
        },
        "truncated_alerts": row["truncated_alerts"],
        "revision": row["revision"],
    }


def alert_document(record: sqlite3.Row) -> dict[str, Any]:
    row = _columns(record)
    return {
        "fingerprint": row["fingerprint"],
        "status": row["status"],
        "starts_at": format_time(row["starts_at_ns"]),
        "ends_at": format_time(row["ends_at_ns"]),
        "labels": _loads(row["labels"]) or {},
        "annotations": _loads(row["annotations"]) or {},
        "generator_url": row["generator_url"],
        "first_seen_at": format_time(row["first_seen_at_ns"]),
        "updated_at": format_time(row["updated_at_ns"]),
    }
