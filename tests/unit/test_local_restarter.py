"""The local platform never gives up on a program, and `make status` says why one is down."""

from __future__ import annotations

import io
import json
import urllib.request
from pathlib import Path
from typing import Any

from scripts.local.programs import ProgramSpec, StateLayout
from scripts.local.reasons import explaining_line, reason, tail_lines
from scripts.local.restart_metrics import RestartMetrics, write_target
from scripts.local.restarter import EVENTS, Backoff, listen, start_if_still_failed
from scripts.local.supervisor import RESTARTER, render_config
from services.common import catalog
from services.common.profiles import DRILL, PRODUCTION, duration
from tests.unit.helpers import Clock


def test_backoff_doubles_up_to_the_cap_and_restarts_from_the_first_delay_after_a_long_run() -> None:
    clock = Clock()
    backoff = Backoff(DRILL.restart_delay_s, DRILL.restart_max_delay_s, clock)
    delays = [backoff.failed("response")[1] for _ in range(7)]
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.failed("hello") == (1, 1)  # each program has its own run of failures
    backoff.running("response")
    clock.now += 5  # up only briefly: still the same run of failures
    assert backoff.failed("response") == (8, 30)
    backoff.running("response")
    clock.now += DRILL.restart_max_delay_s
    assert backoff.failed("response") == (1, 1)


def test_production_delays_are_the_nomad_reschedule_block() -> None:
    text = (Path(__file__).resolve().parents[2] / "jobs" / "response.nomad.hcl").read_text()
    block = text[text.index("reschedule {") :].split("}", 1)[0]
    assert f'delay          = "{duration(PRODUCTION.restart_delay_s)}"' in block
    assert f'max_delay      = "{duration(PRODUCTION.restart_max_delay_s)}"' in block
    backoff = Backoff(PRODUCTION.restart_delay_s, PRODUCTION.restart_max_delay_s)
    assert [backoff.failed("x")[1] for _ in range(6)] == [30, 60, 120, 240, 480, 600]


def _event(name: str, process: str, details: str) -> str:
    payload = f"processname:{process} groupname:{process} {details}"
    header = f"ver:3.0 server:supervisor serial:1 pool:{RESTARTER} poolserial:1 eventname:{name} len:{len(payload)}\n"
    return header + payload


class FakeSupervisor:
    def __init__(self, state: str) -> None:
        self.state = state
        self.started: list[str] = []

    def getProcessInfo(self, name: str) -> dict[str, Any]:
        return {"name": name, "statename": self.state}

    def startProcess(self, name: str, wait: bool) -> bool:
        self.started.append(name)
        return True


class FakeRpc:
    def __init__(self, state: str) -> None:
        self.supervisor = FakeSupervisor(state)


def test_the_listener_answers_every_event_and_schedules_a_start_only_for_fatal(monkeypatch: Any) -> None:
    scheduled: list[tuple[float, tuple[Any, ...]]] = []

    class Timer:
        def __init__(self, delay: float, _function: Any, args: tuple[Any, ...]) -> None:
            scheduled.append((delay, args))
            self.daemon = False

        def start(self) -> None:
            return None

    monkeypatch.setattr("scripts.local.restarter.threading.Timer", Timer)
    stdin = io.StringIO(
        _event("PROCESS_STATE_RUNNING", "hello", "from_state:STARTING pid:10")
        + _event("PROCESS_STATE_FATAL", "response", "from_state:BACKOFF")
        + _event("PROCESS_STATE_EXITED", "hello", "from_state:STOPPING expected:1 pid:10")  # a clean exit
        + _event("PROCESS_STATE_FATAL", "response", "from_state:BACKOFF")
        + _event("PROCESS_STATE_EXITED", "auth", "from_state:RUNNING expected:0 pid:11")  # a crash
    )
    stdout = io.StringIO()
    listen(Backoff(1, 30), FakeRpc("FATAL"), stdin, stdout)  # returns when stdin ends, as when supervisord stops
    assert stdout.getvalue().count("RESULT 2\nOK") == 5
    assert [(delay, args[1:]) for delay, args in scheduled] == [
        (1, ("response", 1)),
        (2, ("response", 2)),
        (1, ("auth", 1)),
    ]


def test_a_program_started_or_stopped_meanwhile_is_left_alone() -> None:
    fatal, exited, stopped, running = FakeRpc("FATAL"), FakeRpc("EXITED"), FakeRpc("STOPPED"), FakeRpc("RUNNING")
    for rpc in (fatal, exited, stopped, running):
        start_if_still_failed(rpc, "response", 1)
    assert fatal.supervisor.started == exited.supervisor.started == ["response"]
    assert stopped.supervisor.started == running.supervisor.started == []


def test_supervisord_config_leaves_every_restart_to_the_restarter(tmp_path: Path) -> None:
    program = ProgramSpec("demo", ("/bin/true",), (), None)
    text = render_config(StateLayout(tmp_path), [program], DRILL)
    assert "autorestart=false" in text.split("[program:demo]", 1)[1]
    assert f"[eventlistener:{RESTARTER}]" in text
    assert "-m scripts.local.restarter --profile drill" in text
    assert f"events={','.join(EVENTS)}" in text


