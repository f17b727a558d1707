"""Leader election: only one instance of a background job runs at a time.

Two implementations of one small interface:

- ``ConsulLeaderElection``: a Consul session with a 10 s TTL holds a lock on a KV key. The
  leader renews the session well inside the TTL; if it dies or is partitioned, Consul invalidates
  the session, the lock is released and another instance acquires it.
- ``FileLeaderElection``: an exclusive ``fcntl`` lock on a file, for the local platform where
  every instance runs on one machine. The kernel drops the lock when the holder dies.

``run_while_leader`` campaigns until elected, runs the task, renews the lease while the task runs,
and cancels the task the moment leadership is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import consul

from services.common.discovery.base import DiscoveryError
from services.common.discovery.consul import call, make_client

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 10


def default_holder_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class LeaderElection(Protocol):
    """One candidate for one named lock."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def ttl_s(self) -> float:
        """How long a lease lasts without renewal."""
        ...

    async def acquire(self) -> bool:
        """Try once, without waiting; True when this candidate now holds the lock."""
        ...

    async def renew(self) -> bool:
        """Extend the lease; False when leadership was lost (the caller must stop leading)."""
        ...

    async def release(self) -> None:
        """Give up the lock (idempotent)."""
        ...


class NotLeader(Exception):
    """Leadership could not be obtained or was lost."""


async def wait_for_leadership(
    election: LeaderElection, *, retry_s: float = 1.0, stop: asyncio.Event | None = None
) -> bool:
    """Campaign until elected (True) or until ``stop`` is set (False)."""
    while True:
        try:
            if await election.acquire():
                return True
        except DiscoveryError as exc:
            log.warning("leader election: %s; retrying", exc)
        if stop is None:
            await asyncio.sleep(retry_s)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=retry_s)
        if stop.is_set():
            return False


async def run_while_leader(
    election: LeaderElection,
    task: Callable[[], Awaitable[Any]],
    *,
    renew_every_s: float | None = None,
    retry_s: float = 1.0,
    stop: asyncio.Event | None = None,
) -> bool:
    """Become leader, run ``task`` while renewing, release when done.

    Returns True when the task finished while this instance led, False when leadership was lost
    (the task was cancelled) or ``stop`` was set before the instance was elected.
    """
    if not await wait_for_leadership(election, retry_s=retry_s, stop=stop):
        return False
    interval = renew_every_s if renew_every_s is not None else election.ttl_s / 3
    work: asyncio.Task[Any] = asyncio.ensure_future(task())
    try:
        while True:
            done, _ = await asyncio.wait({work}, timeout=interval)
            if done:
                work.result()
                return True
            try:
                still_leader = await election.renew()
            except DiscoveryError as exc:
                log.warning("leader election: renew failed: %s", exc)
                still_leader = False
            if not still_leader:
                log.warning("leader election: leadership lost; stopping the task")
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
                return False
    finally:
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
        await election.release()


class Leadership:
    """``async with Leadership(election):`` waits to be elected and releases on exit."""

    def __init__(self, election: LeaderElection, *, retry_s: float = 1.0) -> None:
        self._election = election
        self._retry_s = retry_s

    async def __aenter__(self) -> LeaderElection:
        await wait_for_leadership(self._election, retry_s=self._retry_s)
        return self._election

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._election.release()


class ConsulLeaderElection:
    """A KV lock held by a Consul session with a TTL (10 s by default)."""

    def __init__(
        self,
        key: str,
        *,
        address: str | None = None,
        client: consul.Consul | None = None,
        holder_id: str | None = None,
        ttl_s: int = DEFAULT_TTL_S,
        lock_delay_s: int = 1,
        token: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        if not 10 <= ttl_s <= 86400:
            raise ValueError(f"Consul session TTL must be between 10 and 86400 s, got {ttl_s}")
        if client is None:
            if address is None:
                raise ValueError("pass a Consul address or a client")
            client = make_client(address, token, ca_file)
        self._client = client
        self._key = key.lstrip("/")
        self._holder = holder_id or default_holder_id()
        self._ttl_s = ttl_s
        self._lock_delay_s = lock_delay_s
        self._session: str | None = None
        self._leader = False

    @property
    def key(self) -> str:
        return self._key

    @property
    def session_id(self) -> str | None:
        return self._session

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def ttl_s(self) -> float:
        return float(self._ttl_s)

    def _acquire_blocking(self) -> bool:
        if self._session is None:
            self._session = self._client.session.create(
                name=f"firedrill-leader:{self._key}",
                behavior="release",
                ttl=self._ttl_s,
                lock_delay=self._lock_delay_s,
            )
        acquired = bool(self._client.kv.put(self._key, self._holder, acquire=self._session))
        self._leader = acquired
        return acquired

    def _renew_blocking(self) -> bool:
        if self._session is None:
            self._leader = False
            return False
        try:
            self._client.session.renew(self._session)
        except consul.NotFound:
            # Consul invalidated the session (TTL passed, node failed): the lock is gone.
            self._session = None
            self._leader = False
            return False
        _index, entry = self._client.kv.get(self._key)
        self._leader = bool(entry) and entry.get("Session") == self._session
        return self._leader

    def _release_blocking(self) -> None:
        session, self._session = self._session, None
        self._leader = False
        if session is None:
            return
        with contextlib.suppress(consul.ConsulException):
            self._client.kv.put(self._key, self._holder, release=session)
        with contextlib.suppress(consul.ConsulException):
            self._client.session.destroy(session)

    async def acquire(self) -> bool:
        return await call("lock acquire", self._acquire_blocking)

    async def renew(self) -> bool:
        return await call("session renew", self._renew_blocking)

    async def release(self) -> None:
        await call("lock release", self._release_blocking)

    async def holder(self) -> str | None:
        """Who holds the lock now (the value the leader wrote), or None."""

        def read() -> str | None:
            _index, entry = self._client.kv.get(self._key)
            if not entry or not entry.get("Session"):
                return None
            value = entry.get("Value")
            return value.decode() if isinstance(value, bytes) else value

        return await call("lock read", read)


class FileLeaderElection:
    """An exclusive ``flock`` on a file: leader election among processes of one machine."""

    def __init__(self, path: Path, *, holder_id: str | None = None, ttl_s: float = DEFAULT_TTL_S) -> None:
        self._path = path
        self._holder = holder_id or default_holder_id()
        self._ttl_s = ttl_s
        self._fd: int | None = None

    @property
    def is_leader(self) -> bool:
        return self._fd is not None

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    async def acquire(self) -> bool:
        if self._fd is not None:
            return True
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, self._holder.encode())
        self._fd = fd
        return True

    async def renew(self) -> bool:
        if self._fd is None:
            return False
        # The lock belongs to the open file; if someone deleted or replaced the file, another
        # candidate can lock the new one, so this one no longer counts as leader.
        try:
            same = os.fstat(self._fd).st_ino == os.stat(self._path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            await self.release()
        return same

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def holder(self) -> str | None:
        try:
            return self._path.read_text().strip() or None
        except FileNotFoundError:
            return None
