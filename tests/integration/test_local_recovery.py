"""The real local platform recovers by itself: from secrets that are missing at start-up, and from
programs supervisord gave up on; `make status` says why a program is down meanwhile."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from scripts.deploy_target.interface import PlatformError, UnitStatus
from scripts.local.__main__ import main as local_cli
from services.common import catalog
from services.common.waiting import wait_until
from tests.integration.conftest import RunningPlatform

pytestmark = pytest.mark.integration


def _unit(running: RunningPlatform, name: str) -> UnitStatus:
    return next(unit for unit in running.platform.status() if unit.name == name)


def _status_row(running: RunningPlatform, capsys: pytest.CaptureFixture[str], name: str, text: str) -> str | None:
    """The program's row of `make status` (python -m scripts.local status) once it contains ``text``."""
    local_cli(["--state-dir", str(running.state_dir), "status"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.split(" ", 1)[0] == name]
    return rows[0] if rows and text in rows[0] else None


def _restarter_log(running: RunningPlatform) -> Path:
    return running.state_dir / "logs" / "restarter.log"


@contextlib.contextmanager
def _stopped(running: RunningPlatform, name: str) -> Iterator[None]:
    running.platform.stop(name)
    try:
        yield
    finally:
        running.platform.start(name)


def test_response_started_without_its_secrets_waits_and_serves_once_they_are_rendered(
    local_platform: RunningPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = local_platform.platform
    folder = local_platform.state_dir / "secrets" / "response"
    token = folder / "admin-token"
    try:
        with _stopped(local_platform, "vault-agent"):  # nothing renders the files again meanwhile
            platform.stop("response")
            for name in ("admin-token", "cert.pem", "key.pem"):
                (folder / name).unlink()
            platform.start("response")  # today's code: exits at once, then FATAL after three retries
            row = wait_until(
                partial(_status_row, local_platform, capsys, "response", str(token)),
                timeout_s=20,
                interval_s=0.2,
                what="`make status` naming the missing admin token",
            )
            assert "waiting for the admin token" in row
            assert _unit(local_platform, "response").healthy is False
        # The agent is back: it renders the files again, and response goes on by itself.
        wait_until(
            lambda: _unit(local_platform, "response").healthy,
            timeout_s=60,
            interval_s=0.2,
            what="response healthy again without a manual restart",
        )
    finally:
        with contextlib.suppress(PlatformError):
            platform.start("response")
    platform.set_fault("response", latency_ms=0, error_ratio=0.0)  # the token it read is the rendered one
    assert _unit(local_platform, "response").state == "RUNNING"


def _listening_on(port: int) -> socket.socket:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", port))
    holder.listen()
    return holder


def test_a_program_supervisord_gave_up_on_is_started_again_with_back_off(
    local_platform: RunningPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prometheus fails within milliseconds when its port is taken: supervisord's three quick
    # retries run out and it marks the program FATAL, the state it used to stay in.
    platform = local_platform.platform
    port = catalog.port(catalog.infra("prometheus").port)
    restarter_log = _restarter_log(local_platform)
    platform.stop("prometheus")
    holder = _listening_on(port)
    try:
        with contextlib.suppress(PlatformError):
            platform.start("prometheus")
        row = wait_until(
            partial(_status_row, local_platform, capsys, "prometheus", "restarter:"),
            timeout_s=60,
            interval_s=0.2,
            what="`make status` showing the restarter's next attempt",
        )
        assert row.split()[1] in {"FATAL", "EXITED"}  # given up on by supervisord, or crashed after starting
        assert "address already in use" in row
        wait_until(
            lambda: "(attempt 2)" in restarter_log.read_text(),
            timeout_s=60,
            interval_s=0.2,
            what="a second attempt, after a longer delay",
        )
    finally:
        holder.close()
    wait_until(
        lambda: _unit(local_platform, "prometheus").healthy,
        timeout_s=90,
        interval_s=0.2,
        what="prometheus started again by the restarter once its port is free",
    )
    log = restarter_log.read_text()
    assert "starting it again in 1s (attempt 1)" in log
    assert "starting it again in 2s (attempt 2)" in log


def test_a_program_that_crashes_is_started_again(local_platform: RunningPlatform) -> None:
    local_platform.platform.kill("hello")  # SIGKILL: supervisord restarts nothing itself
    wait_until(
        lambda: (
            "hello exited unexpectedly; starting it again in 1s (attempt 1)"
            in _restarter_log(local_platform).read_text()
        ),
        timeout_s=30,
        interval_s=0.1,
        what="the restarter noticing the crash",
    )
    wait_until(
        lambda: _unit(local_platform, "hello").healthy,
        timeout_s=60,
        interval_s=0.2,
        what="hello running and healthy again",
    )
