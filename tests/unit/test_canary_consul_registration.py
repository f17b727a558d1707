"""A cluster rollout announces its /metrics in Consul while it runs (FakeConsul of tests/unit/test_consul.py,
the real py-consul client), and the cluster's Prometheus has the job that finds it."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import pytest

from scripts.canary.consul_registration import ConsulRegistration, ConsulRegistrationError, address_towards
from scripts.canary.contract import StepContext
from scripts.canary.metrics_endpoint import exported_rollout
from scripts.monitoring.prometheus_config import ROLLOUT_JOB, render_prometheus_config
from services.common.profiles import PRODUCTION
from tests.unit import test_consul
from tests.unit.test_consul import _ci

fake_consul = test_consul.fake_consul
FakeConsul = test_consul.FakeConsul


async def test_the_rollout_is_a_consul_service_while_it_runs_and_is_gone_after(
    fake_consul: tuple[FakeConsul, str],
) -> None:
    fake, address = fake_consul
    seen: dict[str, Any] = {}
    lines: list[str] = []

    def rollout() -> None:
        registration = ConsulRegistration.from_env("response", {"CONSUL_HTTP_ADDR": address})
        with exported_rollout("response", registration, final_scrape_timeout_s=0.2, progress=lines.append) as metrics:
            metrics.step_started(StepContext("response", "v1", "v2", "canary", 0, 1, 20))
            [service] = fake.services.values()
            seen["body"] = service.body
            [check] = _ci(service.body, "checks") or [_ci(service.body, "check")]
            # What Prometheus (and the agent's check) fetch: the address the rollout announced.
            with urllib.request.urlopen(_ci(check, "http"), timeout=5) as answer:  # noqa: S310 (loopback)
                seen["scraped"] = answer.read().decode()
            seen["check"] = check
        seen["after"] = dict(fake.services)

    await asyncio.to_thread(rollout)
    body = seen["body"]
    assert _ci(body, "name") == ROLLOUT_JOB
    assert _ci(body, "meta") == {"rollout_service": "response"}
    assert _ci(seen["check"], "DeregisterCriticalServiceAfter") == "1m"
    assert _ci(seen["check"], "http") == f"http://{_ci(body, 'address')}:{_ci(body, 'port')}/metrics"
    assert 'canary_weight_percent{service="response"} 1.0' in seen["scraped"]
    assert seen["after"] == {}
    assert any("announced in Consul as canary-rollout" in line for line in lines)


def test_without_consul_the_cluster_rollout_is_refused_before_it_starts() -> None:
    with pytest.raises(ConsulRegistrationError, match="CONSUL_HTTP_ADDR"):
        ConsulRegistration.from_env("response", {})
    unreachable = ConsulRegistration.from_env("response", {"CONSUL_HTTP_ADDR": "http://127.0.0.1:9"})
    with pytest.raises(ConsulRegistrationError, match="failed"), exported_rollout("response", unreachable):
        pytest.fail("the rollout must not start")


def test_the_address_served_on_is_the_one_towards_consul() -> None:
    assert address_towards("http://127.0.0.1:8500") == "127.0.0.1"


def test_the_cluster_prometheus_scrapes_rollouts_found_in_consul() -> None:
    config = render_prometheus_config(PRODUCTION, "consul", consul_server="127.0.0.1:8500")
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == ROLLOUT_JOB]
    assert job["consul_sd_configs"][0]["services"] == [ROLLOUT_JOB]
    assert {
        "source_labels": ["__meta_consul_service_metadata_rollout_service"],
        "target_label": "rollout_service",
    } in job["relabel_configs"]
