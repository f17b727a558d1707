"""process_cpu_wait_seconds_total from a /proc/self/task tree: summed, never stepping back."""

from __future__ import annotations

import threading
from pathlib import Path

from prometheus_client import CollectorRegistry

from services.common.cpu_wait import CpuWaitCollector, count_cpu_wait


def _thread(tasks: Path, tid: int, waited_ns: int) -> None:
    (tasks / str(tid)).mkdir(parents=True, exist_ok=True)
    (tasks / str(tid) / "schedstat").write_text(f"123456 {waited_ns} 42\n")


def test_the_wait_of_every_thread_is_summed(tmp_path: Path) -> None:
    _thread(tmp_path, 10, 1_500_000_000)
    _thread(tmp_path, 11, 500_000_000)
    assert CpuWaitCollector(tmp_path).total_ns() == 2_000_000_000


def test_an_ended_thread_keeps_its_wait_so_the_counter_never_steps_back(tmp_path: Path) -> None:
    collector = CpuWaitCollector(tmp_path)
    _thread(tmp_path, 10, 1_000)
    _thread(tmp_path, 11, 5_000)
    assert collector.total_ns() == 6_000
    (tmp_path / "11" / "schedstat").unlink()
    (tmp_path / "11").rmdir()
    _thread(tmp_path, 10, 1_200)
    assert collector.total_ns() == 6_200
    _thread(tmp_path, 11, 100)  # the id reused by a new thread
    assert collector.total_ns() == 6_300


def test_without_schedstat_nothing_is_exported(tmp_path: Path) -> None:
    (tmp_path / "10").mkdir()
    registry = CollectorRegistry()
    registry.register(CpuWaitCollector(tmp_path))
    assert registry.get_sample_value("process_cpu_wait_seconds_total") is None
    assert CpuWaitCollector(tmp_path / "missing").total_ns() is None


def test_this_process_waits_are_read_from_proc() -> None:
    """The real /proc: read while busy threads run, and again after they ended, never lower."""
    registry = CollectorRegistry()
    count_cpu_wait(registry)
    release = threading.Event()
    workers = [threading.Thread(target=release.wait) for _ in range(4)]
    for worker in workers:
        worker.start()
    while_running = registry.get_sample_value("process_cpu_wait_seconds_total")
    release.set()
    for worker in workers:
        worker.join()
    after = registry.get_sample_value("process_cpu_wait_seconds_total")
    assert while_running is not None
    assert after is not None
    assert after >= while_running
