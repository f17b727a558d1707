"""Every dashboard query runs against the live local Prometheus after traffic.

For each query of the dashboards whose series exist locally: Prometheus parses and evaluates it,
every metric name it selects is one Prometheus knows (a typo fails here even when the panel may
legitimately be empty), and the core panels return data. The cluster dashboard's Nomad, Consul and
Vault series exist only on a cluster: its queries are still parsed here, and their metric names are
checked against the products' documented lists by tests/infra/test_grafana.py.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest

from scripts.canary.contract import CheckResult, Decision, StepContext, Verdict
from scripts.canary.metrics_endpoint import FileRegistration, exported_rollout, rollout_targets_dir
from scripts.monitoring.dashboards import dashboards
from scripts.monitoring.promql_names import metric_names
from scripts.promql import Prometheus, PrometheusError
from services.common.waiting import wait_until

pytestmark = pytest.mark.integration

# What Grafana substitutes for the template variables; 1m holds plenty of 1s drill scrapes.
VARIABLES = {"$__rate_interval": "1m", "$service": ".*"}
# Series Prometheus makes only while an alert is pending or firing.
ALERT_SERIES = {"ALERTS", "ALERTS_FOR_STATE"}
# A family's samples carry these suffixes; metadata names the family (with or without _total).
SUFFIXES = ("_bucket", "_sum", "_count", "_created", "_total")

QUERIES = [
    pytest.param(board.uid, title, expr, title in board.core, board.live, id=f"{board.uid}:{title}:{n}")
    for board in dashboards()
    for n, (title, expr) in enumerate(board.queries())
]


def concrete(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def known_families(base_url: str) -> set[str]:
    """Metric families the scraped targets declare (# TYPE lines), even those with no sample yet."""
    with urllib.request.urlopen(f"{base_url}/api/v1/metadata", timeout=5) as answer:  # noqa: S310 (loopback)
        return set(json.load(answer)["data"])


def is_known(prometheus: Prometheus, families: set[str], name: str) -> bool:
    if name in ALERT_SERIES or name in families:
        return True
    if any(
        name.endswith(s) and (name.removesuffix(s) in families or name.removesuffix(s) + "_total" in families)
        for s in SUFFIXES
    ):
        return True
    # Recording rules and Prometheus' own per-target series (up, scrape_duration_seconds) have no metadata.
    return bool(prometheus.query(f'group({{__name__="{name}"}})'))


@pytest.fixture(scope="module")
def with_traffic(local_platform):
    """Some requests through hello -> response, so the RED panels have something to show, and a
    canary rollout's metrics (they exist only while a rollout runs) for the Deployments panels."""
    url = local_platform.url("hello", "/hello")

    def answered() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (loopback)
                return bool(answer.status == 200)
        except OSError:
            return False

    for _ in range(20):
        wait_until(answered, timeout_s=30, what=f"{url} answers")
    targets = rollout_targets_dir(local_platform.state_dir)
    with exported_rollout(
        "response", FileRegistration(targets, "response"), final_scrape_timeout_s=10, progress=print
    ) as rollout:
        step = StepContext("response", "v1", "v2", "canary", 0, 1, 20)
        rollout.step_started(step)
        check = CheckResult("error-ratio", True, 0.0, 0.0, 0.05, "error-ratio: canary 0.00% within limit 5.00%")
        rollout.step_decided(step, Verdict(Decision.PROMOTE, (check,), "all 1 checks passed"))
        yield local_platform


@pytest.mark.parametrize(("uid", "title", "expr", "core", "live"), QUERIES)
def test_panel_query(with_traffic, uid, title, expr, core, live):
    prometheus = with_traffic.prometheus
    query = concrete(expr)
    assert "$" not in query, f"unsubstituted variable in {uid}/{title}: {query}"
    try:
        prometheus.query(query)  # parses and evaluates, even when empty
    except PrometheusError as exc:
        pytest.fail(f"{uid}/{title}: {exc}")
    if not live:
        return  # names checked against the documented lists (tests/infra/test_grafana.py)
    for name in sorted(metric_names(query)):

        def known(name: str = name) -> bool:
            return is_known(prometheus, known_families(with_traffic.prometheus_url), name)

        wait_until(known, timeout_s=60, interval_s=1, what=f"Prometheus knows {name} ({uid}/{title})")
    if core:
        wait_until(lambda: prometheus.query(query), timeout_s=60, interval_s=1, what=f"data for {uid}/{title}")
