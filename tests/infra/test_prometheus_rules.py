"""promtool over the generated rules and configs of both profiles, and staleness of the committed files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from scripts.monitoring.alerts import alert_names
from scripts.monitoring.check import check_config
from scripts.monitoring.files import REPO, stale_files
from services.common.profiles import PROFILES
from tests.conftest import require_binary

pytestmark = pytest.mark.infra

GENERATED = REPO / "prometheus" / "generated"


def test_committed_files_match_the_generator() -> None:
    stale = stale_files()
    assert not stale, "run `python -m scripts.monitoring render`; stale: " + ", ".join(
        str(p.relative_to(REPO)) for p in stale
    )


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_alert_has_a_promtool_test_file(profile: str) -> None:
    tests = {p.name.removesuffix(".test.yml") for p in (GENERATED / profile / "tests").glob("*.test.yml")}
    assert tests == set(alert_names(PROFILES[profile]))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_rules_pass_promtool_check(profile: str) -> None:
    promtool = require_binary("promtool")
    rules = sorted((GENERATED / profile / "rules").glob("*.yml"))
    done = subprocess.run([promtool, "check", "rules", *map(str, rules)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-consul.yml"])
def test_configs_pass_promtool_check(profile: str, config: str, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    source = GENERATED / profile
    # check config also loads the rule files; work on a copy so no fallback file lands in the repo.
    (tmp_path / "rules").mkdir()
    for rule in (source / "rules").glob("*.yml"):
        (tmp_path / "rules" / rule.name).write_text(rule.read_text())
    (tmp_path / config).write_text((source / config).read_text())
    outcome = check_config(config, promtool, tmp_path / config)
    assert outcome.ok, outcome.output


@pytest.mark.slow
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_promtool_unit_tests_pass(profile: str) -> None:
    """Every alert: fires when it should, stays silent on a blip shorter than `for`, resolves."""
    promtool = require_binary("promtool")
    tests_dir = GENERATED / profile / "tests"
    files = sorted(p.name for p in tests_dir.glob("*.test.yml"))
    assert files
    done = subprocess.run(
        [promtool, "test", "rules", *files], cwd=tests_dir, capture_output=True, text=True, check=False, timeout=600
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_promtool_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """The generated tests can fail: ServiceDown with a `for` one step shorter is caught."""
    promtool = require_binary("promtool")
    source = GENERATED / "drill"
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    for rule in (source / "rules").glob("*.yml"):
        text = rule.read_text()
        if rule.name == "alerts.yml":
            head, _, tail = text.partition("- alert: ServiceDown")
            tail = tail.replace(f"for: {PROFILES['drill'].for_service_down_s}s", "for: 1s", 1)
            text = head + "- alert: ServiceDown" + tail
        (tmp_path / "rules" / rule.name).write_text(text)
    test_file = tmp_path / "tests" / "ServiceDown.test.yml"
    test_file.write_text((source / "tests" / "ServiceDown.test.yml").read_text())
    done = subprocess.run(
        [promtool, "test", "rules", test_file.name], cwd=test_file.parent, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "blip" in done.stdout + done.stderr


def test_a_few_slow_requests_are_not_a_latency_alert(tmp_path: Path) -> None:
    """One slow login every few seconds (auth's argon2) is not a p95 problem; twenty slow calls a second are."""
    promtool = require_binary("promtool")
    rules = sorted((GENERATED / "drill" / "rules").glob("*.yml"))

    def slow_calls(service: str, per_second: float) -> list[dict[str, str]]:
        # Every call takes 2 s: only the 2.5 s bucket and above count it.
        labels = f'job="services",service="{service}",instance="{service}-1:metrics",method="POST",path="/token"'
        return [
            {
                "series": f'http_request_duration_seconds_bucket{{{labels},le="{le}"}}',
                "values": f"0+{per_second if le in ('2.5', '+Inf') else 0}x120",
            }
            for le in ("0.5", "1.0", "2.5", "+Inf")
        ]

    test = {
        "rule_files": [str(rule) for rule in rules],
        "evaluation_interval": "1s",
        "tests": [
            {
                "interval": "1s",
                "input_series": [*slow_calls("auth", 0.2), *slow_calls("hello", 20)],
                "promql_expr_test": [
                    {
                        "expr": 'ALERTS{alertname="HighLatencyP95",alertstate="firing"}',
                        "eval_time": "100s",
                        "exp_samples": [
                            {
                                "labels": 'ALERTS{alertname="HighLatencyP95",alertstate="firing",'
                                'service="hello",severity="warning"}',
                                "value": 1,
                            }
                        ],
                    }
                ],
            }
        ],
    }
    test_file = tmp_path / "rare_slow_calls.test.yml"
    test_file.write_text(json.dumps(test))
    done = subprocess.run([promtool, "test", "rules", test_file.name], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_vault_down_on_a_cluster_needs_every_vault_server_gone(tmp_path: Path) -> None:
    """On a cluster VaultDown reads the scrape of the Vault servers: one server of three lost is HA doing its
    job (no alert); all three lost is Vault down."""
    promtool = require_binary("promtool")
    rules = sorted((GENERATED / "production" / "rules").glob("*.yml"))

    def vault_servers(down: int) -> list[dict[str, str]]:
        return [
            {"series": f'up{{job="vault",instance="10.0.1.{n}:8200"}}', "values": "0x900" if n <= down else "1x900"}
            for n in (1, 2, 3)
        ]

    def firing(eval_s: int, expected: list[dict[str, object]]) -> dict[str, object]:
        return {
            "expr": 'ALERTS{alertname="VaultDown",alertstate="firing"}',
            "eval_time": f"{eval_s}s",
            "exp_samples": expected,
        }

    fired = [
        {"labels": 'ALERTS{alertname="VaultDown",alertstate="firing",service="vault",severity="warning"}', "value": 1}
    ]
    test = {
        "rule_files": [str(rule) for rule in rules],
        "evaluation_interval": "15s",
        "tests": [
            {"interval": "15s", "input_series": vault_servers(1), "promql_expr_test": [firing(600, [])]},
            {"interval": "15s", "input_series": vault_servers(3), "promql_expr_test": [firing(600, fired)]},
        ],
    }
    test_file = tmp_path / "vault_servers.test.yml"
    test_file.write_text(json.dumps(test))
    done = subprocess.run([promtool, "test", "rules", test_file.name], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
