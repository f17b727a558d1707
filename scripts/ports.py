"""Loopback ports for the local platform, tests and benchmarks."""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Offsets chosen at run time stay below Linux's ephemeral range (32768+): the highest catalog
# port (16686) plus 16000 is still under it, so an outgoing connection cannot take a platform port.
OFFSET_CANDIDATES = range(10_000, 16_001, 100)
RESERVATIONS_DIR = Path(tempfile.gettempdir()) / "firedrill-port-offsets"


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (free unless someone takes it meanwhile)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _live_reservations(directory: Path) -> list[int]:
    """Offsets held by running processes; reservations of dead processes are removed."""
    live = []
    for entry in directory.glob("*.offset"):
        try:
            pid = int(entry.read_text())
        except (OSError, ValueError):
            pid = 0
        if pid and process_alive(pid):
            live.append(int(entry.stem))
        else:
            entry.unlink(missing_ok=True)
    return live


@contextmanager
def reserved_port_offset(
    base_ports: Iterable[int],
    *,
    candidates: Iterable[int] = OFFSET_CANDIDATES,
    directory: Path = RESERVATIONS_DIR,
) -> Iterator[int]:
    """An offset at which every base port is free and that no other live reservation overlaps.

    Two test runs (or a test run and a benchmark) on one machine each get their own: the choice is
    made under a file lock and recorded with this process's id until the block ends (or the process
    dies, which frees it for the next caller).
    """
    ports = frozenset(base_ports)
    directory.mkdir(mode=0o777, parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            taken = {port + offset for offset in _live_reservations(directory) for port in ports}
            chosen = next(
                (
                    offset
                    for offset in candidates
                    if not {port + offset for port in ports} & taken
                    and all(port_is_free(port + offset) for port in ports)
                ),
                None,
            )
            if chosen is None:
                raise RuntimeError(f"no free port offset among {candidates}: every one is reserved or in use")
            record = directory / f"{chosen}.offset"
            record.write_text(str(os.getpid()))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    try:
        yield chosen
    finally:
        record.unlink(missing_ok=True)
