"""Grafana provisioning and generated dashboards: current, consistent, and pointing at real datasources."""

from __future__ import annotations

import json

import pytest
import yaml

from scripts.monitoring.alerts import OVERVIEW_UID, PLATFORM_UID, SLO_UID, alerts
from scripts.monitoring.dashboards import DASHBOARDS_DIR, dashboards, stale_dashboards
from scripts.monitoring.files import REPO
from services.common.profiles import DRILL

pytestmark = pytest.mark.infra

PROVISIONING = REPO / "grafana" / "provisioning"


def test_dashboards_match_the_generator():
    stale = stale_dashboards()
    assert not stale, "run `python -m scripts.monitoring render`; stale: " + ", ".join(p.name for p in stale)


def test_datasources_provisioned_with_the_uids_panels_use():
    docs = [yaml.safe_load(p.read_text()) for p in (PROVISIONING / "datasources").glob("*.yml")]
    sources = {d["uid"]: d for doc in docs for d in doc["datasources"]}
    assert sources["prometheus"]["type"] == "prometheus"
    assert sources["jaeger"]["type"] == "jaeger"
    assert sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"] == "jaeger"
    for path in DASHBOARDS_DIR.glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"]["uid"] in sources, (path.name, panel["title"])


def test_dashboard_provider_is_a_file_provider():
    docs = [yaml.safe_load(p.read_text()) for p in (PROVISIONING / "dashboards").glob("*.yml")]
    providers = [p for doc in docs for p in doc["providers"]]
    assert providers
    assert all(p["type"] == "file" and p["options"]["path"] for p in providers)


def test_dashboards_are_well_formed():
    uids = [d.uid for d in dashboards()]
    assert len(uids) == len(set(uids)) == 4
    for path in DASHBOARDS_DIR.glob("*.json"):
        board = json.loads(path.read_text())
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["targets"], (path.name, panel["title"])
            assert all(t["expr"].strip() for t in panel["targets"])
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_alert_dashboard_links_point_at_generated_dashboards():
    generated = {d.uid for d in dashboards()}
    assert {OVERVIEW_UID, SLO_UID, PLATFORM_UID} <= generated
    for alert in alerts(DRILL):
        uid = alert.dashboard_url.split("/d/", 1)[1].split("?", 1)[0]
        assert uid in generated, alert.name
