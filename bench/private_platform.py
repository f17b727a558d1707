"""A local platform of a benchmark's own, for the benches that measure the whole platform."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.deploy_target.interface import Endpoints
from scripts.local.stack import LocalPlatform
from scripts.ports import reserved_port_offset
from services.common import catalog
from services.common.profiles import DRILL, TimingProfile


@contextmanager
def private_platform(
    prefix: str, wait_timeout_s: float = 90, timing: TimingProfile = DRILL
) -> Iterator[tuple[LocalPlatform, Endpoints, Path]]:
    """The platform (drill profile unless told) up in a temporary state directory, on a port offset
    nobody else holds (so the bench can run beside a test run), and stopped on the way out."""
    # A SIGTERM (e.g. a timeout) must still stop the platform this benchmark started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with (
        reserved_port_offset(catalog.base_ports()) as offset,
        tempfile.TemporaryDirectory(prefix=prefix) as tmp,
    ):
        os.environ["FIREDRILL_PORT_OFFSET"] = str(offset)
        platform = LocalPlatform(Path(tmp), timing)
        try:
            endpoints = platform.up(progress=lambda line: print(line, flush=True), wait_timeout_s=wait_timeout_s)
            yield platform, endpoints, Path(tmp)
        finally:
            platform.down()
