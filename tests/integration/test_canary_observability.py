"""The canary analysis and the rollout's metrics against the live local platform's Prometheus.

- The analysis templates' queries run against the real Prometheus: the supervised response is
  scraped once more with a ``version`` label as a stable and as a canary (the same instance, so
  the analysis must find them alike and promote), while traffic flows through hello.
- The rollout's metrics reach Prometheus through the ``canary-rollout`` job's file discovery, the
  Deployments panels and annotations of the overview read them, and the final state is there
  after the rollout's endpoint is gone.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from scripts.canary.analysis import TemplateAnalysis
from scripts.canary.contract import CheckResult, Decision, StepContext, Verdict
from scripts.canary.measure import LivePrometheus
from scripts.canary.metrics_endpoint import FileRegistration, exported_rollout, rollout_targets_dir
from scripts.canary.templates import load_templates
from scripts.monitoring.dashboard_deployments import deployment_annotations, deployment_panels
from services.common import catalog
from services.common.waiting import wait_until

pytestmark = pytest.mark.integration

STABLE, CANARY = "it-stable", "it-canary"
VARIABLES = {"$__rate_interval": "1m", "$service": ".*"}


def concrete(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def hello_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (loopback)
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture
def versioned_response(local_platform) -> Iterator[str]:
    """response's ops port scraped twice more, labelled as a stable and a canary version."""
    target = local_platform.state_dir / "prometheus" / "targets" / "it-versions.json"
    ops = f"127.0.0.1:{catalog.port(catalog.service('response').scrape_port)}"
    groups = [{"targets": [ops], "labels": {"service": "response", "version": v}} for v in (STABLE, CANARY)]
    target.write_text(json.dumps(groups))
    try:
        yield local_platform.url("hello", "/hello")
    finally:
        target.unlink(missing_ok=True)


def test_the_analysis_promotes_a_canary_alike_to_stable_from_live_prometheus(local_platform, versioned_response):
    analysis = TemplateAnalysis(LivePrometheus(local_platform.prometheus), load_templates())
    context = StepContext("response", STABLE, CANARY, "canary", 0, 50, window_s=20)
    verdicts: list[Verdict] = []

    def promoted() -> bool:
        for _ in range(5):  # bounded traffic between evaluations
            hello_answers(versioned_response)
        verdicts.append(analysis.evaluate(context))
        return verdicts[-1].decision is Decision.PROMOTE

    wait_until(promoted, timeout_s=90, interval_s=0.5, what="a PROMOTE verdict for identical versions")
    # Until the series were there, the analysis held (never promoted on no data, never rolled back).
    assert all(v.decision is Decision.HOLD for v in verdicts[:-1])
    assert {r.check for r in verdicts[-1].results} == {c.name for c in load_templates()}


def test_the_analysis_holds_for_a_version_nobody_runs(local_platform):
    analysis = TemplateAnalysis(LivePrometheus(local_platform.prometheus), load_templates())
    verdict = analysis.evaluate(StepContext("response", "v1", "never-deployed", "canary", 0, 1, window_s=20))
    assert verdict.decision is Decision.HOLD
    assert all(r.passed is None for r in verdict.results)


def test_rollout_metrics_reach_prometheus_the_dashboard_and_its_annotations(local_platform):
    prometheus = local_platform.prometheus
    targets_dir = rollout_targets_dir(local_platform.state_dir)
    step = StepContext("response", "v1", "v2", "canary", 1, 5, 20)
    passing = CheckResult("error-ratio", True, 0.0, 0.0, 0.05, "error-ratio: canary 0.00% within limit 5.00%")
    failing = CheckResult("error-ratio", False, 0.3, 0.0, 0.05, "error-ratio: canary 30.00% beyond limit 5.00%")
    with exported_rollout(
        "response", FileRegistration(targets_dir, "response"), final_scrape_timeout_s=30, progress=print
    ) as metrics:
        metrics.step_started(step)
        wait_until(
            lambda: prometheus.value('canary_weight_percent{job="canary-rollout",service="response"}') == 5,
            timeout_s=60,
            interval_s=0.5,
            what="Prometheus scrapes the rollout's weight",
        )
        metrics.step_decided(step, Verdict(Decision.PROMOTE, (passing,), "all 1 checks passed"))
        metrics.step_decided(step, Verdict(Decision.ROLLBACK, (failing,), "failed past the limit: error-ratio"))
        for panel in deployment_panels():
            built = panel.build()
            for target in built.targets or []:
                expr = concrete(getattr(target, "expr", ""))
                wait_until(
                    lambda expr=expr: prometheus.query(expr),  # type: ignore[misc]
                    timeout_s=30,
                    interval_s=0.5,
                    what=f"data for {built.title}: {expr}",
                )
        decisions = concrete(deployment_annotations()[0].build().expr or "")
        found = wait_until(
            lambda: {s.labels["decision"] for s in prometheus.query(decisions)} == {"promote", "rollback"},
            timeout_s=30,
            interval_s=0.5,
            what="annotations of the promotion and the rollback",
        )
        assert found
        metrics.finished(step, "rolled back", "error-ratio")
    assert not list(targets_dir.glob("*.json"))
    # the final state was scraped before the endpoint went away
    last = 'last_over_time(canary_status{job="canary-rollout",service="response",status="rolled_back"}[5m])'
    assert prometheus.value(last) == 1
    assert prometheus.value('last_over_time(canary_weight_percent{service="response"}[5m])') == 0
    outcomes = concrete(deployment_annotations()[1].build().expr or "")
    assert {s.labels["outcome"] for s in prometheus.query(outcomes)} == {"rolled_back"}
