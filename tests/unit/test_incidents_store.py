"""The repository and the group-commit writer below the HTTP layer: restarts, batches, failures."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from prometheus_client import CollectorRegistry

from services.common.http_errors import http_status
from services.common.waiting import wait_until_async
from services.incidents import store as store_module
from services.incidents.config import IncidentsConfig
from services.incidents.errors import StoreUnavailable
from services.incidents.metrics import IncidentMetrics
from services.incidents.models import NS_PER_S, Status
from services.incidents.payloads import AlertSpec, group_notification
from services.incidents.receiver import CommittedBodies, CommittedBody, Receiver
from services.incidents.schema import MIGRATIONS
from services.incidents.store import IncidentStore
from services.incidents.validation import validate
from services.incidents.writer import GroupCommitWriter

T0 = 1_714_564_800 * NS_PER_S


def note(service: str = "response", start: int = T0, instance: str = "a", end: int | None = None) -> Any:
    spec = AlertSpec({"alertname": "ServiceDown", "service": service, "instance": instance}, start, end)
    return validate(group_notification([spec]))


def config(tmp_path: Path) -> IncidentsConfig:
    return IncidentsConfig.from_env({"FIREDRILL_STATE_DIR": str(tmp_path), "FIREDRILL_DATA_DIR": str(tmp_path / "d")})


async def test_a_restart_keeps_everything_and_repeats_stay_deduplicated(tmp_path: Path) -> None:
    receiver = Receiver(config(tmp_path), IncidentMetrics(CollectorRegistry()))
    await receiver.start()
    await receiver.receive(note())
    await receiver.receive(note(service="hello"))
    await receiver.stop()

    registry = CollectorRegistry()
    again = Receiver(config(tmp_path), IncidentMetrics(registry))
    await again.start()
    try:
        result = await again.receive(note())
        assert result.alerts_deduplicated == 1
        assert result.alerts_new == 0
        counts = await again.store.counts()
        assert counts["incidents"] == 2
        assert counts["alerts"] == 2
        assert registry.get_sample_value("incidents_open") == 2  # restored from the store at start
    finally:
        await again.stop()


async def test_files_behind_the_store_are_rewritten_at_start(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    receiver = Receiver(cfg, IncidentMetrics(CollectorRegistry()))
    await receiver.start()
    await receiver.receive(note())
    await receiver.stop()  # a clean stop writes the files
    file = cfg.export_dir / "incident-1.json"
    file.unlink()
    # Simulate a crash after a commit and before its file was written: the store is ahead.
    async with aiosqlite.connect(cfg.database) as conn:
        await conn.execute("UPDATE incidents SET status = 'resolved', revision = revision + 1")
        await conn.commit()
    again = Receiver(cfg, IncidentMetrics(CollectorRegistry()))
    await again.start()
    try:
        await wait_until_async(
            lambda: again.exporter is not None and again.exporter.pending == 0 and file.exists(),
            timeout_s=5,
            interval_s=0.01,
            what="the store's incidents exported again",
        )
        assert json.loads(file.read_text())["status"] == "resolved"
    finally:
        await again.stop()


async def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "x.sqlite3")
    await store.open()
    await store.close()
    await store.open()
    try:
        run = store.writer_connection.run
        assert await run(lambda conn: conn.execute("PRAGMA user_version").fetchone()) == (len(MIGRATIONS),)
        assert await run(lambda conn: conn.execute("PRAGMA journal_mode").fetchone()) == ("wal",)
    finally:
        await store.close()


async def test_a_database_from_newer_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    async with aiosqlite.connect(path) as conn:
        await conn.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="newer"):
        await IncidentStore(path).open()


async def _version_1_database(path: Path, incidents: list[tuple[str, list[tuple[str, str, int, int | None]]]]) -> None:
    """A database at schema version 1 holding what the code of that version stored.

    ``incidents``: (group key, alerts as (fingerprint, status, startsAt, endsAt)); each incident's
    totals are what that code kept (firing while any of its alerts fired).
    """
    async with aiosqlite.connect(path) as conn:
        await conn.executescript(MIGRATIONS[0])
        await conn.execute("PRAGMA user_version = 1")
        for group_key, alerts in incidents:
            firing = sum(status == "firing" for _, status, _, _ in alerts)
            ends = [end for _, _, _, end in alerts if end is not None]
            cursor = await conn.execute(
                "INSERT INTO incidents (group_key, receiver, status, alertname, service, started_at_ns,"
                " resolved_at_ns, created_at_ns, updated_at_ns, group_labels, common_labels, common_annotations,"
                " alerts_total, alerts_firing, enrichment_status) VALUES (?, 'incidents', ?, 'ServiceDown', 'response',"
                " ?, ?, ?, ?, '{}', '{}', '{}', ?, ?, 'skipped')",
                (
                    group_key,
                    "firing" if firing else "resolved",
                    min(start for _, _, start, _ in alerts),
                    None if firing else max(ends),
                    T0,
                    T0,
                    len(alerts),
                    firing,
                ),
            )
            await conn.executemany(
                "INSERT INTO alerts (incident_id, fingerprint, starts_at_ns, ends_at_ns, status, labels, annotations,"
                " first_seen_at_ns, updated_at_ns) VALUES (?, ?, ?, ?, ?, '{}', '{}', ?, ?)",
                [(cursor.lastrowid, fp, start, end, status, T0, T0) for fp, status, start, end in alerts],
            )
        await conn.commit()


async def test_upgrading_closes_incidents_kept_firing_by_a_differently_rounded_resolve(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.data_dir.mkdir(parents=True)
    minute = 60 * NS_PER_S
    await _version_1_database(
        cfg.database,
        [
            # Version 1 stored the resolve as a second alert: the incident stayed firing.
            ("g-stuck", [("fp-a", "firing", T0 + 123_456_789, None), ("fp-a", "resolved", T0, T0 + minute)]),
            ("g-b", [("fp-b", "resolved", T0, T0 + minute)]),
            ("g-b", [("fp-b", "firing", T0 + 60 * minute, None)]),  # fired again later: rightly open
            ("g-c", [("fp-c", "firing", T0, None), ("fp-d", "firing", T0, None)]),
        ],
    )
    receiver = Receiver(cfg, IncidentMetrics(CollectorRegistry()))
    await receiver.start()
    try:
        counts = await receiver.store.counts()
        assert (counts["incidents"], counts["alerts"]) == (4, 6)  # nothing lost
        assert (counts["firing"], counts["resolved"]) == (2, 2)
        stuck = await receiver.store.get(1)
        assert stuck is not None
        assert (stuck["status"], stuck["alerts_firing"], stuck["alerts_total"]) == ("resolved", 0, 2)
        assert stuck["resolved_at"] == "2024-05-01T12:01:00Z"
        assert stuck["truncated_alerts"] == 0
        assert [a["status"] for a in stuck["alerts"]] == ["resolved", "resolved"]
        assert [(await receiver.store.get(n, with_alerts=False) or {}).get("status") for n in (2, 3, 4)] == [
            "resolved",
            "firing",
            "firing",
        ]
        file = cfg.export_dir / "incident-1.json"

        def exported_resolved() -> bool:
            return file.exists() and json.loads(file.read_text())["status"] == "resolved"

        await wait_until_async(exported_resolved, timeout_s=10, what="incident-1.json rewritten")
        # The migrated store follows the new rules: a resolve with whole seconds closes fp-b's episode.
        b_resolve = AlertSpec({"alertname": "ServiceDown", "service": "response"}, T0 + 60 * minute, T0 + 61 * minute)
        body = group_notification([b_resolve])
        body["groupKey"] = "g-b"
        body["alerts"][0]["fingerprint"] = "fp-b"
        result = await receiver.receive(validate(body))
        assert (result.alerts_new, result.alerts_resolved) == (0, 1)
        assert ((await receiver.store.get(3, with_alerts=False)) or {}).get("status") == "resolved"
    finally:
        await receiver.stop()


async def test_group_commit_batches_and_isolates_a_failing_operation(tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "x.sqlite3")
    await store.open()
    sizes: list[int] = []
    writer = GroupCommitWriter(store.writer_connection, max_batch=64, on_batch=sizes.append)
    writer.start()
    try:

        def good(conn: sqlite3.Connection, n: int) -> int:
            return store.apply_notification(conn, note(instance=f"i{n}"), T0).alerts_new

        def bad(conn: sqlite3.Connection) -> None:
            store.apply_notification(conn, note(instance="doomed"), T0)
            raise ValueError("boom")

        def job(n: int) -> Any:
            return lambda conn: good(conn, n)

        jobs: list[Any] = [writer.submit(job(n)) for n in range(20)]
        jobs.insert(10, writer.submit(bad))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        assert isinstance(results[10], ValueError)
        assert [r for i, r in enumerate(results) if i != 10] == [1] * 20
        assert sum(sizes) == 21
        assert len(sizes) < 21  # several operations shared a commit
        counts = await store.counts()
        assert counts["alerts"] == 20  # the failing operation left nothing behind
    finally:
        await writer.stop()
        await store.close()


async def test_a_stopped_writer_refuses_with_503(tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "x.sqlite3")
    await store.open()
    writer = GroupCommitWriter(store.writer_connection)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await writer.submit(lambda conn: store.apply_notification(conn, note(), T0))
        assert http_status(caught.value) == 503
    finally:
        await store.close()


async def test_a_failed_commit_fails_the_whole_batch(tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "x.sqlite3")
    await store.open()
    writer = GroupCommitWriter(store.writer_connection)
    writer.start()
    try:

        def leaves_a_foreign_key_broken(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA defer_foreign_keys = ON")
            conn.execute(
                "INSERT INTO alerts (incident_id, fingerprint, starts_at_ns, status, labels, annotations,"
                " first_seen_at_ns, updated_at_ns) VALUES (999, 'f', 1, 'firing', '{}', '{}', 1, 1)"
            )

        with pytest.raises(StoreUnavailable):
            await writer.submit(leaves_a_foreign_key_broken)
        assert (await store.counts())["alerts"] == 0
        assert writer.running  # the next batch is served
        await writer.submit(lambda conn: store.apply_notification(conn, note(), T0))
        assert (await store.counts())["alerts"] == 1
    finally:
        await writer.stop()
        await store.close()


async def test_an_operation_is_answered_only_once_its_batch_is_committed(tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "x.sqlite3")
    await store.open()
    writer = GroupCommitWriter(store.writer_connection)
    writer.start()
    entered, release = threading.Event(), threading.Event()

    def held(conn: sqlite3.Connection) -> None:
        entered.set()
        release.wait(timeout=30)

    try:
        stored = asyncio.create_task(writer.submit(lambda conn: store.apply_notification(conn, note(), T0)))
        holding = asyncio.create_task(writer.submit(held))  # the same batch, after it
        await wait_until_async(entered.is_set, timeout_s=10, interval_s=0.005, what="the batch is running")
        assert not stored.done()  # its statements ran, but the batch has not committed
        assert (await store.counts())["alerts"] == 0  # and nothing of it is visible
        release.set()
        assert (await stored).alerts_new == 1
        await holding
        assert (await store.counts())["alerts"] == 1
    finally:
        release.set()
        await writer.stop()
        await store.close()


async def test_identical_bodies_in_flight_together_both_go_through_the_store(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    receiver = Receiver(config(tmp_path), IncidentMetrics(registry))
    await receiver.start()
    try:
        raw = json.dumps(group_notification([AlertSpec({"alertname": "A", "service": "s"}, T0)])).encode()
        first, second = await asyncio.gather(receiver.receive_body(raw), receiver.receive_body(raw))
        # Neither was known as committed when it arrived: the store deduplicated the second.
        assert (first.repeat, second.repeat) == (False, False)
        assert sorted((first.result.alerts_new, second.result.alerts_new)) == [0, 1]
        third = await receiver.receive_body(raw)
        assert third.repeat
        assert third.result.alerts_deduplicated == 1
        assert (await receiver.store.counts())["alerts"] == 1
    finally:
        await receiver.stop()


async def test_a_body_whose_commit_failed_is_not_remembered(tmp_path: Path) -> None:
    receiver = Receiver(config(tmp_path), IncidentMetrics(CollectorRegistry()))
    await receiver.start()
    try:
        raw = json.dumps(group_notification([AlertSpec({"alertname": "A", "service": "s"}, T0)])).encode()
        assert receiver.writer is not None
        await receiver.writer.stop()  # every write now refused with 503
        with pytest.raises(StoreUnavailable):
            await receiver.receive_body(raw)
        assert len(receiver.committed) == 0
        receiver.writer.start()
        assert not (await receiver.receive_body(raw)).repeat
        assert (await receiver.store.counts())["alerts"] == 1
    finally:
        await receiver.stop()


def test_committed_bodies_forget_the_least_recently_seen_first() -> None:
    bodies = CommittedBodies(capacity=2)
    entry = CommittedBody(Status.FIRING, 1, 0)
    a, b, c = (bodies.digest(raw) for raw in (b"a", b"b", b"c"))
    bodies.add(a, entry)
    bodies.add(b, entry)
    assert bodies.get(a) == entry  # a is now the most recently seen
    bodies.add(c, entry)
    assert (bodies.get(a), bodies.get(b), bodies.get(c)) == (entry, None, entry)
    assert len(bodies) == 2


async def test_get_many_reads_incidents_as_get_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = Receiver(config(tmp_path), IncidentMetrics(CollectorRegistry()))
    await receiver.start()
    try:
        for service, alerts in (("a", 3), ("b", 1), ("c", 2)):
            specs = [
                AlertSpec({"alertname": "A", "service": service, "i": str(k)}, T0 + (alerts - k)) for k in range(alerts)
            ]
            await receiver.receive(validate(group_notification(specs)))
        monkeypatch.setattr(store_module, "MAX_DETAIL_ALERTS", 2)  # a detail lists the first alerts only
        one_by_one = [await receiver.store.get(n) for n in (1, 2, 3)]
        assert [len(document["alerts"]) for document in one_by_one if document is not None] == [2, 1, 2]
        assert await receiver.store.get_many([3, 1, 2, 1, 99]) == one_by_one  # by id; unknown ids left out
    finally:
        await receiver.stop()
