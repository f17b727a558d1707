"""``incident-<id>.json`` files, kept in step with the store: one per incident, the layout the
first alert receiver wrote (docs/incidents.md).

The store is the source of truth. After every commit the changed incident ids are marked dirty;
a background task rewrites their files (write to a temporary file, fsync, rename: a reader sees
the old or the new file, never half of one) and then records the revision it wrote in the store.
Marks coalesce, so a burst of notifications about one incident costs one rewrite. On start, every
incident whose exported revision is behind is rewritten, so a crash between the commit and the
file write (or a ``kill -9`` at any moment) leaves no file stale after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from services.incidents import pretty_json
from services.incidents.metrics import IncidentMetrics
from services.incidents.store import IncidentStore
from services.incidents.writer import GroupCommitWriter

log = logging.getLogger(__name__)

EXPORT_BATCH = 128


def file_name(incident_id: int) -> str:
    return f"incident-{incident_id}.json"


def write_atomically(directory: Path, documents: list[dict[str, Any]]) -> None:
    """Each document to its file (temporary file, fsync, rename), then one fsync of the directory.

    Plain ``os`` calls on ``str`` paths: this runs for every file of every export round.
    """
    directory.mkdir(parents=True, exist_ok=True)
    folder = os.fspath(directory)
    for document in documents:
        name = file_name(int(document["id"]))
        target = os.path.join(folder, name)
        temporary = os.path.join(folder, f".{name}.tmp")
        data = (pretty_json.dumps(document) + "\n").encode("utf-8")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            remaining = memoryview(data)
            while remaining:
                remaining = remaining[os.write(fd, remaining) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    if documents:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class JsonExporter:
    def __init__(
        self, store: IncidentStore, writer: GroupCommitWriter, directory: Path, metrics: IncidentMetrics
    ) -> None:
        self._store = store
        self._writer = writer
        self.directory = directory
        self._metrics = metrics
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self.failures = 0

    @property
    def pending(self) -> int:
        """Incidents whose file is behind the store (queued or being written)."""
        return len(self._dirty) + self._in_flight

    def mark(self, incident_ids: Iterable[int]) -> None:
        before = len(self._dirty)
        self._dirty.update(incident_ids)
        if len(self._dirty) != before:
            self._idle.clear()
            self._wake.set()
            self._metrics.export_pending.set(len(self._dirty))

    async def start(self) -> None:
        self.mark(await self._store.unexported())
        self._task = asyncio.create_task(self._run(), name="incidents-export")

    async def stop(self, timeout_s: float = 5.0) -> None:
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            if not self._dirty:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = sorted(self._dirty)[:EXPORT_BATCH]
            self._dirty.difference_update(batch)
            self._in_flight = len(batch)
            try:
                await self._export(batch)
            except asyncio.CancelledError:
                self._dirty.update(batch)
                raise
            except Exception:
                self.failures += 1
                log.exception("incident files not written; will retry", extra={"incidents": len(batch)})
                self._dirty.update(batch)
                await asyncio.sleep(1.0)
            finally:
                self._in_flight = 0
            self._metrics.export_pending.set(len(self._dirty))

    async def _export(self, batch: list[int]) -> None:
        documents = await self._store.get_many(batch)
        await asyncio.to_thread(write_atomically, self.directory, documents)
        self._metrics.exported.inc(len(documents))
        revisions = [(int(doc["id"]), int(doc["revision"])) for doc in documents]

        def record(conn: Any) -> None:
            self._store.mark_exported(conn, revisions)

        await self._writer.submit(record)
