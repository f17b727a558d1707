"""Strategies, versions on the local platform, what a canary served, the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.canary import __main__ as canary_main
from scripts.canary.local_target import exposure_from_metrics
from scripts.canary.strategies import CANARY_WEIGHTS, blue_green_plan, canary_plan, plan_for, rolling_plan
from scripts.local.programs import StateLayout
from scripts.local.versions import (
    Canary,
    DeployedVersions,
    VersionError,
    built_in_fault,
    canary_programs,
    check_version,
    stable_environment,
)
from services.common.config import ConfigError, ServiceConfig
from services.response.config import ResponseConfig


def test_the_plans_weights() -> None:
    assert [s.weight_percent for s in canary_plan().steps] == list(CANARY_WEIGHTS) == [1, 5, 10, 25, 50, 100]
    assert [s.weight_percent for s in rolling_plan(1).steps] == [50, 100]
    assert [s.weight_percent for s in rolling_plan(3).steps] == [25, 50, 75, 100]
    assert [(s.weight_percent, s.analysed) for s in blue_green_plan().steps] == [(0, False), (100, True)]
    assert "not analysed" in blue_green_plan().describe()[0]
    with pytest.raises(ValueError, match="unknown strategy"):
        plan_for("big-bang", 1)
    with pytest.raises(ValueError, match="at least one"):
        rolling_plan(0)


def test_a_service_reports_its_version_and_refuses_a_malformed_one() -> None:
    assert ServiceConfig.from_env("hello", {"FIREDRILL_VERSION": "2.0-rc1"}).version == "2.0-rc1"
    assert ServiceConfig.from_env("hello", {}).version  # the package's version by default
    with pytest.raises(ConfigError, match="FIREDRILL_VERSION"):
        ServiceConfig.from_env("hello", {"FIREDRILL_VERSION": "2 bad"})


def test_a_bad_version_starts_with_its_fault_built_in() -> None:
    assert built_in_fault("2") == {}
    errors = ResponseConfig.from_env({"FIREDRILL_VERSION": "2-bad-errors", **built_in_fault("2-bad-errors")})
    assert errors.startup_fault.error_ratio == 0.5
    assert errors.startup_fault.latency_ms == 0
    latency = ResponseConfig.from_env(built_in_fault("2-bad-latency"))
    assert latency.startup_fault.latency_ms == 400
    check_version("rating", "2-bad-latency")
    with pytest.raises(VersionError, match="no setting"):
        check_version("hello", "2-bad-errors")
    with pytest.raises(VersionError, match="letters"):
        check_version("response", "../2")


def test_deployed_versions_feed_the_programs(tmp_path: Path) -> None:
    state = StateLayout(tmp_path)
    versions = DeployedVersions(state)
    assert stable_environment(state, "response") == {}
    versions.set_stable("response", "2")
    assert stable_environment(state, "response") == {"FIREDRILL_VERSION": "2"}
    versions.set_canary("response", Canary("response", "3-bad-errors", port=7001, metrics_port=7002))
    [program] = canary_programs(state, "drill", {"response": {"FIREDRILL_TLS_CERT_FILE": "/certs/c.pem"}})
    assert program.name == "response-canary"
    assert program.ports == (7001, 7002)
    assert program.health_url == "http://127.0.0.1:7002/health"
    assert program.env["FIREDRILL_PORT"] == "7001"
    assert program.env["FIREDRILL_METRICS_PORT"] == "7002"
    assert program.env["FIREDRILL_VERSION"] == "3-bad-errors"
    assert program.env["FIREDRILL_FAULT_ERROR_RATIO"] == "0.5"
    assert program.env["FIREDRILL_TLS_CERT_FILE"] == "/certs/c.pem"
    versions.set_canary("response", None)
    assert canary_programs(state, "drill", {}) == []
    (versions.folder / "versions.json").write_text("[1, 2]")
    with pytest.raises(VersionError, match="JSON object"):
        versions.stable()


def test_what_a_canary_served_is_read_from_its_own_counters() -> None:
    text = "\n".join(
        [
            "# TYPE http_requests_total counter",
            'http_requests_total{service="response",method="GET",path="/response",status="200"} 30.0',
            'http_requests_total{service="response",method="GET",path="/response",status="500"} 12.0',
            'http_requests_total{service="response",method="GET",path="/response",status="404"} 1.0',
            'http_requests_total{service="response",method="GET",path="/health",status="200"} 7.0',
            "# TYPE grpc_server_handled_total counter",
            'grpc_server_handled_total{grpc_service="s",grpc_method="m",grpc_code="UNAVAILABLE"} 2.0',
            "",
        ]
    )
    exposure = exposure_from_metrics(text)
    assert (exposure.served, exposure.failed) == (45, 14)


def test_help_and_refusals_of_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as done:
        canary_main.main(["--help"])
    assert done.value.code == 0
    assert "--dry-run" in capsys.readouterr().out
    monkeypatch.delenv("NOMAD_ADDR", raising=False)
    monkeypatch.setenv("FIREDRILL_STATE_DIR", str(tmp_path))
    # Nothing runs in an empty state directory: the plan is printed, and why it would refuse.
    assert canary_main.main(["--service", "response", "--version", "2", "--dry-run"]) == 2
    out = capsys.readouterr().out
    assert "1 % of calls to the canary" in out
    assert "not running" in out
    assert canary_main.main(["--service", "response"]) == 2
    assert "--version is required" in capsys.readouterr().err


def test_without_the_analysis_module_no_rollout_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "scripts.canary.analysis", None)  # as if the module were absent
    with pytest.raises(canary_main.AnalysisMissing, match="promote blindly"):
        canary_main.build_analysis("http://127.0.0.1:1", Path("templates"))
    with pytest.raises(canary_main.AnalysisMissing, match="module:function"):
        canary_main.build_analysis("http://127.0.0.1:1", Path("templates"), "no-function-named")
    with pytest.raises(canary_main.AnalysisMissing, match="no function nope"):
        canary_main.build_analysis("http://127.0.0.1:1", Path("templates"), "scripts.canary.driver:nope")


def test_ctrl_c_and_sigterm_ask_the_rollout_to_stop(capsys: pytest.CaptureFixture[str]) -> None:
    import signal
    import threading

    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        canary_main._install_stop_handlers(stop)
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set()
        signal.raise_signal(signal.SIGINT)  # a second one does not kill the rollback
        assert "still rolling back" in capsys.readouterr().out
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
