"""The rollout driver on Nomad, against the Nomad HTTP API of tests/unit/test_nomad.py (python-nomad the real client).

The analysis is scripted (tests/unit/test_canary_driver.py): these tests check what the Nomad
target does with each decision — the job it registers, promotion and failure of its deployment.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from scripts.canary.contract import Decision
from scripts.canary.driver import PROMOTED, ROLLED_BACK, Outcome, Refused, RolloutRequest, RolloutSettings, run_rollout
from scripts.canary.nomad_target import NomadTarget, image_with_tag, nomad_plan
from scripts.cluster.client import make_client
from scripts.deploy_target.interface import PlatformError
from tests.unit import test_nomad
from tests.unit.test_canary_driver import ScriptedAnalysis, _verdict

fake_nomad = test_nomad.fake_nomad
FakeNomad = test_nomad.FakeNomad
FAST = RolloutSettings(interval_s=0.01, window_s=15, max_holds=3)


def _response_job(count: int = 2) -> dict[str, Any]:
    return {
        "ID": "response",
        "Name": "response",
        "Type": "service",
        "TaskGroups": [
            {
                "Name": "response",
                "Count": count,
                "Update": {"Canary": 1, "MaxParallel": 1, "AutoRevert": True, "AutoPromote": False},
                "Services": [{"Name": "response", "Meta": {"protocol": "http"}}],
                "Tasks": [
                    {
                        "Name": "response",
                        "Config": {"image": "registry.example/firedrill/services:1.0", "args": ["-m", "x"]},
                        "Env": {"FIREDRILL_PROFILE": "production"},
                    }
                ],
            }
        ],
    }


def _cluster(fake: FakeNomad, behaviour: str = "canary", count: int = 2) -> None:
    fake._store(_response_job(count))
    fake.deployments["response"]["Status"] = "successful"  # the stable version is deployed
    fake.behaviour["response"] = behaviour


def _target(addr: str) -> NomadTarget:
    return NomadTarget(make_client({"NOMAD_ADDR": addr}), timeout_s=10, poll_s=0.01)


def _rollout(target: NomadTarget, analysis: ScriptedAnalysis, strategy: str = "canary") -> Outcome:
    request = RolloutRequest("response", "2", strategy, FAST)
    return run_rollout(request, target, analysis, [], threading.Event(), lambda _: None)


def test_a_good_canary_is_registered_with_its_update_block_then_promoted(fake_nomad: tuple[FakeNomad, str]) -> None:
    fake, addr = fake_nomad
    _cluster(fake)
    target = _target(addr)
    assert target.stable_version("response") == "1.0"
    outcome = _rollout(target, ScriptedAnalysis(_verdict(Decision.PROMOTE)))
    assert outcome.result == PROMOTED, outcome.reason
    job = fake.jobs["response"]
    [group] = job["TaskGroups"]
    assert group["Update"]["Canary"] == 1
    assert group["Update"]["AutoRevert"] is True
    assert group["Update"]["AutoPromote"] is False
    assert group["Tasks"][0]["Config"]["image"] == "registry.example/firedrill/services:2"
    assert group["Tasks"][0]["Env"]["FIREDRILL_VERSION"] == "2"
    assert group["Services"][0]["Meta"] == {"protocol": "http", "version": "2"}
    deployment_id = fake.deployments["response"]["ID"]
    assert f"POST /v1/deployment/promote/{deployment_id}" in fake.calls
    assert not any(call.startswith("POST /v1/deployment/fail/") for call in fake.calls)
    assert fake.deployments["response"]["Status"] == "successful"
    assert target.stable_version("response") == "2"


def test_a_bad_canary_fails_its_deployment_and_nomad_reverts_the_job(fake_nomad: tuple[FakeNomad, str]) -> None:
    fake, addr = fake_nomad
    _cluster(fake)
    target = _target(addr)
    outcome = _rollout(target, ScriptedAnalysis(_verdict(Decision.ROLLBACK)))
    assert outcome.result == ROLLED_BACK
    assert outcome.last_weight_percent == 33  # 1 canary beside 2 instances
    failed = [call for call in fake.calls if call.startswith("POST /v1/deployment/fail/")]
    assert len(failed) == 1
    assert not any(call.startswith("POST /v1/deployment/promote/") for call in fake.calls)
    assert fake.jobs["response"]["TaskGroups"][0]["Tasks"][0]["Config"]["image"].endswith(":1.0")
    assert target.stable_version("response") == "1.0"


def test_a_rollback_after_nomad_finished_reverts_the_job(fake_nomad: tuple[FakeNomad, str]) -> None:
    fake, addr = fake_nomad
    _cluster(fake)
    target = _target(addr)
    analysis = ScriptedAnalysis(_verdict(Decision.PROMOTE), _verdict(Decision.ROLLBACK))
    outcome = _rollout(target, analysis)
    assert outcome.result == ROLLED_BACK
    assert outcome.last_weight_percent == 100
    assert "POST /v1/job/response/revert" in fake.calls
    assert target.stable_version("response") == "1.0"


def test_a_deployment_in_progress_or_missing_allocations_refuse_the_rollout(fake_nomad: tuple[FakeNomad, str]) -> None:
    fake, addr = fake_nomad
    _cluster(fake)
    fake.deployments["response"]["Status"] = "running"
    target = _target(addr)
    with pytest.raises(Refused, match="still running"):
        _rollout(target, ScriptedAnalysis(_verdict(Decision.PROMOTE)))
    fake.deployments["response"]["Status"] = "successful"
    fake.allocs["response"] = fake.allocs["response"][:1]
    assert target.stable_problem("response") == "1 of 2 allocations of response/response running"
    assert not any(call == "POST /v1/job/response" for call in fake.calls)


def test_the_plans_on_nomad_follow_the_canary_count() -> None:
    assert [s.weight_percent for s in nomad_plan("canary", 4).steps] == [20, 100]
    assert [s.weight_percent for s in nomad_plan("blue-green", 3).steps] == [50, 100]
    rolling = nomad_plan("rolling", 4).steps
    assert [(s.weight_percent, s.new_instances) for s in rolling] == [(25, 1), (50, 2), (75, 3), (100, 0)]
    with pytest.raises(PlatformError, match="no instance"):
        nomad_plan("canary", 0)


def test_image_tags() -> None:
    assert image_with_tag("registry.example/firedrill/services:1.0", "2") == "registry.example/firedrill/services:2"
    assert image_with_tag("registry.example:5000/services:1.0", "2") == "registry.example:5000/services:2"
    assert image_with_tag("services", "2") == "services:2"
    with pytest.raises(PlatformError, match="digest"):
        image_with_tag("services@sha256:abc", "2")


def test_a_rolling_update_is_paused_at_each_new_instance_while_it_is_analysed(
    fake_nomad: tuple[FakeNomad, str],
) -> None:
    fake, addr = fake_nomad
    _cluster(fake, behaviour="rolling", count=3)
    target = _target(addr)
    placed_at_verdicts: list[tuple[str, int, int]] = []

    def watch(_: int) -> None:
        state = fake.deployments["response"]
        group = state["TaskGroups"]["response"]
        placed_at_verdicts.append((state["Status"], group["PlacedAllocs"], group["HealthyAllocs"]))

    analysis = ScriptedAnalysis(_verdict(Decision.PROMOTE), on_call=watch)
    outcome = _rollout(target, analysis, strategy="rolling")
    assert outcome.result == PROMOTED, outcome.reason
    # Each verdict saw a paused deployment with exactly the step's instances placed and healthy:
    # Nomad replaced nothing more while the analysis judged (1 of 3, 2 of 3), then the rest.
    assert placed_at_verdicts[:2] == [("paused", 1, 1), ("paused", 2, 2)]
    assert fake.jobs["response"]["TaskGroups"][0]["Update"]["Canary"] == 0
    deployment_id = fake.deployments["response"]["ID"]
    pauses = [call for call in fake.calls if call == f"POST /v1/deployment/pause/{deployment_id}"]
    assert len(pauses) == 4  # pause, resume + pause for the 2nd instance, resume for the 3rd
    assert fake.deployments["response"]["Status"] == "successful"
    assert target.stable_version("response") == "2"


def test_a_bad_instance_of_a_rolling_update_fails_the_paused_deployment(fake_nomad: tuple[FakeNomad, str]) -> None:
    fake, addr = fake_nomad
    _cluster(fake, behaviour="rolling")
    target = _target(addr)
    outcome = _rollout(target, ScriptedAnalysis(_verdict(Decision.ROLLBACK)), strategy="rolling")
    assert outcome.result == ROLLED_BACK, (outcome.reason, fake.calls)
    assert fake.deployments["response"]["JobVersion"] == 2  # auto_revert registered version 0 again
    failed = [call for call in fake.calls if call.startswith("POST /v1/deployment/fail/")]
    assert len(failed) == 1
    assert target.stable_version("response") == "1.0"


def test_pausing_a_finished_deployment_is_refused_as_nomad_does(fake_nomad: tuple[FakeNomad, str]) -> None:
    fake, addr = fake_nomad
    _cluster(fake)
    client = make_client({"NOMAD_ADDR": addr})
    deployment_id = fake.deployments["response"]["ID"]
    with pytest.raises(Exception, match="terminal"):
        client.deployment.pause_deployment(deployment_id, True)
