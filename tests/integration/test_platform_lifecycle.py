"""The local platform comes up, tolerates a second `up`, reports status, and goes down cleanly."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.deploy_target.interface import PlatformError
from scripts.local.stack import LocalPlatform
from scripts.ports import port_is_free, process_alive, reserved_port_offset
from services.common import catalog
from services.common.profiles import DRILL

pytestmark = pytest.mark.integration


@pytest.fixture
def offset_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    for binary in ("prometheus", "prometheus-alertmanager"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed (run `make setup`)")
    with reserved_port_offset(catalog.base_ports()) as offset:
        monkeypatch.setenv("FIREDRILL_PORT_OFFSET", str(offset))
        yield {**os.environ, "FIREDRILL_STATE_DIR": str(tmp_path / "state")}


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.local", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _pids(platform: LocalPlatform) -> dict[str, int]:
    return {p["name"]: p["pid"] for p in platform.supervisor.processes()}


def _service_ports() -> list[int]:
    ports = [p for s in catalog.SERVICES for p in (s.port, s.metrics_port, s.http_port) if p is not None]
    return [catalog.port(p) for p in ports]


def test_up_twice_status_and_down_leave_nothing_behind(offset_env: dict[str, str], tmp_path: Path) -> None:
    platform = LocalPlatform(tmp_path / "state", DRILL)
    first = _cli(offset_env, "up")
    try:
        assert first.returncode == 0, first.stderr + first.stdout
        assert "healthy" in first.stdout
        assert f"http://127.0.0.1:{catalog.port(5050)}" in first.stdout
        before = _pids(platform)
        assert all(pid > 0 for pid in before.values()), before
        second = _cli(offset_env, "up")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        assert _pids(platform) == before, "a second `up` must not restart anything"
        status = _cli(offset_env, "status")
        assert status.returncode == 0, status.stdout
        for name in ("hello", "response", "prometheus", "alertmanager"):
            assert name in status.stdout
        supervisord_pid = int((tmp_path / "state" / "supervisord.pid").read_text())
    finally:
        down = _cli(offset_env, "down")
    assert down.returncode == 0, down.stderr
    assert not process_alive(supervisord_pid)
    leftovers = [name for name, pid in before.items() if process_alive(pid)]
    assert leftovers == [], f"orphans after down: {leftovers}"
    assert all(port_is_free(port) for port in _service_ports())


def test_a_port_in_use_is_named(offset_env: dict[str, str], tmp_path: Path) -> None:
    port = catalog.port(catalog.service("response").port)
    with socket.socket() as squatter:
        # A connection of an earlier run on this offset may linger in TIME_WAIT; a listener still squats.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        platform = LocalPlatform(tmp_path / "other", DRILL)
        with pytest.raises(PlatformError, match=f"port {port} \\(response\\) is already in use"):
            platform.up()
    assert not platform.supervisor.running()
