"""Processes started outside supervisord (tests, benches, test beds), each stopped with what it started.

``spawn`` runs a command in its own process group with its output in a log file; stopping sends
SIGTERM to the group, waits a bounded time, then SIGKILLs the group. ``ServiceProcess`` is one
catalog service (``python -m services.<name>``) on loopback ports with the standard environment,
started and waited for until healthy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from scripts.local.programs import StateLayout, local_url
from scripts.ports import free_port
from services.common import catalog
from services.common.config import TlsFiles
from services.common.waiting import wait_until

REPO = Path(__file__).resolve().parent.parent
STOP_WAIT_S = 15.0
KILL_WAIT_S = 5.0
HEALTH_TIMEOUT_S = 30.0


def http_ok(url: str, timeout_s: float = 1.0, context: ssl.SSLContext | None = None) -> bool:
    """True when ``url`` answers 2xx (with a client certificate when ``context`` carries one)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s, context=context) as answer:  # noqa: S310 (loopback URLs)
            return bool(200 <= answer.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


@dataclass
class Spawned:
    """A process leading its own process group, so a stop reaches whatever it started too."""

    name: str
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def _signal_group(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def terminate(self) -> None:
        """SIGTERM to the group, without waiting (``stop_all`` stops several at once)."""
        if self.running:
            self._signal_group(signal.SIGTERM)

    def wait_or_kill(self, timeout_s: float = STOP_WAIT_S) -> None:
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=KILL_WAIT_S)

    def stop(self, timeout_s: float = STOP_WAIT_S) -> None:
        if self.running:
            self.terminate()
            self.wait_or_kill(timeout_s)

    def kill(self) -> None:
        """SIGKILL to the group: no shutdown code runs, exactly like a crash."""
        if self.running:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=KILL_WAIT_S * 2)


def spawn(
    name: str, command: Sequence[str], log_file: Path, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Spawned:
    """Start ``command`` in a new session (its own process group), stdout and stderr appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            list(command),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Spawned(name, process, log_file)


class Stoppable(Protocol):
    def terminate(self) -> None: ...

    def wait_or_kill(self, timeout_s: float = STOP_WAIT_S) -> None: ...


def stop_all(processes: Iterable[Stoppable], timeout_s: float = STOP_WAIT_S) -> None:
    """Stop several at once: SIGTERM every group (last started first), then wait for each."""
    ordered = list(processes)
    for item in reversed(ordered):
        item.terminate()
    for item in ordered:
        item.wait_or_kill(timeout_s)


def service_environment(
    name: str, state_dir: Path, *, log_level: str | None = "WARNING", tls: TlsFiles | None = None
) -> dict[str, str]:
    """Where a service outside the platform keeps its state, registry and data; loopback, local discovery."""
    state = StateLayout(state_dir)
    env = {
        "FIREDRILL_STATE_DIR": str(state.root),
        "FIREDRILL_BIND_HOST": "127.0.0.1",
        "FIREDRILL_DISCOVERY": "local",
        "FIREDRILL_REGISTRY_DIR": str(state.registry),
        "FIREDRILL_DATA_DIR": str(state.data(name)),
    }
    if log_level is not None:
        env["FIREDRILL_LOG_LEVEL"] = log_level
    if tls is not None:
        env |= tls.as_environment()
    return env


def inherited_environment() -> dict[str, str]:
    """The caller's environment without Firedrill settings: a spawned service gets only what it is given."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FIREDRILL_") and key != "OTEL_EXPORTER_OTLP_ENDPOINT"
    }


class ServiceProcess:
    """One catalog service as a process on loopback ports, with the standard environment.

    ``env`` adds or overrides variables; ports are free ones unless given. ``start`` may be
    called again after ``stop`` or ``kill``: same ports, same state directory.
    """

    def __init__(
        self,
        name: str,
        state_dir: Path,
        *,
        port: int | None = None,
        metrics_port: int | None = None,
        log_level: str | None = "WARNING",
        tls: TlsFiles | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = catalog.service(name)
        self.name = name
        self.state = StateLayout(state_dir)
        self.port = port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.tls = tls
        self._env = {
            **service_environment(name, state_dir, log_level=log_level, tls=tls),
            "FIREDRILL_PORT": str(self.port),
            "FIREDRILL_METRICS_PORT": str(self.metrics_port),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.spawned: Spawned | None = None

    @property
    def log_file(self) -> Path:
        return self.state.logs / f"{self.name}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ops_url(self, path: str = "/health") -> str:
        """The plain HTTP /health and /metrics site, whatever the main port speaks."""
        return local_url(self.metrics_port, path)

    def environ(self) -> dict[str, str]:
        return {**inherited_environment(), **self._env}

    def start(self, healthy: Callable[[], bool] | None = None, timeout_s: float = HEALTH_TIMEOUT_S) -> ServiceProcess:
        """Start, and wait until ``healthy`` (default: the plain /health answers 2xx)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.spawned = spawn(self.name, python_module(self.spec.module), self.log_file, env=self.environ(), cwd=REPO)
        probe = healthy or (lambda: http_ok(self.ops_url()))
        wait_until(
            lambda: self._still_running() and probe(),
            timeout_s=timeout_s,
            interval_s=0.05,
            what=f"{self.name} healthy (log in {self.log_file})",
        )
        return self

    def _still_running(self) -> bool:
        if self.spawned is not None and not self.spawned.running:
            code = self.spawned.process.returncode
            raise RuntimeError(f"{self.name} exited with {code} while starting; see {self.log_file}")
        return True

    @property
    def running(self) -> bool:
        return self.spawned is not None and self.spawned.running

    @property
    def pid(self) -> int:
        if self.spawned is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.spawned.pid

    def terminate(self) -> None:
        if self.spawned is not None:
            self.spawned.terminate()

    def wait_or_kill(self, timeout_s: float = STOP_WAIT_S) -> None:
        if self.spawned is not None:
            self.spawned.wait_or_kill(timeout_s)

    def stop(self, timeout_s: float = STOP_WAIT_S) -> None:
        if self.spawned is not None:
            self.spawned.stop(timeout_s)

    def kill(self) -> None:
        if self.spawned is not None:
            self.spawned.kill()
