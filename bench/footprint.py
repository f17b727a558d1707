"""Memory footprint of the local platform: resident memory of every process `make up` starts.

    python -m bench.footprint [--settle-s 5] [--idle-s 60]

Starts its own local platform (state in a temp dir, ports shifted), waits until it is healthy
and a few seconds more, then reads RSS (and PSS, which shares the pages of common libraries
fairly between processes, when /proc/<pid>/smaps_rollup is readable) of supervisord, its event
listener, every program it runs and their child processes (one row each). It then leaves the
platform idle (scrapes, rule evaluation, health checks, heartbeats: what it does with no
traffic) for ``--idle-s`` seconds and reads each process's CPU seconds over that window and its
RSS at the end, which shows what a memory setting costs in CPU and whether memory keeps growing.
Prints a table per process and the totals, writes bench/results/footprint.json, and stops the
platform.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench.private_platform import private_platform
from scripts.local.stack import LocalPlatform

RESULTS = Path(__file__).resolve().parent / "results" / "footprint.json"


@dataclass(frozen=True)
class Footprint:
    name: str
    pid: int
    rss_mb: float
    pss_mb: float | None
    # Filled in after the idle window (``with_idle``).
    idle_rss_mb: float | None = None
    idle_cpu_s: float | None = None


def _kilobytes(path: Path, field: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending += _children(current)
    return tree


def footprint(name: str, pid: int) -> Footprint:
    rss = _kilobytes(Path(f"/proc/{pid}/status"), "VmRSS") or 0
    pss = _kilobytes(Path(f"/proc/{pid}/smaps_rollup"), "Pss")
    return Footprint(name, pid, rss / 1024, None if pss is None else pss / 1024)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` so far (fields 14 and 15 of /proc/<pid>/stat)."""
    try:
        # The command name (field 2) may hold spaces: the fields after it start past the last ")".
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def with_idle(row: Footprint, cpu_before: float | None) -> Footprint:
    """``row`` with the CPU seconds used since ``cpu_before`` and the RSS now."""
    cpu_after = cpu_seconds(row.pid)
    rss = _kilobytes(Path(f"/proc/{row.pid}/status"), "VmRSS")
    return replace(
        row,
        idle_rss_mb=None if rss is None else rss / 1024,
        idle_cpu_s=None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
    )


def measure_idle(rows: list[Footprint], idle_s: float) -> list[Footprint]:
    before = {row.pid: cpu_seconds(row.pid) for row in rows}
    # A plain pause on purpose: the window is the measurement (CPU spent while nothing happens).
    time.sleep(idle_s)
    return [with_idle(row, before[row.pid]) for row in rows]


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def measure(platform: LocalPlatform) -> list[Footprint]:
    daemon = int(platform.state.supervisor_pidfile.read_text().strip())
    rows = [footprint("supervisord", daemon)]
    for info in sorted(platform.supervisor.processes(), key=lambda item: str(item["name"])):
        if int(info.get("pid") or 0) > 0:
            program, *children = process_tree(int(info["pid"]))
            rows.append(footprint(str(info["name"]), program))
            # e.g. the OpenBao wrapper's `bao` process: one row each, named after the program.
            rows += [footprint(f"{info['name']}/{_command_name(child)}", child) for child in children]
    return rows


def _cell(value: float | None, digits: int = 1, width: int = 8) -> str:
    return f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def _total(rows: list[Footprint], value: str) -> float | None:
    values = [getattr(row, value) for row in rows]
    return None if any(v is None for v in values) else sum(values)


def print_table(rows: list[Footprint], idle_s: float = 0) -> None:
    idle = f" {'RSS MB':>8} {'CPU s':>8}  (after / over {idle_s:g}s idle)" if idle_s else ""
    print(f"{'process':<24} {'pid':>8} {'RSS MB':>8} {'PSS MB':>8}{idle}")
    for row in sorted(rows, key=lambda item: -item.rss_mb):
        after = f" {_cell(row.idle_rss_mb)} {_cell(row.idle_cpu_s, 2)}" if idle_s else ""
        print(f"{row.name:<24} {row.pid:>8} {row.rss_mb:8.1f} {_cell(row.pss_mb)}{after}")
    after = f" {_cell(_total(rows, 'idle_rss_mb'))} {_cell(_total(rows, 'idle_cpu_s'), 2)}" if idle_s else ""
    label = f"total ({len(rows)} processes)"
    print(f"{label:<24} {'':>8} {sum(row.rss_mb for row in rows):8.1f} {_cell(_total(rows, 'pss_mb'))}{after}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.footprint", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--settle-s", type=float, default=5, help="wait after healthy before reading (default 5)")
    parser.add_argument(
        "--idle-s", type=float, default=60, help="then CPU seconds and RSS over this idle window (default 60; 0: skip)"
    )
    args = parser.parse_args(argv)
    if args.settle_s < 0 or args.idle_s < 0:
        parser.error("--settle-s and --idle-s are seconds, 0 or more")
    with private_platform("fd-bench-footprint-") as (platform, _, _):
        # Deliberately a plain pause: memory settles after the first scrapes and health checks,
        # and there is no condition to wait on for "settled".
        time.sleep(args.settle_s)
        rows = measure(platform)
        if args.idle_s:
            print(f"idle for {args.idle_s:g}s: CPU seconds and RSS of every process", flush=True)
            rows = measure_idle(rows, args.idle_s)
    print_table(rows, args.idle_s)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "processes": [asdict(row) for row in rows],
                "total_rss_mb": sum(row.rss_mb for row in rows),
                "idle_s": args.idle_s,
                "total_idle_rss_mb": _total(rows, "idle_rss_mb"),
                "total_idle_cpu_s": _total(rows, "idle_cpu_s"),
                "load": os.getloadavg(),
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
