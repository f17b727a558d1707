"""The SQLite schema, as numbered migrations applied in order at start-up.

``PRAGMA user_version`` records the last migration applied; each migration runs in its own
transaction together with the version bump, so a crash mid-migration leaves the previous version.
Add a migration by appending to ``MIGRATIONS``; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: incidents (one per Alertmanager group episode) and their alerts.
    """
    CREATE TABLE incidents (
        id                  INTEGER PRIMARY KEY AUTOINCREMENT,
        group_key           TEXT NOT NULL,
        receiver            TEXT NOT NULL,
        status              TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
        alertname           TEXT,
        service             TEXT,
        severity            TEXT,
        summary             TEXT,
        started_at_ns       INTEGER NOT NULL,
        resolved_at_ns      INTEGER,
        created_at_ns       INTEGER NOT NULL,
        updated_at_ns       INTEGER NOT NULL,
        group_labels        TEXT NOT NULL,
        common_labels       TEXT NOT NULL,
        common_annotations  TEXT NOT NULL,
        external_url        TEXT,
        runbook_url         TEXT,
        dashboard_url       TEXT,
        alerts_total        INTEGER NOT NULL DEFAULT 0,
        alerts_firing       INTEGER NOT NULL DEFAULT 0,
        updates             INTEGER NOT NULL DEFAULT 0,
        enrichment_status   TEXT NOT NULL DEFAULT 'pending',
        enrichment_error    TEXT,
        enriched_at_ns      INTEGER,
        expr                TEXT,
        expr_value          REAL,
        expr_samples        TEXT,
        exemplar_trace_id   TEXT,
        revision            INTEGER NOT NULL DEFAULT 1,
        exported_revision   INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX incidents_open_group ON incidents (group_key) WHERE status = 'firing';
    CREATE INDEX incidents_by_start ON incidents (started_at_ns DESC, id DESC);
    CREATE INDEX incidents_by_status ON incidents (status, started_at_ns DESC, id DESC);
    CREATE INDEX incidents_by_service ON incidents (service, started_at_ns DESC, id DESC);
    CREATE INDEX incidents_unexported ON incidents (id) WHERE exported_revision < revision;
    CREATE INDEX incidents_unenriched ON incidents (id) WHERE enrichment_status = 'pending';

    CREATE TABLE alerts (
        id                  INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id         INTEGER NOT NULL REFERENCES incidents (id),
        fingerprint         TEXT NOT NULL,
        starts_at_ns        INTEGER NOT NULL,
        ends_at_ns          INTEGER,
        status              TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
        severity_rank       INTEGER NOT NULL DEFAULT 0,
        labels              TEXT NOT NULL,
        annotations         TEXT NOT NULL,
        generator_url       TEXT,
        first_seen_at_ns    INTEGER NOT NULL,
        updated_at_ns       INTEGER NOT NULL,
        UNIQUE (fingerprint, starts_at_ns)
    );
    CREATE INDEX alerts_by_incident ON alerts (incident_id, status);
    """,
    # 2: an alert is its fingerprint within one firing episode (services/incidents/store.py), not
    # (fingerprint, exact startsAt). Close the firing records that a resolve of the same fingerprint
    # ended after they started (stored apart when the two startsAt differed in precision), then the
    # incidents those kept firing; their revision moves, so their files are rewritten. And record
    # how many alerts Alertmanager left out (webhook max_alerts) on the incident. Changed rows are
    # stamped with SQLite's clock as epoch nanoseconds (millisecond resolution).
    """
    ALTER TABLE incidents ADD COLUMN truncated_alerts INTEGER NOT NULL DEFAULT 0;

    UPDATE alerts SET
        status = 'resolved',
        ends_at_ns = (
            SELECT min(r.ends_at_ns) FROM alerts AS r
            WHERE r.fingerprint = alerts.fingerprint AND r.status = 'resolved' AND r.ends_at_ns >= alerts.starts_at_ns
        ),
        updated_at_ns = (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) * 1000000)
    WHERE status = 'firing' AND EXISTS (
        SELECT 1 FROM alerts AS r
        WHERE r.fingerprint = alerts.fingerprint AND r.status = 'resolved' AND r.ends_at_ns >= alerts.starts_at_ns
    );

    UPDATE incidents SET
        alerts_firing = (
            SELECT count(*) FROM alerts WHERE alerts.incident_id = incidents.id AND alerts.status = 'firing'
        ),
        updated_at_ns = (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) * 1000000),
        updates = updates + 1,
        revision = revision + 1
    WHERE status = 'firing' AND alerts_firing != (
        SELECT count(*) FROM alerts WHERE alerts.incident_id = incidents.id AND alerts.status = 'firing'
    );

    UPDATE incidents SET
        status = 'resolved',
        resolved_at_ns = (SELECT max(ends_at_ns) FROM alerts WHERE alerts.incident_id = incidents.id)
    WHERE status = 'firing' AND alerts_firing = 0
        AND EXISTS (SELECT 1 FROM alerts WHERE alerts.incident_id = incidents.id);
    """,
)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest schema; returns the version it is at."""
    row = conn.execute("PRAGMA user_version").fetchone()
    current = int(row[0]) if row else 0
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {current} is newer than this code knows ({len(MIGRATIONS)}); refusing to run"
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
