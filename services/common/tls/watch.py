"""A service's TLS material for as long as it runs: loaded once the files exist, then kept current.

The files are polled (mtime/size/inode) in a background task, and checked at once on SIGHUP,
which is what a Nomad template's ``change_mode = "signal"`` sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

from prometheus_client import REGISTRY, CollectorRegistry

from services.common.config import ServiceConfig
from services.common.tls.files import DEFAULT_WAIT_S, wait_for_files
from services.common.tls.material import TlsMaterial

DEFAULT_POLL_S = 1.0


async def poll_for_changes(material: TlsMaterial, interval_s: float = DEFAULT_POLL_S) -> None:
    """Reload ``material`` whenever its files change, until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        material.reload_if_changed()


@contextlib.asynccontextmanager
async def service_tls(
    config: ServiceConfig,
    *,
    registry: CollectorRegistry = REGISTRY,
    wait_s: float = DEFAULT_WAIT_S,
    poll_interval_s: float = DEFAULT_POLL_S,
) -> AsyncIterator[TlsMaterial | None]:
    """The service's TLS material, watched for rotation while the block runs; None when TLS is off."""
    if config.tls is None:
        yield None
        return
    await wait_for_files(config.tls, wait_s)
    material = TlsMaterial(config.tls, config.name)
    material.register_metrics(registry)
    watcher = asyncio.create_task(poll_for_changes(material, poll_interval_s))
    loop = asyncio.get_running_loop()
    hup_installed = False
    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
        loop.add_signal_handler(signal.SIGHUP, material.reload_if_changed)
        hup_installed = True
    try:
        yield material
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        if hup_installed:
            loop.remove_signal_handler(signal.SIGHUP)
