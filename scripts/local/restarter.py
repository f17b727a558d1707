"""Start programs again, with capped exponential back-off, whenever they stop by failure.

supervisord alone handles failures badly in both directions: a program that exits within
``startsecs`` is retried ``startretries`` times and then left FATAL for good, even once the cause
(a missing file, a busy port) is gone; one that crashes after ``startsecs`` is restarted at once,
forever, with no back-off at all. Nomad's restart and reschedule blocks do neither, and this
supervisord event listener does what they do on the local platform. supervisord still makes its
few quick start retries; after that, every unexpected exit (``PROCESS_STATE_EXITED`` with
``expected:0``, the programs run with ``autorestart=false``) and every ``PROCESS_STATE_FATAL``
starts the program again after the profile's ``restart_delay_s``, doubled for each further
failure up to ``restart_max_delay_s``. A program that stayed RUNNING for longer than that cap
starts again from the first delay. A program an operator stopped neither exits unexpectedly nor
goes FATAL, and is left alone.

Every failed run that is followed by another start (a BACKOFF, or an unexpected exit) is counted
in ``firedrill_restarts_total{service}``, served on ``--metrics-port`` and announced to Prometheus
by a file in ``--targets-dir`` (``scripts.local.restart_metrics``): a restart storm is one
``CrashLooping`` alert instead of one ServiceDown flap per restart.

    [eventlistener:restarter]
    command=python -m scripts.local.restarter --profile drill --metrics-port 8211 --targets-dir …

stdout carries supervisord's event protocol, so the listener logs to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from supervisor import childutils

from scripts.local.restart_metrics import RestartMetrics, write_target
from services.common.logs import JsonFormatter
from services.common.profiles import profile

log = logging.getLogger("scripts.local.restarter")

# BACKOFF (a start that died within startsecs, retried by supervisord or after FATAL by us) is only counted.
EVENTS = ("PROCESS_STATE_RUNNING", "PROCESS_STATE_BACKOFF", "PROCESS_STATE_EXITED", "PROCESS_STATE_FATAL")
# The states the restarter starts a program from (a start meanwhile, or a stop, leaves it alone).
FAILED_STATES = frozenset({"EXITED", "FATAL"})


@dataclass
class Backoff:
    """How long to wait before the next start of each program, from its run of failures."""

    first_s: float
    cap_s: float
    clock: Callable[[], float] = time.monotonic
    failures: dict[str, int] = field(default_factory=dict)
    running_since: dict[str, float] = field(default_factory=dict)

    def running(self, program: str) -> None:
        self.running_since[program] = self.clock()

    def failed(self, program: str) -> tuple[int, float]:
        """The attempt number and the delay before starting ``program`` again."""
        since = self.running_since.pop(program, None)
        if since is not None and self.clock() - since >= self.cap_s:
            self.failures.pop(program, None)
        attempt = self.failures.get(program, 0) + 1
        self.failures[program] = attempt
        return attempt, min(self.cap_s, self.first_s * 2 ** (attempt - 1))


def program_name(headers: Mapping[str, str]) -> str:
    """supervisord's name for the process: ``name``, or ``group:name`` when they differ."""
    name, group = headers["processname"], headers.get("groupname", headers["processname"])
    return name if name == group else f"{group}:{name}"


def start_if_still_failed(rpc: Any, program: str, attempt: int) -> None:
    supervisor = rpc.supervisor
    try:
        if supervisor.getProcessInfo(program)["statename"] not in FAILED_STATES:
            return  # started or stopped by someone else meanwhile
        log.info(f"starting {program} again (attempt {attempt})", extra={"program": program, "attempt": attempt})
        supervisor.startProcess(program, False)
    except (OSError, xmlrpc.client.Error) as exc:
        log.warning(f"could not start {program}: {exc}", extra={"program": program})


def listen(
    backoff: Backoff,
    rpc: Any,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    metrics: RestartMetrics | None = None,
) -> None:
    metrics = metrics or RestartMetrics()
    while True:
        childutils.listener.ready(stdout)
        line = stdin.readline()
        if not line:
            return  # supervisord closed the pipe: it is shutting down
        headers = childutils.get_headers(line)
        payload = stdin.read(int(headers["len"]))
        event = headers["eventname"]
        details = childutils.get_headers(payload.split("\n", 1)[0])
        program = program_name(details)
        crashed = event == "PROCESS_STATE_EXITED" and details.get("expected") == "0"
        if event == "PROCESS_STATE_RUNNING":
            backoff.running(program)
            metrics.seen(program)
        elif event == "PROCESS_STATE_BACKOFF" or crashed:
            metrics.restarted(program)
        if event == "PROCESS_STATE_FATAL" or crashed:
            attempt, delay = backoff.failed(program)
            what = "failed to start" if event == "PROCESS_STATE_FATAL" else "exited unexpectedly"
            log.warning(
                f"{program} {what}; starting it again in {delay:g}s (attempt {attempt})",
                extra={"program": program, "attempt": attempt, "delay_s": delay},
            )
            timer = threading.Timer(delay, start_if_still_failed, args=(rpc, program, attempt))
            timer.daemon = True
            timer.start()
        childutils.listener.ok(stdout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.local.restarter", description=__doc__)
    parser.add_argument("--profile", help="timing profile for the delays (default FIREDRILL_PROFILE or drill)")
    parser.add_argument("--metrics-port", type=int, help="serve firedrill_restarts_total on 127.0.0.1:PORT")
    parser.add_argument("--targets-dir", type=Path, help="Prometheus file-discovery folder to announce the port in")
    args = parser.parse_args(argv)
    timing = profile(args.profile)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("restarter"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    rpc = childutils.getRPCInterface(os.environ)
    metrics = RestartMetrics()
    if args.metrics_port is not None:
        try:
            port = metrics.serve(args.metrics_port)
        except OSError as exc:  # restarting programs matters more than counting the restarts
            log.warning(f"cannot serve restart counts on port {args.metrics_port}: {exc}")
        else:
            if args.targets_dir is not None:
                write_target(args.targets_dir, f"127.0.0.1:{port}")
            log.info(f"restart counts on 127.0.0.1:{port}/metrics", extra={"port": port})
    listen(Backoff(timing.restart_delay_s, timing.restart_max_delay_s), rpc, metrics=metrics)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
