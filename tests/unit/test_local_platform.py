from __future__ import annotations

import importlib
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from scripts.local.programs import ProgramSpec, StateLayout, service_environment, service_program
from scripts.local.stack import service_scheme
from scripts.local.supervisor import render_config
from scripts.monitoring.files import local_paths, write_local_config
from services.common import catalog
from services.common.profiles import DRILL


def test_supervisor_config_runs_each_program_in_its_own_group(tmp_path: Path) -> None:
    state = StateLayout(tmp_path)
    program = ProgramSpec("demo", ("/bin/echo", "hi"), (1234,), None, env={"A": 'quote " and %'})
    text = render_config(state, [program], DRILL)
    assert "[program:demo]" in text
    assert "command=/bin/echo hi" in text
    assert "stopasgroup=true" in text
    assert "killasgroup=true" in text
    assert 'environment=A="quote \\" and %%"' in text
    assert f"file={state.supervisor_socket}" in text


@pytest.mark.parametrize("spec", catalog.SERVICES, ids=lambda s: s.name)
def test_local_environment_sets_only_variables_the_service_reads(spec: catalog.ServiceSpec, tmp_path: Path) -> None:
    env = service_environment(spec, StateLayout(tmp_path), "drill")
    config_module = importlib.import_module(f"{spec.module}.config")
    read = set(config_module.ENV_VARS) | {"FIREDRILL_STATE_DIR", "PYTHONUNBUFFERED"}
    assert set(env) - read == set()
    assert env["FIREDRILL_PORT"] == str(catalog.port(spec.port))


def test_health_checks_use_the_plain_ops_port(tmp_path: Path) -> None:
    for spec in catalog.SERVICES:
        program = service_program(spec, StateLayout(tmp_path), "drill", {})
        assert program.health_url == f"http://127.0.0.1:{catalog.port(spec.scrape_port)}/health"
        assert catalog.port(spec.port) in program.ports


def test_schemes_follow_the_tier() -> None:
    assert service_scheme(catalog.service("hello")) == "http"
    assert service_scheme(catalog.service("movie")) == "http"  # its HTTP/JSON front
    assert service_scheme(catalog.service("response")) == "https"
    assert service_scheme(catalog.service("metadata")) == "grpc"


def test_local_paths_are_where_the_config_is_written(tmp_path: Path) -> None:
    assert local_paths(tmp_path) == write_local_config(tmp_path, DRILL)
    assert local_paths(tmp_path).prometheus_config.exists()


def test_launcher_waits_for_the_files_then_becomes_the_command(tmp_path: Path) -> None:
    needed = tmp_path / "cert.pem"
    marker = tmp_path / "ran"
    timer = threading.Timer(0.3, needed.write_text, args=("x",))
    timer.start()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.local.launch",
            "--wait-for",
            str(needed),
            "--timeout",
            "10",
            "--",
            "touch",
            str(marker),
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    timer.join()
    assert done.returncode == 0, done.stderr
    assert marker.exists()


def test_launcher_gives_up_naming_the_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "never.pem"
    done = subprocess.run(
        [sys.executable, "-m", "scripts.local.launch", "--wait-for", str(missing), "--timeout", "0.5", "--", "true"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 1
    assert str(missing) in done.stderr
