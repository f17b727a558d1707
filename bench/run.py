"""`make bench`: every benchmark in one go, one after another (they must not share the cores).

    python -m bench.run [--quick]

Each benchmark prints its table and writes bench/results/<name>.json; BENCHMARKS.md records
the numbers of a full run with the exact commands.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence

FULL: tuple[tuple[str, list[str]], ...] = (
    ("http_overhead", ["--duration", "10", "--rounds", "3"]),
    ("movie_bench", []),
    ("movie_flood", []),
    ("mtls_bench", []),
    ("floor_bench", []),
    ("incidents_burst", []),
    ("footprint", []),
    ("drills_bench", ["--drills", "5", "--soak-minutes", "10", "--restarts", "3"]),
    ("drill_scorecard", ["--runs", "3"]),
    ("canary_bench", ["--bad-runs", "3", "--good-runs", "5"]),
    ("production_detection", ["--drills", "5", "--soak-minutes", "30", "--restarts", "12"]),
)
QUICK: tuple[tuple[str, list[str]], ...] = (
    ("http_overhead", ["--duration", "5", "--rounds", "1"]),
    ("movie_bench", []),
    ("movie_flood", ["--requests", "100"]),
    ("mtls_bench", []),
    ("floor_bench", ["--duration", "4", "--rounds", "1"]),
    ("incidents_burst", []),
    ("footprint", ["--idle-s", "20"]),
    ("drills_bench", ["--drills", "2", "--soak-minutes", "2", "--restarts", "2"]),
    ("drill_scorecard", ["--runs", "1"]),
    ("canary_bench", ["--bad-runs", "1", "--good-runs", "1"]),
    ("production_detection", ["--quick"]),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 15 minutes instead of 90)")
    parser.add_argument("--only", action="append", default=[], help="run only this benchmark (repeatable)")
    args = parser.parse_args(argv)
    failed = []
    for name, options in QUICK if args.quick else FULL:
        if args.only and name not in args.only:
            continue
        command = [sys.executable, "-m", f"bench.{name}", *options]
        print(f"\n### {' '.join(['python', *command[1:]])}", flush=True)
        started = time.monotonic()
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
        print(f"### {name} took {time.monotonic() - started:.0f}s", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("\nall benchmarks ran; results in bench/results/, record them in BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
