"""Start services as real processes for benchmarks, and read their CPU and memory from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scripts.local.stack import http_ok
from services.common.waiting import wait_until

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def wait_healthy(url: str, timeout_s: float = 20) -> None:
    wait_until(lambda: http_ok(url), timeout_s=timeout_s, interval_s=0.1, what=f"{url} healthy")


@dataclass
class Running:
    name: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def service_processes(
    specs: list[tuple[str, str, dict[str, str], str]], state_dir: Path
) -> Iterator[dict[str, Running]]:
    """Start (name, module, env, health_url) processes; stop them all on exit."""
    running: dict[str, Running] = {}
    try:
        for name, module, env, health_url in specs:
            log = (state_dir / f"{name}.log").open("ab")
            full_env = {**os.environ, "FIREDRILL_STATE_DIR": str(state_dir), **env}
            process = subprocess.Popen(
                [sys.executable, "-m", module], env=full_env, stdout=log, stderr=subprocess.STDOUT
            )
            running[name] = Running(name, process)
            wait_healthy(health_url)
        yield running
    finally:
        for item in running.values():
            if item.process.poll() is None:
                item.process.send_signal(signal.SIGTERM)
        for item in running.values():
            try:
                item.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                item.process.kill()
