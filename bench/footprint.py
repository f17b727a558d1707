"""Memory footprint of the local platform: resident memory of every process `make up` starts.

    python -m bench.footprint [--settle-s 5]

Starts its own local platform (state in a temp dir, ports shifted), waits until it is healthy
and a few seconds more, then reads RSS (and PSS, which shares the pages of common libraries
fairly between processes, when /proc/<pid>/smaps_rollup is readable) of supervisord, its event
listener, every program it runs and their child processes (one row each). Prints a table per
process and the total, writes bench/results/footprint.json, and stops the platform.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
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


def print_table(rows: list[Footprint]) -> None:
    print(f"{'process':<24} {'pid':>8} {'RSS MB':>8} {'PSS MB':>8}")
    for row in sorted(rows, key=lambda item: -item.rss_mb):
        pss = f"{row.pss_mb:8.1f}" if row.pss_mb is not None else f"{'-':>8}"
        print(f"{row.name:<24} {row.pid:>8} {row.rss_mb:8.1f} {pss}")
    total_pss = None if any(row.pss_mb is None for row in rows) else sum(row.pss_mb or 0 for row in rows)
    total_pss_text = f"{total_pss:8.1f}" if total_pss is not None else f"{'-':>8}"
    print(f"{f'total ({len(rows)} processes)':<24} {'':>8} {sum(row.rss_mb for row in rows):8.1f} {total_pss_text}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.footprint", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--settle-s", type=float, default=5, help="wait after healthy before reading (default 5)")
    args = parser.parse_args(argv)
    with private_platform("fd-bench-footprint-") as (platform, _, _):
        # Deliberately a plain pause: memory settles after the first scrapes and health checks,
        # and there is no condition to wait on for "settled".
        time.sleep(args.settle_s)
        rows = measure(platform)
    print_table(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "processes": [asdict(row) for row in rows],
                "total_rss_mb": sum(row.rss_mb for row in rows),
                "load": os.getloadavg(),
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
