"""bench.footprint reads the right processes: a program's children are found and measured."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.footprint import footprint, process_tree
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
