"""Chaos Toolkit actions and probes of the resource drills: leak, cpu and log-storm (docs/drills.md).

Each fault is a bounded loop in a background thread that calls response through
``Platform.admin_call`` (so it runs unchanged on Nomad): ``/leak`` a megabyte at a time, ``/cpu``
back to back, ``POST /log`` at error level. Its stop action is both a method step and a rollback,
so it always runs. The debugging endpoints of the ops port (``services.common.debug_endpoints``)
provide what the report shows: the heap snapshot that names the leak's allocation site, the CPU
profile's top functions. A check that does not hold is written to ``notes["failed_checks"]`` and
fails the drill.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from scripts.deploy_target.interface import AdminAnswer, PlatformError
from scripts.drills.recorder import RECORDER
from scripts.promql import Prometheus, PrometheusError

log = logging.getLogger("chaostoolkit")

MAX_FAULT_SECONDS = 300
MAX_LEAK_MB = 400


@dataclass
class FaultLoop:
    """One bounded fault loop: a call repeated on a schedule until stopped, refused, or out of budget.

    ``workers`` threads share the schedule, so a call slower than the interval (a TLS handshake on
    a loaded machine) does not lower the rate below what was asked."""

    name: str
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    calls: int = 0
    refusals: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    last_body: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_at: float = 0.0
    _started: int = 0

    def _claim(self, interval_s: float, max_calls: int, deadline: float) -> float | None:
        """The time the next call is due, or None when the budget is spent."""
        with self._lock:
            if self._started >= max_calls or self.refusals or len(self.errors) >= 3:
                return None
            due = max(self._next_at, time.monotonic())
            if due >= deadline:
                return None
            self._started += 1
            self._next_at = due + interval_s
            return due

    def run(self, call: Any, interval_s: float, max_calls: int, max_seconds: float, workers: int = 1) -> None:
        deadline = time.monotonic() + max_seconds

        def loop() -> None:
            while not self.stop.is_set():
                due = self._claim(interval_s, max_calls, deadline)
                if due is None or self.stop.wait(max(0.0, due - time.monotonic())):
                    return
                try:
                    answers: list[AdminAnswer] = call()
                except PlatformError as exc:
                    with self._lock:
                        self.errors.append(str(exc))
                    continue
                refused = [a for a in answers if not a.ok]
                with self._lock:
                    self.calls += 1
                    if refused:
                        self.refusals.append(f"HTTP {refused[0].status}: {refused[0].message()}")
                    else:
                        self.last_body = answers[0].body

        self.threads = [
            threading.Thread(target=loop, name=f"drill-{self.name}-{n}", daemon=True) for n in range(workers)
        ]
        for thread in self.threads:
            thread.start()

    def join(self, timeout_s: float) -> bool:
        """Wait for every worker to end; True when they all did."""
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self.threads)

    def halt(self, timeout_s: float) -> None:
        self.stop.set()
        self.join(timeout_s)


_LOOPS: dict[str, FaultLoop] = {}


def _start_loop(name: str) -> FaultLoop:
    previous = _LOOPS.pop(name, None)
    if previous is not None:
        previous.halt(15)
    loop = FaultLoop(name)
    _LOOPS[name] = loop
    return loop


def _halt_loop(name: str, timeout_s: float = 15) -> FaultLoop | None:
    loop = _LOOPS.pop(name, None)
    if loop is not None:
        loop.halt(timeout_s)
    return loop


def _failed_check(reason: str) -> None:
    RECORDER.notes.setdefault("failed_checks", []).append(reason)
    log.warning("check failed: %s", reason)


def _finding(kind: str, title: str, summary: str, rows: list[dict[str, Any]]) -> None:
    RECORDER.notes.setdefault("findings", []).append({"kind": kind, "title": title, "summary": summary, "rows": rows})


def _answer(service: str, method: str, path: str, **kwargs: Any) -> AdminAnswer:
    """The first instance's answer to an admin call; a refusal is an error here."""
    platform, _ = RECORDER.require()
    answers = platform.admin_call(service, method, path, **kwargs)
    refused = [a for a in answers if not a.ok]
    if refused:
        raise PlatformError(f"{service} {refused[0].instance} refused {method} {path}: {refused[0].message()}")
    return answers[0]


# --- leak ------------------------------------------------------------------------------------------


def _process_start(service: str) -> float | None:
    _, endpoints = RECORDER.require()
    try:
        return Prometheus(endpoints.prometheus).value(
            f'max(process_start_time_seconds{{job="services",service="{service}"}})'
        )
    except PrometheusError:
        return None


