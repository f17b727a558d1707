"""FileLeaderElection (fcntl) and the run_while_leader / Leadership helpers."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest

from scripts.processes import spawn
from services.common.leader import FileLeaderElection, Leadership, run_while_leader, wait_for_leadership
from services.common.waiting import wait_until_async


async def test_only_one_file_lock_holder(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "report.lock"
    a = FileLeaderElection(path, holder_id="a")
    b = FileLeaderElection(path, holder_id="b")
    assert await a.acquire()
    assert await a.acquire()  # idempotent for the holder
    assert not await b.acquire()
    assert a.holder() == "a"
    assert await a.renew()
    await a.release()
    await a.release()  # idempotent
    assert await b.acquire()
    assert b.holder() == "b"
    await b.release()


async def test_lock_held_by_another_process_blocks_until_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    script = textwrap.dedent(
        f"""
        import fcntl, os, signal
        fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        signal.pause()
        """
    )
    holder = await asyncio.to_thread(spawn, "lock-holder", [sys.executable, "-c", script], tmp_path / "holder.log")

    def locked() -> bool:
        if not holder.running:
            raise AssertionError(f"the lock holder exited: {holder.log_file.read_text()}")
        return holder.log_file.read_text().strip() == "locked"

    try:
        await wait_until_async(locked, timeout_s=10, interval_s=0.02, what="the other process holds the lock")
        me = FileLeaderElection(path, holder_id="me")
        assert not await me.acquire()
        await asyncio.to_thread(holder.kill)  # the kernel drops a dead process's lock
        assert await wait_for_leadership(me, retry_s=0.05)
        await me.release()
    finally:
        await asyncio.to_thread(holder.kill)


async def test_renew_fails_when_the_lock_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    a = FileLeaderElection(path)
    assert await a.acquire()
    path.unlink()
    assert not await a.renew()
    assert not a.is_leader
    b = FileLeaderElection(path)
    assert await b.acquire()
    await b.release()


async def test_run_while_leader_cancels_the_task_on_loss(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    election = FileLeaderElection(path)
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    runner = asyncio.create_task(run_while_leader(election, forever, renew_every_s=0.02))
    await asyncio.wait_for(started.wait(), 5)
    path.unlink()  # lose the lock
    assert await asyncio.wait_for(runner, 5) is False
    assert not election.is_leader


async def test_run_while_leader_returns_task_result_and_releases(tmp_path: Path) -> None:
    election = FileLeaderElection(tmp_path / "job.lock")
    ran: list[int] = []

    async def once() -> None:
        ran.append(1)

    assert await run_while_leader(election, once) is True
    assert ran == [1]
    assert not election.is_leader
    assert await FileLeaderElection(tmp_path / "job.lock").acquire()


async def test_run_while_leader_propagates_task_errors_and_releases(tmp_path: Path) -> None:
    election = FileLeaderElection(tmp_path / "job.lock")

    async def boom() -> None:
        raise RuntimeError("job failed")

    with pytest.raises(RuntimeError, match="job failed"):
        await run_while_leader(election, boom)
    assert not election.is_leader


async def test_stop_event_ends_the_campaign(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    holder = FileLeaderElection(path)
    assert await holder.acquire()
    stop = asyncio.Event()
    ran: list[int] = []

    async def job() -> None:
        ran.append(1)

    waiting = asyncio.create_task(
        run_while_leader(FileLeaderElection(path), job, retry_s=0.05, stop=stop),
    )
    stop.set()
    assert await asyncio.wait_for(waiting, 5) is False
    assert ran == []
    await holder.release()


async def test_leadership_context_manager(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    election = FileLeaderElection(path)
    async with Leadership(election) as held:
        assert held.is_leader
        assert not await FileLeaderElection(path).acquire()
    assert not election.is_leader
