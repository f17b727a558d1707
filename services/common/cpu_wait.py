"""``process_cpu_wait_seconds_total``: how long this process's threads were ready to run but waited
for a CPU.

``process_cpu_seconds_total`` says how much CPU a process got. On a host short of CPU, a process
that wants a whole core gets less, and its requests queue all the same: what it asked for is the
CPU it got plus the time its threads waited on a run queue, which the kernel counts per thread
(the second field of ``/proc/self/task/<tid>/schedstat``, in nanoseconds). CpuSaturation reads
the sum of the two.

Threads that ended leave ``/proc``: their last count is kept, so the counter never steps back
(a drop would read as a counter reset and a false spike in ``rate()``). Kernels without
schedstat export nothing, and the alert falls back to the CPU used alone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

TASKS = Path("/proc/self/task")
METRIC = "process_cpu_wait_seconds"


def _wait_ns(schedstat: Path) -> int | None:
    try:
        fields = schedstat.read_text().split()
        return int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


class CpuWaitCollector(Collector):
    def __init__(self, tasks: Path = TASKS) -> None:
        self._tasks = tasks
        self._last: dict[str, int] = {}
        self._ended_ns = 0
        self._lock = threading.Lock()

    def total_ns(self) -> int | None:
        """Run-queue wait of every thread so far, ended ones included; None without schedstat."""
        seen: dict[str, int] = {}
        try:
            entries = list(os.scandir(self._tasks))
        except OSError:
            return None
        for entry in entries:
            waited = _wait_ns(Path(entry.path) / "schedstat")
            if waited is not None:
                seen[entry.name] = waited
        if not seen:
            return None
        with self._lock:
            for tid, last in self._last.items():
                # Gone, or a new thread under a reused id: the old thread's wait is kept.
                if seen.get(tid, -1) < last:
                    self._ended_ns += last
            self._last = seen
            return self._ended_ns + sum(seen.values())

    def collect(self) -> Iterator[CounterMetricFamily]:
        total = self.total_ns()
        if total is not None:
            yield CounterMetricFamily(
                METRIC,
                "Time the process's threads were ready to run but waited for a CPU (run queue), in seconds.",
                value=total / 1e9,
            )


def count_cpu_wait(registry: CollectorRegistry = REGISTRY) -> CpuWaitCollector:
    collector = CpuWaitCollector()
    registry.register(collector)
    return collector