def start_leak(
    service: str = "response", kb_per_call: int = 1024, interval_s: float = 0.5, max_mb: int = 256
) -> dict[str, Any]:
    """Leak ``kb_per_call`` KB every ``interval_s`` through ``/leak``, at most ``max_mb`` MB in all."""
    platform, _ = RECORDER.require()
    max_mb = min(max_mb, MAX_LEAK_MB)
    loop = _start_loop("leak")
    RECORDER.notes["leak"] = {
        "service": service,
        "mb_per_call": round(kb_per_call / 1024, 3),
        "interval_s": interval_s,
        "max_mb": max_mb,
        "process_start": _process_start(service),
    }
    RECORDER.mark("fault_on")

    def call() -> list[AdminAnswer]:
        return platform.admin_call(service, "GET", f"/leak?size={kb_per_call}")

    loop.run(call, interval_s, max_calls=max_mb * 1024 // kb_per_call, max_seconds=MAX_FAULT_SECONDS)
    log.info("leaking %d KB every %.1f s in %s", kb_per_call, interval_s, service)
    return dict(RECORDER.notes["leak"])


def _leaked_mb(loop: FaultLoop | None) -> float | None:
    body = loop.last_body if loop is not None else None
    if isinstance(body, dict) and isinstance(body.get("total_leaked_bytes"), int):
        return round(int(body["total_leaked_bytes"]) / 2**20, 1)
    return None


def leak_held_below_the_cap(service: str = "response") -> dict[str, Any]:
    """After the alert: the leak was never refused by the cap and the process was never restarted."""
    loop = _LOOPS.get("leak")
    leak = RECORDER.notes.setdefault("leak", {})
    leak["leaked_mb_at_alert"] = _leaked_mb(loop)
    started, now = leak.get("process_start"), _process_start(service)
    if loop is not None and loop.refusals:
        _failed_check(f"the leak reached the cap before the alert fired ({loop.refusals[0]})")
    if started is not None and now is not None and now != started:
        _failed_check(f"{service} restarted during the leak (out of memory?) before the alert fired")
    return dict(leak)


def free_leak(service: str = "response") -> dict[str, Any]:
    """Stop leaking and free what leaked (``DELETE /admin/faults``); a method step and a rollback."""
    platform, _ = RECORDER.require()
    loop = _halt_loop("leak")
    answers = platform.admin_call(service, "DELETE", "/admin/faults")
    freed = sum(int(a.body.get("freed_bytes", 0)) for a in answers if a.ok and isinstance(a.body, dict))
    if loop is not None:
        RECORDER.notes.setdefault("leak", {}).update(freed_mb=round(freed / 2**20, 1), calls=loop.calls)
    if "fault_on" in RECORDER.moments:
        RECORDER.mark("fault_off")
    return {"freed_bytes": freed}


def start_heap_tracing(service: str = "response", frames: int = 1) -> dict[str, Any]:
    body: dict[str, Any] = _answer(service, "POST", f"/debug/heap/start?frames={frames}", port="ops").body
    return body


def stop_heap_tracing(service: str = "response") -> dict[str, Any]:
    """Switch tracemalloc off again (its traces cost memory and CPU); a method step and a rollback."""
    platform, _ = RECORDER.require()
    answers = platform.admin_call(service, "POST", "/debug/heap/stop", port="ops")
    return {"stopped": [a.instance for a in answers if a.ok]}


def heap_snapshot(service: str = "response", top: int = 5, expect_file: str | None = None) -> str:
    """The top allocation sites from the heap snapshot, into the report; returns the top site.

    With ``expect_file``, the top site must be in that file (the leak's allocation site)."""
    body = _answer(service, "GET", f"/debug/heap?top={top}", port="ops").body
    rows = [
        {
            "site": f"{row['file']}:{row['line']}",
            "code": row["code"],
            "size_mb": round(row["size_bytes"] / 2**20, 2),
            "count": row["count"],
        }
        for row in body["top"]
    ]
    site = f"{rows[0]['site']} ({rows[0]['code']})" if rows else "none"
    RECORDER.notes["allocation_site"] = site
    _finding(
        "heap",
        f"Heap snapshot of {service} (tracemalloc, top {top} allocation sites)",
        f"largest allocation site: {site}; {body['traced_bytes'] / 2**20:.1f} MB traced over {body['tracing_for_s']} s",
        rows,
    )
    if expect_file and not (rows and rows[0]["site"].startswith(f"{expect_file}:")):
        _failed_check(f"the heap snapshot's top allocation site is {site}, not in {expect_file}")
    log.info("heap snapshot of %s: top allocation site %s", service, site)
    return site


# --- cpu -------------------------------------------------------------------------------------------


def start_cpu_burn(service: str = "response", burn_ms: int = 5000, max_seconds: float = 180) -> dict[str, Any]:
    """``/cpu`` calls back to back (each burns ``burn_ms`` in a worker thread of the service)."""
    platform, _ = RECORDER.require()
    loop = _start_loop("cpu")
    RECORDER.notes["cpu_burn"] = {"service": service, "burn_ms": burn_ms, "max_seconds": max_seconds}
    RECORDER.mark("fault_on")

    def call() -> list[AdminAnswer]:
        return platform.admin_call(service, "GET", f"/cpu?duration={burn_ms}", timeout_s=burn_ms / 1000 + 15)

    max_calls = int(max_seconds * 1000 // burn_ms) + 1
    loop.run(call, 0.0, max_calls=max_calls, max_seconds=min(max_seconds, MAX_FAULT_SECONDS))
    log.info("burning CPU in %s, %d ms per call", service, burn_ms)
    return dict(RECORDER.notes["cpu_burn"])


def stop_cpu_burn() -> dict[str, Any]:
    """Stop calling /cpu (the call under way ends within its own duration); a method step and a rollback."""
    loop = _halt_loop("cpu", timeout_s=30)
    if loop is not None:
        RECORDER.notes.setdefault("cpu_burn", {})["calls"] = loop.calls
    if "fault_on" in RECORDER.moments:
        RECORDER.mark("fault_off")
    return {"calls": loop.calls if loop else 0}


def cpu_profile(service: str = "response", seconds: int = 5, top: int = 8, expect_function: str | None = None) -> str:
    """A CPU profile of the service for ``seconds``, its top functions into the report; returns the top one.

    With ``expect_function``, that function must be among the three that used the most CPU."""
    body = _answer(
        service, "GET", f"/debug/profile?seconds={seconds}&top={top}", port="ops", timeout_s=seconds + 15
    ).body
    rows = [
        {
            "function": row["function"],
            "site": f"{row['file']}:{row['line']}",
            "self_cpu_s": row["self_cpu_s"],
            "self_share": f"{row['self_share']:.0%}",
            "total_cpu_s": row["total_cpu_s"],
        }
        for row in body["top"]
    ]
    leader = f"{rows[0]['function']} ({rows[0]['site']})" if rows else "none"
    RECORDER.notes["cpu_top_function"] = leader
    _finding(
        "cpu",
        f"CPU profile of {service} ({seconds} s, every thread, top {top} functions by own CPU time)",
        f"busiest function: {leader}; {body['cpu_total_s']:.2f} CPU s in {body['samples']} samples ({body['mode']})",
        rows,
    )
    if expect_function and expect_function not in [row["function"] for row in rows[:3]]:
        _failed_check(f"{expect_function} is not among the profile's top three functions (busiest: {leader})")
    log.info("CPU profile of %s: busiest function %s", service, leader)
    return leader


# --- log storm -------------------------------------------------------------------------------------


def start_log_storm(
    service: str = "response", level: str = "error", rate_per_s: float = 10, max_seconds: float = 180
) -> dict[str, Any]:
    """``POST /log`` at ``level``, ``rate_per_s`` lines a second, for at most ``max_seconds``."""
    platform, _ = RECORDER.require()
    loop = _start_loop("log-storm")
    RECORDER.notes["log_storm"] = {"service": service, "level": level, "rate_per_s": rate_per_s}
    RECORDER.mark("fault_on")
    body = {"level": level, "message": "drill log storm: the same failure, over and over"}

    def call() -> list[AdminAnswer]:
        return platform.admin_call(service, "POST", "/log", body=body)

    max_seconds = min(max_seconds, MAX_FAULT_SECONDS)
    loop.run(call, 1 / rate_per_s, max_calls=int(rate_per_s * max_seconds), max_seconds=max_seconds, workers=4)
    log.info("log storm in %s: %g %s lines a second", service, rate_per_s, level)
    return dict(RECORDER.notes["log_storm"])


def stop_log_storm() -> dict[str, Any]:
    """Stop posting log lines; a method step and a rollback."""
    loop = _halt_loop("log-storm")
    if loop is not None:
        RECORDER.notes.setdefault("log_storm", {})["lines"] = loop.calls
        if loop.refusals or loop.errors:
            _failed_check(f"the log storm was cut short: {(loop.refusals + loop.errors)[0]}")
    if "fault_on" in RECORDER.moments:
        RECORDER.mark("fault_off")
    return {"lines": loop.calls if loop else 0}
