"""Grafana provisioning and generated dashboards: current, consistent, and pointing at real datasources."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from scripts.monitoring import cluster_telemetry
from scripts.monitoring.alerts import ALERTING_UID, OVERVIEW_UID, PLATFORM_UID, SLO_UID, alert_names, alerts
from scripts.monitoring.dashboard_cluster import CLUSTER_UID
from scripts.monitoring.dashboards import DASHBOARDS_DIR, dashboards, stale_dashboards
from scripts.monitoring.files import REPO
from scripts.monitoring.grafana_kit import ANNOTATION_EXTENSIONS
from scripts.monitoring.prometheus_config import CLUSTER_JOBS, render_prometheus_config
from scripts.monitoring.promql_names import metric_names
from scripts.monitoring.settings import LINKS
from services.common.profiles import DRILL, PRODUCTION

pytestmark = pytest.mark.infra

PROVISIONING = REPO / "grafana" / "provisioning"
RUNBOOKS = REPO / "docs" / "runbooks"
# Stats that show a setting or a count, not health: no value of theirs is good or bad.
INFORMATIONAL_STATS = {"Objective", "Incidents open"}


def committed() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS_DIR.glob("*.json"))}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def test_dashboards_match_the_generator():
    stale = stale_dashboards()
    assert not stale, "run `python -m scripts.monitoring render`; stale: " + ", ".join(p.name for p in stale)


def test_dashboards_conform_to_grafanas_model():
    """Read back through the SDK's typed model, nothing in a file is lost or changed: no key or value
    Grafana's schema does not know (the model may add its own defaults).

    Only the Prometheus annotation fields the SDK does not model yet are allowed on top.
    """
    register_default_plugins()
    for uid, board in committed().items():
        parsed = json.loads(json.dumps(Dashboard.from_json(board), cls=JSONEncoder))
        expected = json.loads(json.dumps(board))
        for annotation in expected["annotations"]["list"]:
            for key in ANNOTATION_EXTENSIONS:
                annotation.pop(key)
        assert not lost(expected, parsed), (uid, lost(expected, parsed))


def lost(written: Any, parsed: Any, path: str = "") -> list[str]:
    """Paths of ``written`` that ``parsed`` lacks or holds differently."""
    if isinstance(written, dict) and isinstance(parsed, dict):
        return [
            p
            for k, v in written.items()
            for p in (lost(v, parsed[k], f"{path}/{k}") if k in parsed else [f"{path}/{k}"])
        ]
    if isinstance(written, list) and isinstance(parsed, list) and len(written) == len(parsed):
        return [p for n, (w, q) in enumerate(zip(written, parsed, strict=True)) for p in lost(w, q, f"{path}[{n}]")]
    return [] if written == parsed else [path]


def test_the_model_check_catches_an_unknown_key():
    register_default_plugins()
    board = committed()[OVERVIEW_UID]
    board["panels"][1]["fieldConfig"]["defaults"]["tresholds"] = board["panels"][1]["fieldConfig"]["defaults"].pop(
        "thresholds"
    )
    parsed = json.loads(json.dumps(Dashboard.from_json(board), cls=JSONEncoder))
    assert "/panels[1]/fieldConfig/defaults/tresholds" in lost(board, parsed)


def test_datasources_provisioned_with_the_uids_panels_use():
    docs = [yaml.safe_load(p.read_text()) for p in (PROVISIONING / "datasources").glob("*.yml")]
    sources = {d["uid"]: d for doc in docs for d in doc["datasources"]}
    assert sources["prometheus"]["type"] == "prometheus"
    assert sources["jaeger"]["type"] == "jaeger"
    assert sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"] == "jaeger"
    for uid, board in committed().items():
        for panel in panels(board):
            assert panel["datasource"]["uid"] in sources, (uid, panel["title"])
            assert all(t["datasource"]["uid"] in sources for t in panel["targets"]), (uid, panel["title"])


def test_time_series_ask_for_exemplars():
    """Exemplars carry trace ids; the datasource links them to Jaeger (above)."""
    for uid, board in committed().items():
        for panel in panels(board):
            if panel["type"] == "timeseries":
                assert all(t["exemplar"] for t in panel["targets"]), (uid, panel["title"])


def test_dashboard_provider_is_a_file_provider():
    docs = [yaml.safe_load(p.read_text()) for p in (PROVISIONING / "dashboards").glob("*.yml")]
    providers = [p for doc in docs for p in doc["providers"]]
    assert providers
    assert all(p["type"] == "file" and p["options"]["path"] for p in providers)


def test_dashboards_are_well_formed():
    uids = [d.uid for d in dashboards()]
    assert len(uids) == len(set(uids)) == 6
    assert set(committed()) == set(uids)  # file name is the uid: links and provisioning rely on it
    for uid, board in committed().items():
        assert board["uid"] == uid
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), uid
        for panel in panels(board):
            assert panel["targets"], (uid, panel["title"])
            assert all(t["expr"].strip() for t in panel["targets"])
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_every_panel_says_what_it_shows():
    for uid, board in committed().items():
        assert board["description"], uid
        for panel in panels(board):
            assert len(panel.get("description", "")) > 20, (uid, panel["title"])


def test_stats_have_thresholds_that_can_turn_red():
    """A health stat that can never turn red is decoration: every stat has a red step (or mapping)."""
    for uid, board in committed().items():
        for panel in panels(board):
            if panel["type"] != "stat":
                continue
            defaults = panel["fieldConfig"]["defaults"]
            colors = {s["color"] for s in defaults["thresholds"]["steps"]}
            mapped = {r.get("color") for m in defaults["mappings"] for r in _results(m)}
            if panel["title"] in INFORMATIONAL_STATS:
                continue
            assert "red" in colors | mapped, (uid, panel["title"])


def _results(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    options = mapping["options"]
    return list(options.values()) if mapping["type"] == "value" else [options["result"]]


def test_up_and_vault_reachable_turn_red_at_zero():
    """The issue's examples: `up == 0` and `vault_reachable == 0` read DOWN/UNREACHABLE in red."""
    found = 0
    for board in committed().values():
        for panel in panels(board):
            exprs = " ".join(t["expr"] for t in panel["targets"])
            if panel["type"] == "stat" and ("up{" in exprs or "vault_reachable" in exprs):
                defaults = panel["fieldConfig"]["defaults"]
                zero = defaults["mappings"][0]["options"]["0"]
                assert zero["color"] == "red", panel["title"]
                assert zero["text"] in {"DOWN", "UNREACHABLE"}, panel["title"]
                assert defaults["thresholds"]["steps"][0]["color"] == "red"
                found += 1
    assert found >= 3


