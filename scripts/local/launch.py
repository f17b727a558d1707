"""Wait until files exist, then become the given command (exec: same pid, same signals).

    python -m scripts.local.launch --wait-for FILE [--wait-for FILE ...] [--timeout 60] -- CMD ARGS...

Used for programs whose configuration names files another program renders (certificates from
the Vault agent), so they start once the files are there instead of failing and backing off.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from services.common.waiting import TimedOut, wait_until


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.local.launch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wait-for", type=Path, action="append", default=[], help="a file that must exist")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds (default 60)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    missing = list(args.wait_for)

    def all_there() -> bool:
        missing[:] = [path for path in missing if not path.exists()]
        return not missing

    with contextlib.suppress(TimedOut):
        wait_until(all_there, timeout_s=args.timeout, interval_s=0.2, what="the files to wait for")
    if missing:
        print(f"launch: still missing after {args.timeout:.0f}s: {', '.join(map(str, missing))}", file=sys.stderr)
        return 1
    os.execvp(command[0], command)  # noqa: S606 (the command is ours, from the platform's program list)


if __name__ == "__main__":
    raise SystemExit(main())