def _log(*entries: dict[str, Any] | str) -> list[str]:
    return [e if isinstance(e, str) else json.dumps(e) for e in entries]


def test_the_explaining_line_is_the_newest_warning_or_plain_text() -> None:
    waiting = {"level": "WARNING", "message": "waiting for the admin token: /s/response/admin-token"}
    assert explaining_line(_log(waiting, {"level": "INFO", "message": "still here"})) == waiting["message"]
    crashed = _log(waiting, "Traceback (most recent call last):", "  ...", "OSError: [Errno 98] address in use")
    assert explaining_line(crashed) == "OSError: [Errno 98] address in use"
    assert explaining_line(_log({"level": "INFO", "message": "fine"})) is None


def test_reason_names_spawn_error_restarter_plan_and_log(tmp_path: Path) -> None:
    program_log, restarter_log = tmp_path / "response.log", tmp_path / "restarter.log"
    program_log.write_text("configuration error: FIREDRILL_PORT: must be between 1 and 65535, got 0\n")
    restarter_log.write_text(
        "\n".join(
            _log(
                {"program": "response", "message": "response failed to start; starting it again in 4s (attempt 3)"},
                {"program": "hello", "message": "hello failed to start; starting it again in 1s (attempt 1)"},
            )
        )
        + "\n"
    )
    info = {"name": "response", "statename": "FATAL", "description": "Exited too quickly", "spawnerr": ""}
    assert reason(info, program_log, restarter_log) == (
        "Exited too quickly; restarter: response failed to start; starting it again in 4s (attempt 3); "
        "log: configuration error: FIREDRILL_PORT: must be between 1 and 65535, got 0"
    )
    missing = {"name": "x", "statename": "BACKOFF", "spawnerr": "can't find command 'nope'"}
    assert reason(missing, tmp_path / "none.log", restarter_log) == "can't find command 'nope'"


def test_tail_lines_reads_only_the_end_of_a_large_log(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i}\n" for i in range(100_000)))
    lines = tail_lines(log, max_bytes=1000)
    assert lines[-1] == "line 99999"
    assert all(line.startswith("line ") for line in lines)  # no partial first line
    assert len(lines) < 100


class UnstartedTimer:
    """A start the restarter schedules; never run here (the test looks at the counts only)."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        self.daemon = False

    def start(self) -> None:
        return None


def test_every_failed_run_followed_by_a_start_is_counted_once(monkeypatch: Any) -> None:
    monkeypatch.setattr("scripts.local.restarter.threading.Timer", UnstartedTimer)
    stdin = io.StringIO(
        _event("PROCESS_STATE_RUNNING", "hello", "from_state:STARTING pid:10")
        + _event("PROCESS_STATE_RUNNING", "response", "from_state:STARTING pid:11")
        # response dies at start-up: supervisord's quick retries, then FATAL (which follows the last BACKOFF)
        + _event("PROCESS_STATE_BACKOFF", "response", "from_state:STARTING")
        + _event("PROCESS_STATE_BACKOFF", "response", "from_state:STARTING")
        + _event("PROCESS_STATE_FATAL", "response", "from_state:BACKOFF")
        + _event("PROCESS_STATE_EXITED", "auth", "from_state:RUNNING expected:0 pid:12")  # a crash
        + _event("PROCESS_STATE_EXITED", "hello", "from_state:STOPPING expected:1 pid:10")  # an operator's stop
    )
    metrics = RestartMetrics()
    listen(Backoff(1, 30), FakeRpc("FATAL"), stdin, io.StringIO(), metrics=metrics)
    assert (metrics.count("response"), metrics.count("auth"), metrics.count("hello")) == (2, 1, 0)
    # A program seen running exports its series from 0, so a window over it has a start.
    assert metrics.registry.get_sample_value("firedrill_restarts_total", {"service": "hello"}) == 0


def test_the_counts_are_served_and_announced_to_prometheus(tmp_path: Path) -> None:
    metrics = RestartMetrics()
    metrics.restarted("response")
    port = metrics.serve(0)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    assert 'firedrill_restarts_total{service="response"} 1.0' in text
    target = write_target(tmp_path / "targets", f"127.0.0.1:{port}")
    assert json.loads(target.read_text()) == [{"targets": [f"127.0.0.1:{port}"], "labels": {"job": "restarter"}}]
    assert [p.name for p in target.parent.iterdir()] == ["restarter.json"]  # no temporary file left behind


def test_supervisord_runs_the_restarter_with_its_metrics_port_and_target_folder(tmp_path: Path) -> None:
    text = render_config(StateLayout(tmp_path), [], DRILL)
    port = catalog.port(catalog.infra(RESTARTER).port)
    assert f"--metrics-port {port} --targets-dir {tmp_path / 'prometheus' / 'targets'}" in text
