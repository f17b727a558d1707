"""kill -9 the incident receiver mid-burst, restart it, re-send what was not acknowledged.

What Alertmanager relies on: a 200 means the notification is stored; anything else is retried.
So after the crash and the re-sends, every alert sent must be stored exactly once, the incident
count must be exact, and every incident's JSON file must agree with the store.

Needs no platform: the receiver runs as its own process on a free loopback port with a
temporary data directory.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.incidents_burst import Delivery, ReceiverProcess, build_workload, files_report, send, store_report

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

NOTIFICATIONS = 1_200
DUPLICATES = 0.3
LANES = 12
KILL_AFTER_ACKS = 400  # about a third of the burst


def test_kill_9_mid_burst_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    work = build_workload(NOTIFICATIONS, DUPLICATES, lanes=LANES, seed=11)
    assert work.duplicates == round(NOTIFICATIONS * DUPLICATES)
    receiver = ReceiverProcess(tmp_path)
    receiver.start()
    try:
        delivery = Delivery()
        killed = False

        def crash_when_enough_acked() -> bool:
            nonlocal killed
            if not killed and len(delivery.acked) >= KILL_AFTER_ACKS:
                receiver.kill()  # SIGKILL while the other lanes have requests in flight
                killed = True
            return killed

        asyncio.run(send(receiver.url, work.lanes, delivery, deadline_s=120, stop_lane=crash_when_enough_acked))
        assert killed, "the burst ended before the kill"
        acked_before_crash = len(delivery.acked)
        assert KILL_AFTER_ACKS <= acked_before_crash < NOTIFICATIONS

        receiver.start()  # same data directory, same port
        # Alertmanager's retries: everything not answered 200, in order per lane, until all are.
        for _ in range(5):
            if len(delivery.acked) == work.total:
                break
            pending = [[item for item in lane if item.index not in delivery.acked] for lane in work.lanes]
            asyncio.run(send(receiver.url, pending, delivery, deadline_s=120))
        assert len(delivery.acked) == work.total

        receiver.wait_files_current(timeout_s=60)
        store = store_report(receiver.data_dir, work)
        assert store["lost"] == 0
        assert store["unexpected"] == 0
        assert store["duplicates_created"] == 0
        assert store["alerts_stored"] == store["alerts_expected"] == len(work.keys)
        assert store["incidents_stored"] == work.episodes
        assert store["incidents_resolved"] == work.resolved_episodes

        files = files_report(receiver.url, receiver.data_dir)
        assert files["files"] == files["incidents_via_api"] == work.episodes
        assert files["files_mismatched"] == 0
    finally:
        receiver.stop()


def test_a_graceful_stop_finishes_in_flight_notifications(tmp_path: Path) -> None:
    work = build_workload(300, 0.0, lanes=6, seed=3)
    receiver = ReceiverProcess(tmp_path)
    receiver.start()
    try:
        delivery = Delivery()
        stopped = False

        def stop_when_some_acked() -> bool:
            nonlocal stopped
            if not stopped and len(delivery.acked) >= 100 and receiver.process is not None:
                receiver.process.terminate()  # SIGTERM: stop accepting, finish in-flight, exit
                stopped = True
            return stopped

        asyncio.run(send(receiver.url, work.lanes, delivery, deadline_s=60, stop_lane=stop_when_some_acked))
        assert receiver.process is not None
        assert receiver.process.wait(timeout=30) == 0
        receiver.start()
        pending = [[item for item in lane if item.index not in delivery.acked] for lane in work.lanes]
        asyncio.run(send(receiver.url, pending, delivery, deadline_s=60))
        assert len(delivery.acked) == work.total
        store = store_report(receiver.data_dir, work)
        assert (store["lost"], store["duplicates_created"]) == (0, 0)
        assert store["incidents_stored"] == work.episodes
    finally:
        receiver.stop()
