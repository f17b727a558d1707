"""Every analysis template's query, rendered as the analysis sends it, parses in promtool; the names it
selects are metrics the services export (or the recording rules' inputs), so a typo fails here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from scripts.canary.templates import load_templates
from scripts.monitoring.promql_names import metric_names
from scripts.monitoring.recording import recording_rules
from services.common.profiles import DRILL
from tests.conftest import require_binary

pytestmark = pytest.mark.infra

# Metric families the services export (services/common/metrics.py, grpc_metrics.py) and every process has.
EXPORTED = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "grpc_server_handled_total",
    "grpc_server_handling_seconds_bucket",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
}


def test_every_template_query_parses_in_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rules = [
        {"record": f"canary:{check.name.replace('-', '_')}:{role}", "expr": check.render("response", version, 30)}
        for check in load_templates()
        for role, version in (("canary", "v2"), ("stable", "v1"))
    ]
    path = tmp_path / "canary-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "canary-templates", "rules": rules}]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_template_queries_select_metrics_the_services_export() -> None:
    # the same series the recording rules (and so the alerts and dashboards) read
    assert set().union(*(metric_names(rule.expr) for rule in recording_rules(DRILL))) >= EXPORTED
    for check in load_templates():
        names = metric_names(check.render("response", "v2", 30))
        assert names, check.name
        assert names <= EXPORTED, (check.name, names - EXPORTED)
