"""The three files a TLS identity is rendered to, read consistently and waited for at start-up."""

from __future__ import annotations

from services.common import secret_files
from services.common.config import TlsFiles

DEFAULT_WAIT_S = secret_files.DEFAULT_WAIT_S

# mtime, size and inode of each file: a rename-into-place changes the inode even within one mtime tick.
Signature = tuple[tuple[int, int, int], ...]


class TlsError(RuntimeError):
    """The TLS files are missing, unreadable, or do not form a usable certificate and key."""


def signature(files: TlsFiles) -> Signature:
    stats = [p.stat() for p in (files.cert, files.key, files.ca)]
    return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats)


def read_all(files: TlsFiles) -> tuple[bytes, bytes, bytes]:
    return files.cert.read_bytes(), files.key.read_bytes(), files.ca.read_bytes()


async def wait_for_files(files: TlsFiles, timeout_s: float = DEFAULT_WAIT_S, interval_s: float = 0.1) -> None:
    """Wait (bounded) until the renderer has written all three files; a service may start first."""
    try:
        await secret_files.wait_for_files(
            (files.cert, files.key, files.ca), what="TLS files", timeout_s=timeout_s, interval_s=interval_s
        )
    except secret_files.SecretFileError as exc:
        raise TlsError(str(exc)) from None
