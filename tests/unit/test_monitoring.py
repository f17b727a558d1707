"""The monitoring generator: rule invariants, routing/inhibition, secrets, local config, runbooks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from scripts.monitoring import slo
from scripts.monitoring.alertmanager_config import (
    PAGERDUTY_KEY_ENV,
    SLACK_URL_ENV,
    ReceiverSecrets,
    dependents,
    inhibit_rules,
    notification_timers_s,
    render_alertmanager_config,
)
from scripts.monitoring.alerts import alert_names, alerts
from scripts.monitoring.files import REPO, committed_files, write_local_config
from scripts.monitoring.model import Series, counter, gauge, missing
from scripts.monitoring.prometheus_config import render_prometheus_config
from scripts.monitoring.recording import HEALTH_JOB, JOB
from scripts.monitoring.rule_tests import promtool_test_documents, values
from scripts.monitoring.rules import evaluation_interval_s, rule_documents
from scripts.monitoring.settings import Links
from services.common import catalog
from services.common.profiles import DRILL, PRODUCTION, PROFILES, duration
from services.incidents.validation import MAX_ALERTS

ALL = [pytest.param(p, id=p.name) for p in (DRILL, PRODUCTION)]


@pytest.mark.parametrize("profile", ALL)
def test_every_alert_has_required_labels_and_annotations(profile):
    for alert in alerts(profile):
        rule = alert.to_dict()
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, alert.name
        # `service` comes from the expression (aggregated by service) or a static label.
        for scenario in (*alert.scenarios, alert.blip):
            assert "service" in {**scenario.labels, **alert.labels}, (alert.name, scenario.name)
        assert "by (service)" in alert.expr or "service" in alert.labels or alert.expr.startswith("service:")
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url", "dashboard_url"}
        assert rule["annotations"]["runbook_url"].endswith(f"/{alert.name}.md")
        assert "/d/firedrill-" in rule["annotations"]["dashboard_url"]


def test_expected_alert_set():
    assert set(alert_names(DRILL)) == {
        "ServiceDown", "HighErrorRatio", "HighLatencyP95", "MemoryGrowth", "CpuSaturation",
        "IncidentReceiverUnreachable", "ErrorBudgetBurnPage", "ErrorBudgetBurnTicket", "VaultUnreachable",
        "CrashLooping", "CertificateExpiringSoon", "VaultDown", "RegistryUnreachable", "RegistryDown",
        "ErrorLogStorm",
    }  # fmt: skip


@pytest.mark.parametrize("profile", ALL)
def test_every_catalog_service_gets_a_service_down(profile):
    down = next(a for a in alerts(profile) if a.name == "ServiceDown")
    assert 'max by (service) (up{job="services-health"}) == 0' in down.expr
    for name in catalog.service_names():
        assert f'absent(up{{job="services-health",service="{name}"}})' in down.expr


def test_drill_for_is_shorter_than_production_for():
    production = {(a.name, a.labels.get("service")): a.for_s for a in alerts(PRODUCTION)}
    for alert in alerts(DRILL):
        assert alert.for_s < production[(alert.name, alert.labels.get("service"))], alert.name


def test_slo_windows_scale_with_the_profile():
    assert slo.scaled(PRODUCTION, 3600) == 3600
    assert slo.scaled(DRILL, 3600) == 3600 // DRILL.slo_window_divisor
    drill = yaml.safe_load(yaml.safe_dump(rule_documents(DRILL)["slo.yml"]))
    exprs = {r["record"]: r["expr"] for g in drill["groups"] for r in g["rules"] if "record" in r}
    assert "[1m]" in exprs["slo:sli_error:ratio_rate1h"]
    assert "[5s]" in exprs["slo:sli_error:ratio_rate5m"]
    assert {s.service for s in slo.slos()} == {s.name for s in catalog.SERVICES if s.tier is catalog.Tier.EDGE}


def test_burn_thresholds_are_factor_times_budget():
    hello = next(s for s in slo.slos() if s.service == "hello")
    expr = slo.burn_expr(hello, slo.PAGE)
    assert "> 0.0144" in expr
    assert "> 0.006" in expr
    assert "ratio_rate1h" in expr
    assert "ratio_rate5m" in expr
    assert "ratio_rate6h" in expr
    assert "ratio_rate30m" in expr


def test_inhibition_follows_depends_on():
    expected: dict[str, set[str]] = {}
    for spec in catalog.SERVICES:
        for dependency in spec.depends_on:
            expected.setdefault(dependency, set()).add(spec.name)
    assert {k: set(v) for k, v in dependents().items()} == expected  # the catalog has no chains today
    rules = inhibit_rules()
    down_rules = [r for r in rules if r["source_matchers"][0] == "alertname=ServiceDown"]
    symptom_rules = [r for r in rules if r not in down_rules]
    assert len(down_rules) == len(symptom_rules) == len(expected)
    for rule in rules:
        source = dict(m.split("=", 1) for m in rule["source_matchers"][1:])
        callers = re.search(r'service=~"([^"]+)"', " ".join(rule["target_matchers"]))
        assert callers is not None
        assert set(callers.group(1).split("|")) == expected[source["service"]]
        assert "ServiceDown" not in " ".join(rule["target_matchers"])  # a caller's own outage still alerts
    for rule in symptom_rules:
        # A dependency's symptom mutes the same symptoms of its callers, never their burn-rate page.
        assert rule["source_matchers"][0] == 'alertname=~"HighErrorRatio|HighLatencyP95"'
        assert rule["target_matchers"][0] == 'alertname=~"HighErrorRatio|HighLatencyP95"'


def test_transitive_dependents(monkeypatch):
    chain = (
        catalog.ServiceSpec("a", catalog.Protocol.HTTP, 1, "m", "", depends_on=("b",)),
        catalog.ServiceSpec("b", catalog.Protocol.HTTP, 2, "m", "", depends_on=("c",)),
        catalog.ServiceSpec("c", catalog.Protocol.HTTP, 3, "m", ""),
    )
    monkeypatch.setattr(catalog, "SERVICES", chain)
    monkeypatch.setattr(catalog, "service_names", lambda: ("a", "b", "c"))
    assert dependents() == {"b": ("a",), "c": ("a", "b")}


@pytest.mark.parametrize("profile", ALL)
def test_routing_by_severity_and_grouping(profile):
    config = render_alertmanager_config(profile, "http://127.0.0.1:5001/alerts")
    route = config["route"]
    assert route["group_by"] == ["alertname", "service"]
    assert route["group_wait"] == f"{profile.group_wait_s}s" or profile.group_wait_s >= 60
    webhook = config["receivers"][0]["webhook_configs"][0]
    assert webhook == {"url": "http://127.0.0.1:5001/alerts", "send_resolved": True, "max_alerts": MAX_ALERTS}
    # Slots exist but are disabled without secrets.
    slots = {r["name"]: r for r in config["receivers"]}
    assert set(slots["pager"]) == {"name"}
    assert set(slots["chat"]) == {"name"}


def test_secrets_only_by_file(tmp_path):
    url = "https://hooks.slack.example/T000/B000/not-a-real-token"
    key = "pd-routing-key-not-real-0123456789"
    secrets = ReceiverSecrets.from_env(tmp_path / "secrets", {SLACK_URL_ENV: url, PAGERDUTY_KEY_ENV: key})
    text = yaml.safe_dump(render_alertmanager_config(DRILL, "http://127.0.0.1:5001/alerts", secrets=secrets))
    assert url not in text
    assert key not in text
    assert "api_url_file" in text
    assert "routing_key_file" in text
    assert Path(secrets.slack_webhook_url_file or "").read_text() == url
    assert Path(secrets.pagerduty_routing_key_file or "").stat().st_mode & 0o077 == 0


def test_committed_files_hold_no_secret_material():
    pattern = re.compile(r"hooks\.slack\.com|routing_key:|service_key:|api_url:|password|BEGIN [A-Z ]*PRIVATE KEY")
    for path, text in committed_files().items():
        assert not pattern.search(text), path


def test_prometheus_file_discovery_config():
    config = render_prometheus_config(DRILL, "file", targets_dir="/state/prometheus/targets")
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["services"]["file_sd_configs"][0]["files"] == ["/state/prometheus/targets/*.json"]
    assert {"prometheus", "alertmanager"} <= set(jobs)
    assert config["global"]["scrape_interval"] == "1s"
    assert config["rule_files"] == ["rules/recording.yml", "rules/slo.yml", "rules/alerts.yml"]


def test_prometheus_consul_discovery_config():
    config = render_prometheus_config(PRODUCTION, "consul", consul_server="10.0.0.1:8500")
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    services = jobs["services"]
    assert services["consul_sd_configs"][0]["services"] == list(catalog.service_names())
    relabels = {tuple(r["source_labels"]): r for r in services["relabel_configs"]}
    assert relabels[("__meta_consul_service",)]["target_label"] == "service"
    address = relabels[("__meta_consul_service_address", "__meta_consul_service_metadata_metrics_port")]
    assert address["target_label"] == "__address__"
    assert relabels[("__meta_consul_service_metadata_metrics_path",)]["target_label"] == "__metrics_path__"
    for role in ("server", "client"):
        nomad = jobs[f"nomad-{role}"]
        assert nomad["metrics_path"] == "/v1/metrics"
        # Nomad's HTTP API is TLS-only on the cluster: plain http scrapes would all fail.
        assert nomad["scheme"] == "https"
        assert nomad["tls_config"]["server_name"] == f"{role}.global.nomad"
        assert nomad["tls_config"]["ca_file"].endswith("/ca.pem")
        assert "insecure_skip_verify" not in nomad["tls_config"]
    assert jobs["consul"]["metrics_path"] == "/v1/agent/metrics"
    assert "consul_sd_configs" in config["alerting"]["alertmanagers"][0]
    with pytest.raises(ValueError, match="discovery"):
        render_prometheus_config(PRODUCTION, "dns")  # type: ignore[arg-type]


def test_write_local_config_applies_the_port_offset(tmp_path, monkeypatch):
    monkeypatch.setenv("FIREDRILL_PORT_OFFSET", "30000")
    for variable in (SLACK_URL_ENV, PAGERDUTY_KEY_ENV):
        monkeypatch.delenv(variable, raising=False)
    paths = write_local_config(tmp_path, DRILL)
    assert paths.file_sd_dir == tmp_path.resolve() / "prometheus" / "targets"
    assert paths.file_sd_dir.is_dir()
    assert sorted(p.name for p in paths.rules_dir.iterdir()) == ["alerts.yml", "recording.yml", "slo.yml"]
    prom = yaml.safe_load(paths.prometheus_config.read_text())
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:39093"]
    assert prom["scrape_configs"][0]["file_sd_configs"][0]["files"] == [f"{paths.file_sd_dir}/*.json"]
    am = yaml.safe_load(paths.alertmanager_config.read_text())
    assert am["receivers"][0]["webhook_configs"][0]["url"] == "http://127.0.0.1:35001/alerts"
    alerts_text = (paths.rules_dir / "alerts.yml").read_text()
    assert "http://127.0.0.1:33000/d/" in alerts_text  # Grafana link follows the offset too
    assert (paths.alertmanager_config.parent / "templates" / "firedrill.tmpl").exists()


def test_links_are_configurable(monkeypatch):
    monkeypatch.setenv("FIREDRILL_RUNBOOK_BASE_URL", "https://wiki.example/runbooks/")
    links = Links.from_env("http://grafana.example:3000")
    assert links.runbook("ServiceDown") == "https://wiki.example/runbooks/ServiceDown.md"
    alert = alerts(DRILL, links=links)[0]
    assert alert.dashboard_url.startswith("http://grafana.example:3000/d/")


@pytest.mark.parametrize("name", sorted(set(alert_names(DRILL)) | set(alert_names(PRODUCTION))))
def test_every_alert_has_a_runbook(name):
    runbook = REPO / "docs" / "runbooks" / f"{name}.md"
    assert runbook.exists(), f"missing {runbook}"
    text = runbook.read_text()
    assert text.startswith(f"# {name}")
    assert "First checks" in text
    assert "Escalation" in text


def test_promtool_values_notation():
    assert values(Series("up", gauge(1), gauge(0)), (3, 2, 2), 1) == "1x2 0x1 1x1"
    assert values(Series("c", counter(1), counter(3)), (2, 2, 1), 15) == "15+15x1 75+45x1 135"
    assert values(Series("x", gauge(1), missing()), (2, 3, 1), 1) == "1x1 stale _x2 1"


def test_profiles_are_the_catalogued_ones():
    assert set(PROFILES) == {"drill", "production"}


@pytest.mark.parametrize("profile", ALL)
def test_pages_route_on_quick_timers_and_the_rest_on_calm_ones(profile):
    route = render_alertmanager_config(profile, "http://127.0.0.1:5001/alerts")["route"]
    assert (route["group_wait"], route["group_interval"]) == (
        duration(profile.group_wait_s),
        duration(profile.group_interval_s),
    )
    pages = [r for r in route["routes"] if r["matchers"] == ["severity=critical"]]
    assert {r["receiver"] for r in pages} == {"incidents", "pager"}
    for page in pages:
        assert page["group_wait"] == duration(profile.page_group_wait_s)
        assert page["group_interval"] == duration(profile.page_group_interval_s)
    calm = [r for r in route["routes"] if r not in pages]
    assert calm
    assert all("group_wait" not in r and "group_interval" not in r for r in calm)  # the root's
    assert notification_timers_s(profile, "critical") == (profile.page_group_wait_s, profile.page_group_interval_s)
    assert notification_timers_s(profile, "warning") == (profile.group_wait_s, profile.group_interval_s)


def test_production_pages_and_resolves_within_the_issue_targets():
    p = PRODUCTION
    # Stop -> incident, at worst: a health scrape and an evaluation late, `for`, group_wait.
    assert 2 * p.health_scrape_interval_s + p.for_service_down_s + p.page_group_wait_s <= 30
    # Restart -> resolved, at worst: a scrape and an evaluation late, then the group's next tick.
    assert 2 * p.health_scrape_interval_s + p.page_group_interval_s <= 60
    # Warnings and tickets stay calm; metrics are not scraped faster than before.
    assert (p.group_wait_s, p.group_interval_s, p.scrape_interval_s) == (30, 300, 15)


@pytest.mark.parametrize("profile", ALL)
def test_service_down_for_is_n_failed_health_scrapes(profile):
    down = next(a for a in alerts(profile) if a.name == "ServiceDown")
    assert down.for_s == (profile.down_after_failed_scrapes - 1) * profile.health_scrape_interval_s
    assert profile.down_after_failed_scrapes >= 2  # one failed scrape never pages
    groups = rule_documents(profile)["alerts.yml"]["groups"]
    fast = next(g for g in groups if any(r["alert"] == "ServiceDown" for r in g["rules"]))
    assert fast["interval"] == duration(profile.health_scrape_interval_s)
    assert {r["alert"] for r in fast["rules"]} == {"ServiceDown", "IncidentReceiverUnreachable"}
    assert evaluation_interval_s(profile, down) == profile.health_scrape_interval_s
    tests = promtool_test_documents(profile)["ServiceDown.test.yml"]
    assert tests["evaluation_interval"] == duration(profile.health_scrape_interval_s)
    # Everything else keeps the global evaluation interval and its own tests' pace.
    assert promtool_test_documents(profile)["HighErrorRatio.test.yml"]["evaluation_interval"] == duration(
        profile.evaluation_interval_s
    )


@pytest.mark.parametrize("discovery", ["file", "consul"])
@pytest.mark.parametrize("profile", ALL)
def test_health_scrape_job_keeps_only_up(profile, discovery):
    jobs = {j["job_name"]: j for j in render_prometheus_config(profile, discovery)["scrape_configs"]}
    services, health = jobs[JOB], jobs[HEALTH_JOB]
    assert health["scrape_interval"] == duration(profile.health_scrape_interval_s)
    assert health["scrape_timeout"] == duration(profile.health_scrape_timeout_s)
    assert profile.health_scrape_timeout_s <= profile.health_scrape_interval_s
    assert health["params"] == {"name[]": ["process_start_time_seconds"]}
    assert health["metric_relabel_configs"] == [{"source_labels": ["__name__"], "regex": ".+", "action": "drop"}]
    # Same targets and labels as the metrics job, which keeps the global interval.
    discovered = {k: v for k, v in services.items() if k != "job_name"}
    assert {k: health[k] for k in discovered} == discovered
    assert "scrape_interval" not in services


def test_production_health_scrape_is_faster_than_metrics():
    assert PRODUCTION.health_scrape_interval_s < PRODUCTION.scrape_interval_s
