"""bench.footprint reads the right processes: a program's children are found and measured."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.footprint import cpu_seconds, footprint, process_tree, with_idle
from scripts.processes import spawn
from services.common.waiting import wait_until

PARENT_WITH_CHILD = (
    "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']).wait()"
)


def test_process_tree_finds_a_grandchild_and_each_has_its_own_memory(tmp_path: Path) -> None:
    parent = spawn("parent", [sys.executable, "-c", PARENT_WITH_CHILD], tmp_path / "parent.log")
    try:
        wait_until(lambda: len(process_tree(parent.pid)) == 2, timeout_s=30, what="the child started")
        top, child = process_tree(parent.pid)
        assert top == parent.pid
        assert child != parent.pid
        measured = footprint("child", child)
        assert measured.pid == child
        assert measured.rss_mb > 1
        assert measured.pss_mb is None or 0 < measured.pss_mb <= measured.rss_mb
    finally:
        parent.stop()


def test_footprint_of_this_process_matches_its_status_file() -> None:
    status = Path(f"/proc/{os.getpid()}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    measured = footprint("pytest", os.getpid())
    assert abs(measured.rss_mb - rss_kb / 1024) < 16
    assert process_tree(os.getpid())[0] == os.getpid()


BUSY_FOR_A_WHILE = "import time\nend = time.process_time() + 30\nwhile time.process_time() < end: pass"


def test_cpu_seconds_grow_while_a_process_computes_and_idle_rows_carry_them(tmp_path: Path) -> None:
    busy = spawn("busy", [sys.executable, "-c", BUSY_FOR_A_WHILE], tmp_path / "busy.log")
    try:
        first = cpu_seconds(busy.pid)
        assert first is not None
        wait_until(lambda: (cpu_seconds(busy.pid) or 0) >= first + 0.2, timeout_s=60, what="the child using CPU")
        row = with_idle(footprint("busy", busy.pid), first)
        assert row.idle_cpu_s is not None
        assert row.idle_cpu_s >= 0.2
        assert row.idle_rss_mb is not None
        assert row.idle_rss_mb > 1
    finally:
        busy.stop()
    assert cpu_seconds(busy.pid) is None  # gone: no row to read