def test_thresholds_come_from_the_alert_thresholds():
    from scripts.monitoring.settings import THRESHOLDS

    overview = committed()[OVERVIEW_UID]
    by_title = {p["title"]: p for p in panels(overview)}

    def red_from(title: str) -> float:
        steps = by_title[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        return float(next(s["value"] for s in steps if s["color"] == "red"))

    assert red_from("Error ratio") == THRESHOLDS.error_ratio
    assert red_from("p95 latency") == THRESHOLDS.latency_p95_s
    assert red_from("CPU (cores)") == THRESHOLDS.cpu_cores
    assert red_from("Resident memory") == THRESHOLDS.memory_limit_bytes


def test_burn_rate_thresholds_are_the_burn_alert_factors():
    from scripts.monitoring import slo

    burn = next(p for p in panels(committed()[SLO_UID]) if p["title"] == "Burn rate by window")
    steps = {s["color"]: s["value"] for s in burn["fieldConfig"]["defaults"]["thresholds"]["steps"]}
    assert steps["red"] == min(w.factor for w in slo.PAGE.windows)
    assert steps["yellow"] == min(w.factor for w in slo.TICKET.windows)


def test_every_alert_runbook_is_linked_and_exists():
    urls = {a.name: a.runbook_url for a in alerts(PRODUCTION, links=LINKS)}
    linked: set[str] = set()
    for board in committed().values():
        for item in [*board["links"], *(lnk for p in panels(board) for lnk in p.get("links", []))]:
            linked.update(name for name, url in urls.items() if item.get("url") == url)
    assert linked == set(alert_names(PRODUCTION))
    for name in alert_names(PRODUCTION):
        assert (RUNBOOKS / f"{name}.md").is_file(), name


def test_dashboards_link_to_each_other():
    uids = set(committed())
    for uid, board in committed().items():
        menu = [lnk for lnk in board["links"] if lnk["type"] == "dashboards"]
        assert menu, uid
        assert menu[0]["tags"] == ["firedrill"], uid
        assert "firedrill" in board["tags"], uid
        for item in [*board["links"], *(lnk for p in panels(board) for lnk in p.get("links", []))]:
            if item.get("url", "").startswith("/d/"):
                assert item["url"][3:] in uids, (uid, item["url"])


def test_firing_alerts_are_annotated():
    for uid, board in committed().items():
        annotation = board["annotations"]["list"][0]
        assert annotation["expr"].startswith('ALERTS{alertstate="firing"'), uid
        assert annotation["titleFormat"] == "{{alertname}}"


def test_canary_promotions_and_rollbacks_are_annotated_on_the_overview():
    annotations = {a["name"]: a for a in committed()[OVERVIEW_UID]["annotations"]["list"][1:]}
    assert set(annotations) == {"canary decisions", "canary rollouts"}
    assert 'decision=~"promote|rollback"' in annotations["canary decisions"]["expr"]
    assert metric_names(annotations["canary decisions"]["expr"]) == {"canary_decisions_total"}
    assert metric_names(annotations["canary rollouts"]["expr"]) == {"canary_rollouts_total"}


def test_the_rollout_status_stat_names_every_status_the_rollout_exports():
    from scripts.canary.metrics_observer import STATUSES
    from scripts.monitoring.dashboard_deployments import STATUS_CODES

    assert [status for status, _, _ in STATUS_CODES] == list(STATUSES)
    (stat,) = [p for p in panels(committed()[OVERVIEW_UID]) if p["title"] == "Rollout status"]
    texts = {r["text"] for m in stat["fieldConfig"]["defaults"]["mappings"] for r in _results(m)}
    assert {"PROGRESSING", "HOLDING", "ROLLING BACK", "PROMOTED", "ROLLED BACK", "no rollout"} <= texts


def test_alert_dashboard_links_point_at_generated_dashboards():
    generated = {d.uid for d in dashboards()}
    assert {OVERVIEW_UID, SLO_UID, PLATFORM_UID, ALERTING_UID} <= generated
    for alert in alerts(DRILL):
        uid = alert.dashboard_url.split("/d/", 1)[1].split("?", 1)[0]
        assert uid in generated, alert.name


def test_cluster_queries_use_only_documented_metrics():
    """The local platform has no Nomad, Consul or Vault telemetry, so this dashboard is checked by name
    against the products' documented metric lists (cluster_telemetry.py) instead of live."""
    documented = cluster_telemetry.documented_names()
    board = next(d for d in dashboards() if d.uid == CLUSTER_UID)
    assert not board.live
    used: set[str] = set()
    for title, expr in board.queries():
        names = metric_names(expr)
        assert names, (title, expr)
        assert names <= documented, (title, sorted(names - documented))
        used |= names
    assert len(used) > 15


def test_metric_name_extraction_catches_a_typo():
    expr = 'max by (node) (nomad_client_allocations_runing{job="nomad-client"}) / on (node) vector(1)'
    assert metric_names(expr) == {"nomad_client_allocations_runing"}
    assert not metric_names(expr) <= cluster_telemetry.documented_names()
    assert metric_names("histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m]))) > 1e3 or up offset 5m") == {
        "x_bucket",
        "up",
    }


def test_the_cluster_prometheus_scrapes_the_agents_the_cluster_dashboard_reads():
    config = render_prometheus_config(PRODUCTION, "consul")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(CLUSTER_JOBS) <= set(jobs)
    vault = jobs["vault"]
    assert vault["metrics_path"] == "/v1/sys/metrics"
    assert vault["params"] == {"format": ["prometheus"]}
    assert vault["scheme"] == "https"
    assert jobs["consul"]["metrics_path"] == "/v1/agent/metrics"
    assert jobs["nomad-server"]["metrics_path"] == "/v1/metrics"
