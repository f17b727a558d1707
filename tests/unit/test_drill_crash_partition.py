"""The crash-loop and partition drills' own judgement: the incident they count, the deadline probe, refusal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scripts.cluster.client import make_client
from scripts.deploy_target.interface import Endpoints
from scripts.deploy_target.nomad import NomadPlatform
from scripts.drills import catalogue, probes
from scripts.drills.recorder import RECORDER
from scripts.drills.report import DrillResult, build_result
from scripts.local.stack import LocalPlatform
from services.common.waiting import TimedOut

JOURNAL = {"status": "completed", "deviated": False}


def _result(incidents: list[dict[str, Any]]) -> DrillResult:
    spec = catalogue.load("crash-loop")
    return build_result(
        experiment="crash-loop",
        service="response",
        journal=JOURNAL,
        moments={"fault_on": 1.0, "alert_firing": 9.0, "fault_off": 20.0},
        notes={"alerts_seen": {"CrashLooping|response": 9.0, "ServiceDown|response": 5.0}},
        traffic=None,
        incidents=incidents,
        spec=spec,
    )


def test_the_crash_loop_counts_its_own_incident_beside_servicedowns() -> None:
    result = _result(
        [
            {"id": 7, "alertname": "CrashLooping", "status": "resolved"},
            {"id": 6, "alertname": "ServiceDown", "status": "resolved"},
        ]
    )
    assert result.incidents_for_service == 1
    assert result.incident is not None
    assert result.incident["alertname"] == "CrashLooping"
    assert result.symptom_alerts == ["ServiceDown{service=response}"]
    assert result.failed_expectations() == []
    assert result.passed


def test_a_storm_that_opens_an_incident_per_restart_fails() -> None:
    result = _result(
        [
            {"id": 8, "alertname": "CrashLooping", "status": "resolved"},
            {"id": 6, "alertname": "ServiceDown", "status": "resolved"},
            {"id": 5, "alertname": "ServiceDown", "status": "resolved"},
        ]
    )
    assert not result.passed
    assert result.failed_expectations() == ["more than one incident for one alert: ServiceDown"]


class _Hello(BaseHTTPRequestHandler):
    status = 504

    def do_GET(self) -> None:
        body = b'{"error": "response did not answer within 2.00s"}'
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return None


@pytest.fixture
def hello_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture
def attached(tmp_path: Path, hello_url: str, monkeypatch: pytest.MonkeyPatch) -> LocalPlatform:
    platform = LocalPlatform(tmp_path)
    endpoints = Endpoints(services={"hello": hello_url}, prometheus="", alertmanager="", incidents="")
    monkeypatch.setattr(RECORDER, "platform", platform)
    monkeypatch.setattr(RECORDER, "endpoints", endpoints)
    monkeypatch.setattr(RECORDER, "notes", {})
    return platform


def test_a_caller_that_fails_fast_with_a_5xx_holds_its_deadline(attached: LocalPlatform) -> None:
    seen = probes.caller_fails_within_deadline("hello", "/hello", deadline_s=2.0, slack_s=1.0, samples=2)
    assert seen["statuses"] == [504, 504]
    assert "did not answer" in seen["example"]
    assert RECORDER.notes["deadline"] == seen


def test_a_caller_that_still_answers_200_means_the_partition_did_not_cut(
    attached: LocalPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_Hello, "status", 200)
    with pytest.raises(TimedOut, match="calls to fail once its upstream is cut off"):
        probes.caller_fails_within_deadline("hello", "/hello", samples=1, cut_within_s=1.0)


def test_the_partition_drill_refuses_where_the_platform_cannot_cut(
    attached: LocalPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert probes.partition_possible("hello", "response") == "yes"
    nomad = NomadPlatform(make_client({"NOMAD_ADDR": "http://127.0.0.1:9"}), jobs=(), environ={})
    monkeypatch.setattr(RECORDER, "platform", nomad)
    assert "run the partition drill on the local platform" in probes.partition_possible("hello", "response")


def test_a_method_probe_that_raised_fails_the_drill_though_chaos_toolkit_carried_on() -> None:
    spec = catalogue.load("partition")
    journal = {
        **JOURNAL,
        "run": [
            {"activity": {"name": "cut-hello-off-from-response"}, "status": "succeeded"},
            {
                "activity": {"name": "hello-answers-5xx-within-its-deadline"},
                "status": "failed",
                "exception": ["Traceback (most recent call last):\n", "AssertionError: statuses [200, 200]\n"],
            },
        ],
    }
    result = build_result(
        experiment="partition",
        service="hello",
        journal=journal,
        moments={},
        notes={"alerts_seen": {"HighErrorRatio|hello": 1.0, "ErrorBudgetBurnPage|hello": 1.0}},
        traffic=None,
        incidents=[{"id": 1, "alertname": "HighErrorRatio"}],
        spec=spec,
    )
    assert result.failed_expectations() == [
        "activity failed: hello-answers-5xx-within-its-deadline: AssertionError: statuses [200, 200]"
    ]
    assert not result.passed
