"""Every dashboard query runs against the live local Prometheus; the core panels return data."""

from __future__ import annotations

import urllib.request

import pytest

from scripts.monitoring.dashboards import dashboards
from scripts.promql import PrometheusError
from services.common.waiting import wait_until

pytestmark = pytest.mark.integration

# What Grafana substitutes for the template variables; 1m holds plenty of 1s drill scrapes.
VARIABLES = {"$__rate_interval": "1m", "$service": ".*"}

QUERIES = [
    pytest.param(dashboard.uid, panel.title, query.expr, panel.core, id=f"{dashboard.uid}:{panel.title}:{n}")
    for dashboard in dashboards()
    for panel in dashboard.panels
    for n, query in enumerate(panel.queries)
]


def concrete(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


@pytest.fixture(scope="module")
def with_traffic(local_platform):
    """Some requests through hello -> response, so the RED panels have something to show."""
    url = local_platform.url("hello", "/hello")

    def answered() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (loopback)
                return bool(answer.status == 200)
        except OSError:
            return False

    for _ in range(20):
        wait_until(answered, timeout_s=30, what=f"{url} answers")
    return local_platform


@pytest.mark.parametrize(("uid", "title", "expr", "core"), QUERIES)
def test_panel_query(with_traffic, uid, title, expr, core):
    prometheus = with_traffic.prometheus
    query = concrete(expr)
    assert "$" not in query, f"unsubstituted variable in {uid}/{title}: {query}"
    try:
        prometheus.query(query)  # parses and evaluates, even when empty
    except PrometheusError as exc:
        pytest.fail(f"{uid}/{title}: {exc}")
    if core:
        wait_until(lambda: prometheus.query(query), timeout_s=60, interval_s=1, what=f"data for {uid}/{title}")
