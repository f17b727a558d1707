"""Run wrk against a loopback URL and parse what it reports."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scripts.traffic import assert_loopback

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    requests_per_s: float
    p50_s: float
    p99_s: float
    errors: int


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> WrkResult:
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _seconds(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _seconds(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        errors += int(non2xx.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return WrkResult(requests, rate, p50, p99, errors)


def run_wrk(
    url: str,
    *,
    duration_s: int,
    connections: int,
    threads: int = 1,
    cpu: int | None = None,
    pause_ms: int | None = None,
) -> WrkResult:
    """``cpu``: run wrk on that core only (``taskset``), away from the servers being measured.
    ``pause_ms``: each connection waits that long after an answer before its next request (wrk's
    ``delay`` hook), so the offered load is paced instead of as much as the server can take."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: run `make setup` (Debian package wrk)")
    if not 1 <= duration_s <= 600:
        raise ValueError("wrk duration must be between 1 and 600 seconds")
    assert_loopback(url)
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    with tempfile.TemporaryDirectory(prefix="fd-wrk-") as tmp:
        script: list[str] = []
        if pause_ms is not None:
            path = Path(tmp) / "pause.lua"
            path.write_text(f"function delay()\n  return {int(pause_ms)}\nend\n")
            script = ["-s", str(path)]
        output = subprocess.run(
            [*pin, "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency", *script, url],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration_s + 30,
        ).stdout
    return parse(output)
