"""Secret files a service needs before it can serve, waited for at start-up.

Certificates, keys and tokens reach a service only as files that a renderer writes (the local
Vault agent, a Nomad ``template`` block), and the renderer may write them after the service
starts, or again after they were lost. So every such file gets the same bounded wait: the
service logs what it waits for (the reason ``make status`` shows), and when the bound passes it
fails with the missing paths named; its supervisor (supervisord's restarter locally, Nomad's
``restart`` block on a cluster) starts it again. Configuration only records the paths.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from services.common.waiting import TimedOut, wait_until_async

log = logging.getLogger(__name__)

DEFAULT_WAIT_S = 30.0


class SecretFileError(RuntimeError):
    """A secret file is missing, empty or unreadable after the wait; the message names it."""


def missing(paths: Sequence[Path]) -> list[Path]:
    """The paths that are not yet a non-empty regular file."""
    absent = []
    for path in paths:
        try:
            present = path.is_file() and path.stat().st_size > 0
        except OSError:  # replaced between the two calls, or not readable
            present = False
        if not present:
            absent.append(path)
    return absent


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(str(p) for p in paths)


async def wait_for_files(
    paths: Sequence[Path], *, what: str, timeout_s: float = DEFAULT_WAIT_S, interval_s: float = 0.1
) -> None:
    """Return once every path is a non-empty file; raise SecretFileError after ``timeout_s``."""
    absent = missing(paths)
    if not absent:
        return
    log.warning(f"waiting for {what}: {_names(absent)}", extra={"timeout_s": timeout_s})
    try:
        await wait_until_async(lambda: not missing(paths), timeout_s=timeout_s, interval_s=interval_s, what=what)
    except TimedOut:
        raise SecretFileError(f"{what} not rendered after {timeout_s:.0f}s: {_names(missing(paths))}") from None
    log.info(f"{what} present", extra={"paths": _names(paths)})


def read_secret(path: Path) -> str:
    """The stripped contents of a secret file (never logged)."""
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise SecretFileError(f"cannot read {path}: {exc.strerror}") from None
    if not value:
        raise SecretFileError(f"{path} is empty")
    return value


async def read_when_present(path: Path, *, what: str, timeout_s: float = DEFAULT_WAIT_S) -> str:
    """Wait (bounded) for one secret file, then read it."""
    await wait_for_files((path,), what=what, timeout_s=timeout_s)
    return read_secret(path)
