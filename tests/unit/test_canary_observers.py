"""The rollout observers: metrics in a fresh registry, the /metrics endpoint and its target file, the log."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from scripts.canary.contract import CheckResult, Decision, StepContext, Verdict
from scripts.canary.log_observer import LogObserver
from scripts.canary.metrics_endpoint import FileRegistration, exported_rollout
from scripts.canary.metrics_observer import STATUSES, RolloutMetrics
from services.common.metrics import scraped_value

CONTEXT = StepContext("response", "v1", "v2", "canary", 0, 1, 20)
PASS = CheckResult("error-ratio", True, 0.0, 0.0, 0.05, "error-ratio: canary 0.00% within limit 5.00%")
FAIL = CheckResult("latency-p95", False, 0.488, 0.005, 0.057, "latency-p95: canary 488 ms beyond limit 57 ms")
SILENT = CheckResult("memory-rss", None, None, 1.0e8, math.nan, "memory-rss: no data for canary")


def at(step: int, weight: int, failures: dict[str, int] | None = None) -> StepContext:
    return StepContext("response", "v1", "v2", "canary", step, weight, 20, failures or {})


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"service": "response", **labels})


def test_a_step_sets_weight_step_status_and_zeroed_counters():
    registry = CollectorRegistry()
    metrics = RolloutMetrics(registry)
    metrics.step_started(at(2, 10))
    assert value(registry, "canary_weight_percent") == 10
    assert value(registry, "canary_step") == 2
    assert value(registry, "canary_status", status="progressing") == 1
    assert all(value(registry, "canary_status", status=s) == 0 for s in STATUSES if s != "progressing")
    assert value(registry, "canary_info", strategy="canary", stable_version="v1", canary_version="v2") == 1
    # counters exist at 0 before the first decision, so increase() sees it (the annotations)
    for decision in Decision:
        assert value(registry, "canary_decisions_total", decision=decision.value) == 0
    assert value(registry, "canary_rollouts_total", outcome="rolled_back") == 0


def test_verdicts_count_decisions_and_check_results_with_their_numbers():
    registry = CollectorRegistry()
    metrics = RolloutMetrics(registry)
    metrics.step_started(at(1, 5))
    metrics.step_decided(at(1, 5), Verdict(Decision.HOLD, (PASS, FAIL, SILENT), "held"))
    assert value(registry, "canary_decisions_total", decision="hold") == 1
    assert value(registry, "canary_status", status="holding") == 1
    assert value(registry, "canary_analysis_checks_total", check="error-ratio", result="pass") == 1
    assert value(registry, "canary_analysis_checks_total", check="error-ratio", result="fail") == 0
    assert value(registry, "canary_analysis_checks_total", check="latency-p95", result="fail") == 1
    assert value(registry, "canary_analysis_checks_total", check="memory-rss", result="no_data") == 1
    assert value(registry, "canary_check_value", check="latency-p95", role="canary") == 0.488
    assert value(registry, "canary_check_value", check="latency-p95", role="limit") == 0.057
    assert value(registry, "canary_check_value", check="memory-rss", role="stable") == 1.0e8
    assert value(registry, "canary_check_value", check="memory-rss", role="canary") is None  # no data: no series
    assert value(registry, "canary_check_value", check="memory-rss", role="limit") is None  # NaN is not exported
    metrics.step_decided(at(1, 5), Verdict(Decision.ROLLBACK, (FAIL,), "rolled back"))
    assert value(registry, "canary_decisions_total", decision="rollback") == 1
    assert value(registry, "canary_status", status="rolling_back") == 1
    assert value(registry, "canary_status", status="holding") == 0


@pytest.mark.parametrize(
    ("outcome", "status", "weight"),
    [("promoted", "promoted", 100), ("rolled back", "rolled_back", 0), ("Dry run", "dry_run", 25)],
)
def test_the_end_of_a_rollout_is_its_status_and_a_count(outcome, status, weight):
    registry = CollectorRegistry()
    metrics = RolloutMetrics(registry)
    metrics.step_started(at(3, 25))
    metrics.finished(at(3, 25), outcome, "why")
    assert value(registry, "canary_rollouts_total", outcome=status) == 1
    assert value(registry, "canary_status", status=status) == 1
    assert value(registry, "canary_status", status="progressing") == 0
    assert value(registry, "canary_weight_percent") == weight


def get(url: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_endpoint_serves_the_rollout_registers_a_target_and_waits_for_the_last_scrape(tmp_path: Path):
    lines: list[str] = []
    stop = threading.Event()
    scraped: list[str] = []

    def prometheus_like(url: str) -> None:
        while not stop.is_set():
            try:
                scraped.append(get(url)[1])
            except OSError:
                return  # the rollout is over and its endpoint gone
            stop.wait(0.05)

    with exported_rollout(
        "response",
        FileRegistration(tmp_path, "response", lines.append),
        final_scrape_timeout_s=10,
        progress=lines.append,
    ) as metrics:
        (target_file,) = tmp_path.glob("*.json")
        (group,) = json.loads(target_file.read_text())
        (address,) = group["targets"]
        assert address.startswith("127.0.0.1:")
        assert group["labels"] == {"rollout_service": "response"}
        url = f"http://{address}/metrics"
        metrics.step_started(at(0, 1))
        status, text = get(url)
        assert status == 200
        assert scraped_value(text, "canary_weight_percent", {"service": "response"}) == 1
        assert get(f"http://{address}/other")[0] == 404
        assert get(url, "POST")[0] == 405
        metrics.finished(at(0, 1), "rolled back", "error ratio")
        scraper = threading.Thread(target=prometheus_like, args=(url,), daemon=True)
        scraper.start()
    stop.set()
    scraper.join(timeout=5)
    assert not list(tmp_path.glob("*.json")), "the target is removed once the rollout is over"
    assert any(scraped_value(t, "canary_rollouts_total", {"outcome": "rolled_back"}) == 1 for t in scraped)
    assert lines
    assert url in lines[0]
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(url, timeout=2)


def test_without_a_scrape_the_end_waits_only_its_timeout_and_says_so(tmp_path: Path):
    lines: list[str] = []
    with exported_rollout(
        "response",
        FileRegistration(tmp_path, "response", lines.append),
        final_scrape_timeout_s=0.3,
        progress=lines.append,
    ) as metrics:
        metrics.step_started(at(0, 1))
    assert "did not scrape the final state" in lines[-1]
    assert not list(tmp_path.glob("*.json"))


def test_the_log_says_each_decision_with_its_numbers():
    lines: list[str] = []
    observer = LogObserver(lines.append)
    observer.step_started(at(2, 10))
    observer.step_decided(at(2, 10), Verdict(Decision.ROLLBACK, (PASS, FAIL), "failed past the limit: latency-p95"))
    observer.finished(at(2, 10), "rolled back", "latency-p95 failed twice")
    assert lines[0].startswith("response v2 (canary) step 2 at 10 %: started")
    assert lines[1] == "response v2 (canary) step 2 at 10 %: ROLLBACK — failed past the limit: latency-p95"
    assert lines[2] == "    [pass] error-ratio: canary 0.00% within limit 5.00%"
    assert lines[3] == "    [FAIL] latency-p95: canary 488 ms beyond limit 57 ms"
    assert lines[4].endswith("finished, rolled back: latency-p95 failed twice")


def test_the_log_observer_logs_a_rollback_as_a_warning(caplog):
    observer = LogObserver()
    with caplog.at_level("INFO", logger="firedrill.canary"):
        observer.step_decided(at(0, 1), Verdict(Decision.ROLLBACK, (FAIL,), "past the limit"))
        observer.step_decided(at(0, 1), Verdict(Decision.PROMOTE, (PASS,), "all 1 checks passed"))
    rollback, check, promote = caplog.records[:3]
    assert (rollback.levelname, check.levelname) == ("WARNING", "WARNING")
    assert "ROLLBACK — past the limit" in rollback.getMessage()
    assert "488 ms" in check.getMessage()
    assert promote.levelname == "INFO"
    assert "PROMOTE" in promote.getMessage()


def test_a_target_left_by_a_dead_rollout_is_removed_by_the_next(tmp_path: Path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    dead_pid = int(done.stdout)
    orphan = tmp_path / f"response-{dead_pid}.json"
    orphan.write_text("[]")
    live = tmp_path / f"hello-{os.getpid()}.json"  # a rollout still running (this process)
    live.write_text("[]")
    lines: list[str] = []
    with exported_rollout(
        "movie", FileRegistration(tmp_path, "movie", lines.append), final_scrape_timeout_s=0.1, progress=lines.append
    ):
        assert not orphan.exists()
        assert live.exists()
    assert any(str(orphan) in line for line in lines)
