"""A small sampling CPU profiler for a whole process: every thread, weighted by the CPU it used.

A thread samples ``sys._current_frames()`` every ``interval_s``. Each sample of a thread is weighted
by the CPU time that thread used since its previous sample (``time.pthread_getcpuclockid``), so a
thread parked in ``select`` or waiting on a queue adds nothing, and a thread spinning in a worker
(``asyncio.to_thread``) counts in full. Where per-thread CPU clocks are not available the weight is
the wall interval (``mode: "wall"``), which also counts idle threads.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

# The frames of the package's own modules are shown relative to the repository.
_ROOT = str(Path(__file__).resolve().parents[2]) + "/"

FunctionKey = tuple[str, int, str]  # file, first line, function name


def short_path(filename: str) -> str:
    return filename.removeprefix(_ROOT)


@dataclass(frozen=True, slots=True)
class FunctionCost:
    function: str
    file: str
    line: int
    self_cpu_s: float
    total_cpu_s: float

    def as_dict(self, cpu_total_s: float) -> dict[str, object]:
        return {
            "function": self.function,
            "file": self.file,
            "line": self.line,
            "self_cpu_s": round(self.self_cpu_s, 4),
            "total_cpu_s": round(self.total_cpu_s, 4),
            "self_share": round(self.self_cpu_s / cpu_total_s, 4) if cpu_total_s else 0.0,
        }


@dataclass(frozen=True, slots=True)
class CpuProfile:
    seconds: float
    interval_s: float
    samples: int
    mode: str  # "cpu": weighted by each thread's CPU time; "wall": by the sampling interval
    cpu_total_s: float
    functions: tuple[FunctionCost, ...]  # by self cost, highest first

    def top(self, count: int) -> list[FunctionCost]:
        return list(self.functions[:count])

    def as_dict(self, count: int) -> dict[str, object]:
        return {
            "seconds": self.seconds,
            "interval_ms": round(self.interval_s * 1000, 3),
            "samples": self.samples,
            "mode": self.mode,
            "cpu_total_s": round(self.cpu_total_s, 4),
            "top": [f.as_dict(self.cpu_total_s) for f in self.top(count)],
        }

    def as_text(self, count: int) -> str:
        lines = [
            f"CPU profile: {self.seconds:g} s, {self.samples} samples every {self.interval_s * 1000:g} ms, "
            f"{self.cpu_total_s:.3f} CPU s in total ({self.mode})",
            f"{'self s':>8} {'self %':>7} {'total s':>8}  function (file:line)",
        ]
        for f in self.top(count):
            share = f.self_cpu_s / self.cpu_total_s if self.cpu_total_s else 0.0
            lines.append(f"{f.self_cpu_s:8.3f} {share:7.1%} {f.total_cpu_s:8.3f}  {f.function} ({f.file}:{f.line})")
        return "\n".join(lines) + "\n"


def _thread_cpu_s(ident: int) -> float | None:
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(ident))
    except (AttributeError, OSError, ValueError):  # not Linux, or the thread has just ended
        return None


def _stack_keys(frame: FrameType | None) -> list[FunctionKey]:
    keys: list[FunctionKey] = []
    while frame is not None:
        code = frame.f_code
        keys.append((code.co_filename, code.co_firstlineno, code.co_name))
        frame = frame.f_back
    return keys


def sample(seconds: float, interval_s: float = 0.005) -> CpuProfile:
    """Sample every thread but this one for ``seconds`` (blocking: run it in a thread of its own)."""
    me = threading.get_ident()
    per_thread_cpu = hasattr(time, "pthread_getcpuclockid") and _thread_cpu_s(me) is not None
    last_cpu: dict[int, float] = {}
    self_cost: dict[FunctionKey, float] = defaultdict(float)
    total_cost: dict[FunctionKey, float] = defaultdict(float)
    samples = 0
    deadline = time.monotonic() + seconds
    previous = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        time.sleep(min(interval_s, deadline - now))
        now = time.monotonic()
        wall = now - previous
        previous = now
        samples += 1
        for ident, frame in sys._current_frames().items():
            if ident == me:
                continue
            if per_thread_cpu:
                used = _thread_cpu_s(ident)
                if used is None:
                    continue
                weight = used - last_cpu.get(ident, used)
                last_cpu[ident] = used
            else:
                weight = wall
            if weight <= 0:
                continue
            stack = _stack_keys(frame)
            if not stack:
                continue
            self_cost[stack[0]] += weight
            for key in set(stack):
                total_cost[key] += weight
    functions = tuple(
        FunctionCost(name, short_path(filename), line, cost, total_cost[(filename, line, name)])
        for (filename, line, name), cost in sorted(self_cost.items(), key=lambda item: item[1], reverse=True)
    )
    return CpuProfile(
        seconds=seconds,
        interval_s=interval_s,
        samples=samples,
        mode="cpu" if per_thread_cpu else "wall",
        cpu_total_s=sum(self_cost.values()),
        functions=functions,
    )
