"""Group commit: many writes, one transaction, one fsync; every caller answered after the commit.

Callers ``submit`` an operation (a coroutine function taking the write connection). One task
takes whatever is queued (up to ``max_batch``), runs each operation inside its own SAVEPOINT of a
single ``BEGIN IMMEDIATE`` transaction, commits, and only then hands each caller its result. So
a webhook is answered 200 only once its notification is durable, while a burst of notifications
costs one fsync per batch instead of one per notification. An operation that fails is rolled
back to its savepoint alone; a failed commit fails every operation of the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiosqlite

from services.incidents.errors import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[aiosqlite.Connection], Awaitable[Any]]


@dataclass(slots=True)
class _Job:
    operation: Operation
    future: asyncio.Future[Any]


class GroupCommitWriter:
    def __init__(
        self,
        conn: aiosqlite.Connection,
        *,
        max_batch: int = 256,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._conn = conn
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=max_batch * 4)
        self._task: asyncio.Task[None] | None = None
        self._on_batch = on_batch
        self.batches = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="incidents-writer")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Finish everything already submitted, then stop."""
        if self._task is None:
            return
        await self._queue.put(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, operation: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        if not self.running:
            raise StoreUnavailable("the incident store is not accepting writes")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(operation, future))
        return await asyncio.shield(future)

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            jobs = [first]
            while len(jobs) < self._max_batch and not self._queue.empty():
                job = self._queue.get_nowait()
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
            await self._commit(jobs)

    async def _commit(self, jobs: list[_Job]) -> None:
        conn = self._conn
        outcomes: list[tuple[bool, Any]] = []
        try:
            await conn.execute("BEGIN IMMEDIATE")
            for index, job in enumerate(jobs):
                savepoint = f"op{index}"
                await conn.execute(f"SAVEPOINT {savepoint}")
                try:
                    outcomes.append((True, await job.operation(conn)))
                    await conn.execute(f"RELEASE {savepoint}")
                except Exception as exc:
                    log.exception("write operation failed; rolled back alone")
                    await conn.execute(f"ROLLBACK TO {savepoint}")
                    await conn.execute(f"RELEASE {savepoint}")
                    outcomes.append((False, exc))
            await conn.execute("COMMIT")
        except Exception as exc:
            log.exception("commit failed; the batch is refused", extra={"batch": len(jobs)})
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            failure = StoreUnavailable(f"could not commit to the incident store: {exc.__class__.__name__}")
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(failure)
            return
        self.batches += 1
        if self._on_batch is not None:
            self._on_batch(len(jobs))
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            if job.future.done():
                continue
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
