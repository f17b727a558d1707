"""Static invariants of the Nomad jobs in jobs/, read with python-hcl2.

Nomad itself cannot run here; these checks hold the jobs to the rules the issue and the catalog
set: every task sized, every service checked, images pinned, no hard-coded addresses, rolling
updates with canaries and auto-revert, Vault templates that reload, and parity with the catalog.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.cluster.jobspec import DEPLOY_ORDER, PLACEMENT, JobFile, job_files, labelled, read_job
from services.common import catalog

pytestmark = pytest.mark.infra

JOBS = {name: read_job(path) for name, path in job_files().items()}
INFRA_SERVICES = {i.name for i in catalog.INFRA} - {"openbao"}
IP = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
# Addresses that are not hosts: loopback (inside a task), the bind-all address and SAN literals.
ALLOWED_IPS = {"127.0.0.1", "0.0.0.0"}


def _tasks() -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for name, job in JOBS.items():
        for group, task_name, task in job.tasks():
            yield name, group, task_name, task


def _services() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, job in JOBS.items():
        for group, service in job.services():
            yield name, group, service


def _templates() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for job, _group, task_name, task in _tasks():
        for template in task.get("template", []):
            yield job, task_name, template
        for dynamic in task.get("dynamic", []):
            for label, body in dynamic.items():
                if label.strip('"') == "template":
                    for content in body.get("content", []):
                        yield job, task_name, content


def test_expected_job_files_exist() -> None:
    assert set(JOBS) == set(DEPLOY_ORDER)
    for name, job in JOBS.items():
        assert job.name == name, f"{job.path.name} declares job {job.name!r}"


def test_movie_has_its_four_groups() -> None:
    assert list(JOBS["movie"].groups) == ["metadata", "rating", "movie", "auth"]
    assert set(JOBS["monitoring"].groups) == {"prometheus", "alertmanager", "grafana"}
    assert set(JOBS["tracing"].groups) == {"jaeger", "collector"}


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_variable_is_typed_and_described(name: str) -> None:
    for var, body in JOBS[name].variables.items():
        assert body.get("type"), f"{name}: variable {var} has no type"
        assert body.get("description"), f"{name}: variable {var} has no description"


@pytest.mark.parametrize("name", sorted(JOBS))
def test_datacenters_come_from_a_variable(name: str) -> None:
    assert "datacenters" in JOBS[name].variables
    assert JOBS[name].body["datacenters"] == "${var.datacenters}"


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_job_has_a_canary_update_with_auto_revert(name: str) -> None:
    [update] = JOBS[name].body["update"]
    assert update["canary"] >= 1
    assert update["auto_revert"] is True
    assert update["health_check"] == "checks"
    assert update["max_parallel"] >= 1


def test_every_group_has_restart_and_reschedule_and_dynamic_ports() -> None:
    for name, job in JOBS.items():
        for group_name, group in job.groups.items():
            assert group.get("restart"), f"{name}/{group_name} has no restart block"
            assert group.get("reschedule"), f"{name}/{group_name} has no reschedule block"
            for network in group.get("network", []):
                for label, port in labelled(network.get("port")):
                    assert "static" not in port, f"{name}/{group_name}: port {label} is static"


def test_every_task_has_resources() -> None:
    for job, group, task_name, task in _tasks():
        [resources] = task.get("resources") or [None]
        assert resources, f"{job}/{group}/{task_name} has no resources"
        assert resources["cpu"] > 0
        assert resources["memory"] > 0


def test_images_are_pinned_variables() -> None:
    for job, group, task_name, task in _tasks():
        [config] = task["config"]
        image = config["image"]
        assert image.startswith("${var."), f"{job}/{group}/{task_name}: image is not a variable"
        var = JOBS[job].variables[image.removeprefix("${var.").removesuffix("}")]
        default = var["default"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", default), f"{job}: image {default!r} has no tag"
        assert not default.endswith(":latest"), f"{job}: image {default!r} is latest"


def test_no_latest_image_reference_anywhere_in_jobs() -> None:
    for path in job_files().values():
        found = re.findall(r"[\w./-]+:latest\b", path.read_text())
        assert not found, f"{path.name} references {found}"


def test_no_hard_coded_addresses() -> None:
    for path in job_files().values():
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            for found in IP.findall(line):
                assert found in ALLOWED_IPS, f"{path.name}:{lineno}: hard-coded address {found}"


def test_every_service_has_a_check_and_metrics_meta() -> None:
    for job, group, service in _services():
        checks = service.get("check") or []
        assert checks, f"{job}/{group}: service {service['name']} has no check"
        for check in checks:
            assert check["type"] in {"http", "grpc"}, f"{service['name']}: check type {check['type']}"
            assert check.get("interval")
            assert check.get("timeout")
        [meta] = service.get("meta") or [{}]
        assert meta.get("metrics_path", "").startswith("/"), f"{service['name']} has no metrics_path meta"
        assert meta.get("metrics_port", "").startswith("${NOMAD_HOST_PORT_"), f"{service['name']} metrics_port"
        assert service.get("provider", "consul") == "consul"


def test_every_template_has_a_change_mode_and_vault_ones_reload() -> None:
    for job, task_name, template in _templates():
        mode = template.get("change_mode")
        assert mode in {"signal", "restart", "noop", "script"}, f"{job}/{task_name}: template without change_mode"
        data = str(template.get("data", ""))
        uses_vault = "secret " in data or "pki_issue" in data or "secret \\" in data
        if uses_vault:
            assert mode in {"signal", "restart"}, f"{job}/{task_name}: Vault template must reload ({mode})"
            if mode == "signal":
                assert template.get("change_signal"), f"{job}/{task_name}: signal template without change_signal"


def test_tasks_that_read_vault_have_a_workload_identity_role() -> None:
    for job, group, task_name, task in _tasks():
        templates = task.get("template", [])
        needs_vault = any(
            "secret" in str(t.get("data", "")) or "pki_issue" in str(t.get("data", "")) for t in templates
        )
        if not needs_vault:
            continue
        [vault] = task.get("vault") or [None]
        assert vault, f"{job}/{group}/{task_name} renders Vault secrets without a vault block"
        assert vault["role"] == f"firedrill-{task_name}", f"{job}/{task_name}: vault role {vault['role']}"


def test_secrets_are_files_never_env_values() -> None:
    for job, _group, task_name, task in _tasks():
        for env in task.get("env", []):
            for key, value in env.items():
                if any(word in key for word in ("TOKEN", "KEY", "PASSWORD", "SECRET")):
                    assert key.endswith("_FILE"), f"{job}/{task_name}: {key} carries a secret value"
                    assert "${NOMAD_SECRETS_DIR}" in value or value.startswith("/secrets/"), (job, key)
        for template in task.get("template", []):
            if "secret " in str(template.get("data", "")) and not template.get("env"):
                assert template["destination"].startswith("secrets/"), f"{job}/{task_name}: secret outside secrets/"


def test_services_do_not_self_register_on_nomad() -> None:
    for job, _group, _task_name, task in _tasks():
        if job in {"monitoring", "tracing"}:
            continue
        [env] = task["env"]
        assert env["FIREDRILL_SELF_REGISTER"] == "false"
        assert env["FIREDRILL_DISCOVERY"] == "consul"
        assert env["FIREDRILL_PROFILE"] == "${var.profile}"
        assert {"FIREDRILL_TLS_CERT_FILE", "FIREDRILL_TLS_KEY_FILE", "FIREDRILL_TLS_CA_FILE"} <= set(env)


# --- parity with services/common/catalog.py --------------------------------------------------------


def _job_service(name: str) -> tuple[JobFile, str, dict[str, Any]]:
    job_name, group = PLACEMENT[name]
    job = JOBS[job_name]
    matches = [s for g, s in job.services() if s["name"] == name]
    assert len(matches) == 1, f"{job_name} should register exactly one Consul service {name!r}"
    return job, group, matches[0]


@pytest.mark.parametrize("spec", catalog.SERVICES, ids=lambda s: s.name)
def test_catalog_service_has_a_matching_job_service(spec: catalog.ServiceSpec) -> None:
    job, group, service = _job_service(spec.name)
    [meta] = service["meta"]
    assert meta["metrics_path"] == spec.metrics_path
    assert meta["protocol"] == spec.protocol.value
    main_port = "grpc" if spec.protocol == catalog.Protocol.GRPC else "http"
    assert service["port"] == main_port
    scrape_label = "metrics" if spec.metrics_port is not None else "http"
    assert meta["metrics_port"] == "${NOMAD_HOST_PORT_" + scrape_label + "}"
    http_checks = [c for c in service["check"] if c["type"] == "http"]
    assert [c["path"] for c in http_checks] == [spec.health_path]
    assert http_checks[0]["port"] == scrape_label
    if spec.protocol == catalog.Protocol.GRPC:
        assert any(c["type"] == "grpc" for c in service["check"]), f"{spec.name} has no gRPC health check"
    # The task listens where the job says: the env names the same port labels.
    [(_, _, task)] = [(g, t, body) for g, t, body in job.tasks() if g == group]
    [env] = task["env"]
    assert env["FIREDRILL_PORT"] == "${NOMAD_PORT_" + main_port + "}"
    if spec.metrics_port is not None:
        assert env["FIREDRILL_METRICS_PORT"] == "${NOMAD_PORT_metrics}"
    if spec.http_port is not None:
        assert env["FIREDRILL_HTTP_PORT"] == "${NOMAD_PORT_http}"
    [config] = task["config"]
    assert config["args"] == ["-m", spec.module]


def test_every_job_service_is_in_the_catalog_or_infra() -> None:
    names = set(catalog.service_names())
    for job, group, service in _services():
        assert service["name"] in names | INFRA_SERVICES, f"{job}/{group}: {service['name']} is not in the catalog"


@pytest.mark.parametrize("component", sorted(INFRA_SERVICES))
def test_infra_components_are_deployed_with_their_health_path(component: str) -> None:
    spec = catalog.infra(component)
    _job, _group, service = _job_service(component)
    paths = [c.get("path") for c in service["check"] if c["type"] == "http"]
    assert spec.health_path in paths


def test_job_files_are_what_the_loader_reads(tmp_path: Path) -> None:
    # A job file with two jobs is refused: one deployable per file.
    bad = tmp_path / "two.nomad.hcl"
    bad.write_text('job "a" {}\njob "b" {}\n')
    with pytest.raises(Exception, match="exactly one job"):
        read_job(bad)
