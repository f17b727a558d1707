"""Group commit: many writes, one transaction, one fsync; every caller answered after the commit.

Callers ``submit`` an operation (a plain function taking the write connection). One task takes
whatever is queued (up to ``max_batch``) and hands the whole batch to the database thread in one
trip: there each operation runs inside its own SAVEPOINT of a single ``BEGIN IMMEDIATE``
transaction, then the transaction commits; only after that does each caller get its result. So
a webhook is answered 200 only once its notification is durable, while a burst of notifications
costs one fsync, and one thread hand-off, per batch instead of one per notification (or, as with
one await per statement, several per notification). An operation that fails is rolled back to its
savepoint alone; a failed commit fails every operation of the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from services.incidents.errors import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]


class DatabaseThread:
    """One thread that runs calls in the order they come; each result goes back to the caller's
    event loop in a single ``call_soon_threadsafe``.

    What ``run_in_executor`` on a one-worker pool does, without its per-call machinery (a
    ``concurrent.futures.Future`` with its lock and condition, the pool's thread accounting, and
    the chaining of that future to an asyncio one): the writer crosses to this thread for every
    batch, so that machinery was a visible share of the receiver's CPU during a burst.
    """

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def call(self, function: Callable[[], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put(_Call(function, future, loop))
        return future

    def stop(self) -> None:
        """Run what is queued, then end the thread (blocks until it has)."""
        self._calls.put(None)
        self._thread.join()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            try:
                outcome: tuple[bool, Any] = (True, call.function())
            except BaseException as exc:  # handed to the caller, as run_in_executor does
                outcome = (False, exc)
            with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
                call.loop.call_soon_threadsafe(_settle, call.future, *outcome)


@dataclass(frozen=True, slots=True)
class _Call:
    function: Callable[[], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class WriteConnection:
    """A sqlite3 connection used only from its own thread; ``run`` is one trip to that thread."""

    def __init__(self, conn: sqlite3.Connection, thread: DatabaseThread) -> None:
        self._conn = conn
        self._thread = thread

    @classmethod
    async def open(cls, path: Path, setup: Callable[[sqlite3.Connection], None]) -> WriteConnection:
        thread = DatabaseThread("incidents-write")

        def connect() -> sqlite3.Connection:
            # Autocommit mode: the writer issues BEGIN/COMMIT itself. Only this thread touches it.
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                setup(conn)
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            conn = await thread.call(connect)
        except BaseException:
            thread.stop()
            raise
        return cls(conn, thread)

    async def run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        return await self._thread.call(lambda: function(conn))

    async def close(self) -> None:
        await self.run(sqlite3.Connection.close)
        self._thread.stop()


@dataclass(slots=True)
class _Job:
    operation: Operation
    future: asyncio.Future[Any]


class GroupCommitWriter:
    def __init__(
        self,
        conn: WriteConnection,
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

    async def submit(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation`` in the next batch; returns (or raises) only after that batch committed."""
        if not self.running:
            raise StoreUnavailable("the incident store is not accepting writes")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(operation, future))
        # Not shielded: a caller that gives up cancels only its own future; the operation still
        # runs in its batch, and _commit skips answering a future that is already done.
        return await future

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
        operations = [job.operation for job in jobs]
        try:
            outcomes = await self._conn.run(lambda conn: _transaction(conn, operations))
        except Exception as exc:
            log.exception("commit failed; the batch is refused", extra={"batch": len(jobs)})
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


def _transaction(conn: sqlite3.Connection, operations: list[Operation]) -> list[tuple[bool, Any]]:
    """In the database thread: the batch, each operation in its savepoint, then the commit.

    Returns each operation's (ok, result or exception) once committed; raises when the commit
    (or the transaction itself) fails, after rolling the whole batch back.
    """
    outcomes: list[tuple[bool, Any]] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        for index, operation in enumerate(operations):
            savepoint = f"op{index}"
            conn.execute(f"SAVEPOINT {savepoint}")
            try:
                outcomes.append((True, operation(conn)))
                conn.execute(f"RELEASE {savepoint}")
            except Exception as exc:
                log.exception("write operation failed; rolled back alone")
                conn.execute(f"ROLLBACK TO {savepoint}")
                conn.execute(f"RELEASE {savepoint}")
                outcomes.append((False, exc))
        conn.execute("COMMIT")
    except Exception:
        with contextlib.suppress(Exception):
            conn.execute("ROLLBACK")
        raise
    return outcomes
