"""Static invariants of the Nomad jobs in jobs/, read with python-hcl2.

Nomad itself cannot run here; these checks hold the jobs to the rules the issue and the catalog
set: every task sized, every service checked, images pinned, no hard-coded addresses, rolling
updates with canaries and auto-revert, Vault templates that reload, and parity with the catalog.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from scripts.cluster.jobspec import (
    ALERTMANAGER_TLS,
    DEPLOY_ORDER,
    INCIDENTS_LOOKUP,
    INCIDENTS_SERVER_NAME,
    PLACEMENT,
    REPO,
    JobFile,
    JobSpecError,
    cluster_alertmanager,
    job_files,
    labelled,
    monitoring_files,
    read_job,
    variables_for,
)
from services.common import catalog

pytestmark = pytest.mark.infra

JOBS = {name: read_job(path) for name, path in job_files().items()}
# Not Nomad jobs: Vault runs on the servers, and on Nomad the client's template runner renders
# secrets (the vault-agent component is the local platform's renderer); Nomad restarts tasks itself
# (the restarter is the local platform's).
INFRA_SERVICES = {i.name for i in catalog.INFRA} - {"openbao", "vault-agent", "restarter"}
IP = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
# Addresses that are not hosts: loopback (inside a task), the bind-all address and SAN literals.
ALLOWED_IPS = {"127.0.0.1", "0.0.0.0"}


T = TypeVar("T")


def nonempty(items: Iterable[T], what: str) -> list[T]:
    """``items`` as a list, failing when there are none: a check looping over nothing passes vacuously."""
    listed = list(items)
    assert listed, f"no {what} found in the jobs: the check would pass without checking anything"
    return listed


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
    for var, body in nonempty(JOBS[name].variables.items(), f"variables of {name}"):
        assert body.get("type"), f"{name}: variable {var} has no type"
        assert body.get("description"), f"{name}: variable {var} has no description"


@pytest.mark.parametrize("name", sorted(JOBS))
def test_datacenters_come_from_a_variable(name: str) -> None:
    assert "datacenters" in JOBS[name].variables
    assert JOBS[name].body["datacenters"] == "${var.datacenters}"


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_job_has_an_update_with_auto_revert(name: str) -> None:
    [update] = JOBS[name].body["update"]
    # Stateless jobs deploy a canary first; monitoring rolls (its groups keep state on disk).
    assert update.get("canary", 0) >= (0 if name == "monitoring" else 1)
    assert update["auto_revert"] is True
    assert update["health_check"] == "checks"
    assert update["max_parallel"] >= 1


def test_every_group_has_restart_and_reschedule_and_dynamic_ports() -> None:
    ports = 0
    for name, job in nonempty(JOBS.items(), "jobs"):
        for group_name, group in nonempty(job.groups.items(), f"groups of {name}"):
            assert group.get("restart"), f"{name}/{group_name} has no restart block"
            assert group.get("reschedule"), f"{name}/{group_name} has no reschedule block"
            for network in group.get("network", []):
                for label, port in labelled(network.get("port")):
                    assert "static" not in port, f"{name}/{group_name}: port {label} is static"
                    ports += 1
    assert ports, "no network port found in any group"


def test_every_task_has_resources() -> None:
    for job, group, task_name, task in nonempty(_tasks(), "tasks"):
        [resources] = task.get("resources") or [None]
        assert resources, f"{job}/{group}/{task_name} has no resources"
        assert resources["cpu"] > 0
        assert resources["memory"] > 0


def test_images_are_pinned_variables() -> None:
    for job, group, task_name, task in nonempty(_tasks(), "tasks"):
        [config] = task["config"]
        image = config["image"]
        assert image.startswith("${var."), f"{job}/{group}/{task_name}: image is not a variable"
        var = JOBS[job].variables[image.removeprefix("${var.").removesuffix("}")]
        default = var["default"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", default), f"{job}: image {default!r} has no tag"
        assert not default.endswith(":latest"), f"{job}: image {default!r} is latest"


def test_no_latest_image_reference_anywhere_in_jobs() -> None:
    for path in nonempty(job_files().values(), "job files"):
        found = re.findall(r"[\w./-]+:latest\b", path.read_text())
        assert not found, f"{path.name} references {found}"


def test_no_hard_coded_addresses() -> None:
    for path in nonempty(job_files().values(), "job files"):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            for found in IP.findall(line):
                assert found in ALLOWED_IPS, f"{path.name}:{lineno}: hard-coded address {found}"


def test_every_service_has_a_check_and_metrics_meta() -> None:
    for job, group, service in nonempty(_services(), "services"):
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
    reloading: set[str] = set()
    for job, task_name, template in nonempty(_templates(), "templates"):
        mode = template.get("change_mode")
        assert mode in {"signal", "restart", "noop", "script"}, f"{job}/{task_name}: template without change_mode"
        data = str(template.get("data", ""))
        uses_vault = "secret " in data or "pki_issue" in data or "secret \\" in data
        if uses_vault:
            assert mode in {"signal", "restart"}, f"{job}/{task_name}: Vault template must reload ({mode})"
            if mode == "signal":
                assert template.get("change_signal"), f"{job}/{task_name}: signal template without change_signal"
            reloading.add(mode)
    # Both kinds occur (certificates signal, secrets read at start restart): both branches were checked.
    assert reloading == {"signal", "restart"}, f"Vault templates found reload by {sorted(reloading)} only"


def test_tasks_that_read_vault_have_a_workload_identity_role() -> None:
    readers = []
    for job, group, task_name, task in _tasks():
        templates = task.get("template", [])
        needs_vault = any(
            "secret" in str(t.get("data", "")) or "pki_issue" in str(t.get("data", "")) for t in templates
        )
        if needs_vault:
            readers.append((job, group, task_name, task))
    for job, group, task_name, task in nonempty(readers, "tasks that render Vault secrets"):
        [vault] = task.get("vault") or [None]
        assert vault, f"{job}/{group}/{task_name} renders Vault secrets without a vault block"
        assert vault["role"] == f"firedrill-{task_name}", f"{job}/{task_name}: vault role {vault['role']}"


def test_secrets_are_files_never_env_values() -> None:
    secret_keys, secret_templates = 0, 0
    for job, _group, task_name, task in nonempty(_tasks(), "tasks"):
        for env in task.get("env", []):
            for key, value in env.items():
                if any(word in key for word in ("TOKEN", "KEY", "PASSWORD", "SECRET")):
                    assert key.endswith("_FILE"), f"{job}/{task_name}: {key} carries a secret value"
                    assert "${NOMAD_SECRETS_DIR}" in value or value.startswith("/secrets/"), (job, key)
                    secret_keys += 1
        for template in task.get("template", []):
            if "secret " in str(template.get("data", "")) and not template.get("env"):
                assert template["destination"].startswith("secrets/"), f"{job}/{task_name}: secret outside secrets/"
                secret_templates += 1
    assert secret_keys, "no env variable naming a secret file found: the rule checked nothing"
    assert secret_templates, "no template rendering a Vault secret to a file found: the rule checked nothing"


# Images whose user owns rendered secrets, by the prefix of the job variables naming that user
# (<prefix>_uid, <prefix>_gid): the services image (Dockerfile USER), prom/alertmanager (nobody),
# grafana/grafana (grafana).
IMAGE_USERS = {"service", "alertmanager", "grafana"}
DOCKERFILE_USER = re.compile(r"^USER\s+(\d+):(\d+)\s*$", re.M)
VAR_REF = re.compile(r"\$\{var\.(\w+)\}")


def _owner_variable(job: str, template: dict[str, Any], key: str) -> str:
    """The job variable a secrets/ template takes its uid or gid from (never a literal)."""
    raw = template.get(key)
    where = f"{job}: {template['destination']}"
    assert raw is not None, f"{where} has no {key}: rendered root-owned, the non-root task cannot read it"
    match = VAR_REF.fullmatch(str(raw))
    assert match, f"{where}: {key} = {raw!r} is not a job variable"
    name = match.group(1)
    declared = JOBS[job].variables.get(name)
    assert declared, f"{where}: {key} names undeclared variable {name}"
    assert declared["type"] == "number", f"{job}: {name} is not a number"
    assert isinstance(declared["default"], int), f"{job}: {name} has no numeric default"
    return name


def _secret_templates() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for job, task_name, template in _templates():
        if str(template.get("destination", "")).startswith("secrets/"):
            yield job, task_name, template


def test_some_templates_render_into_secrets() -> None:
    rendered = {(job, t["destination"]) for job, _task, t in _secret_templates()}
    assert ("movie", "secrets/jwt-keys.json") in rendered
    assert ("response", "secrets/admin-token") in rendered
    assert ("monitoring", "secrets/grafana_admin_password") in rendered
    assert ("hello", "secrets/tls/key.pem") in rendered


def test_secret_templates_are_owned_by_the_task_user_and_not_world_readable() -> None:
    for job, task_name, template in nonempty(_secret_templates(), "templates rendered into secrets/"):
        where = f"{job}/{task_name}: {template['destination']}"
        perms = str(template.get("perms", ""))
        assert re.fullmatch(r"0?[0-7]{3}", perms), f"{where}: perms {perms!r} (the default 0644 is too wide)"
        assert int(perms, 8) & ~0o640 == 0, f"{where}: perms {perms} wider than 0640"
        uid = _owner_variable(job, template, "uid")
        gid = _owner_variable(job, template, "gid")
        assert uid.endswith("_uid"), f"{where}: uid from {uid}"
        assert gid.endswith("_gid"), f"{where}: gid from {gid}"
        assert uid.removesuffix("_uid") == gid.removesuffix("_gid"), f"{where}: uid and gid of different images"
        assert uid.removesuffix("_uid") in IMAGE_USERS, f"{where}: {uid} is not the user of a known image"


def test_private_keys_and_tokens_are_owner_only() -> None:
    for job, task_name, template in nonempty(_secret_templates(), "templates rendered into secrets/"):
        if template["destination"] != "secrets/tls/ca.pem":
            assert template["perms"] == "0600", f"{job}/{task_name}: {template['destination']} is {template['perms']}"


def test_service_uid_defaults_to_the_dockerfile_user() -> None:
    [(uid, gid)] = DOCKERFILE_USER.findall((REPO / "Dockerfile").read_text())
    checked = []
    for name, job in JOBS.items():
        if "service_uid" not in job.variables:
            assert name in {"monitoring", "tracing"}, f"{name} runs the services image without service_uid"
            continue
        assert job.variables["service_uid"]["default"] == int(uid), name
        assert job.variables["service_gid"]["default"] == int(gid), name
        checked.append(name)
    nonempty(checked, "jobs running the services image")
    monitoring = JOBS["monitoring"].variables
    assert monitoring["alertmanager_uid"]["default"] == 65534
    assert monitoring["grafana_uid"]["default"] == 472


def test_services_do_not_self_register_on_nomad() -> None:
    service_tasks = [(job, task) for job, _group, _task_name, task in _tasks() if job not in {"monitoring", "tracing"}]
    for _job, task in nonempty(service_tasks, "tasks running the services"):
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


def _service_task(spec: catalog.ServiceSpec) -> tuple[JobFile, dict[str, Any], dict[str, Any]]:
    """The job, group body and task body that run a catalog service."""
    job, group, _service = _job_service(spec.name)
    [(task_name, task)] = [(t, body) for g, t, body in job.tasks() if g == group]
    assert task_name == spec.name, f"{job.name}/{group}: task {task_name!r} runs {spec.name}"
    return job, job.groups[group], task


def _ports(group: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {label: body for network in group.get("network", []) for label, body in labelled(network.get("port"))}


ENV_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=", re.M)
TEMPLATE_ACTION = re.compile(r"\{\{.*?\}\}", re.S)


def _env_keys(task: dict[str, Any]) -> set[str]:
    """Every variable the job sets for a task: its env block and templates rendered with env = true."""
    keys = {key for env in task.get("env", []) for key in env}
    for template in task.get("template", []):
        if template.get("env"):
            # Drop the consul-template actions ({{ with service ... }}) around the KEY=value lines.
            keys |= set(ENV_LINE.findall(TEMPLATE_ACTION.sub("", str(template.get("data", "")))))
    return keys


@pytest.mark.parametrize("spec", catalog.SERVICES, ids=lambda s: s.name)
def test_catalog_service_has_a_matching_job_service(spec: catalog.ServiceSpec) -> None:
    _job, _group, service = _job_service(spec.name)
    [meta] = service["meta"]
    assert meta["metrics_path"] == spec.metrics_path
    assert meta["protocol"] == spec.protocol.value
    main_port = "grpc" if spec.protocol == catalog.Protocol.GRPC else "http"
    assert service["port"] == main_port
    # The task listens where the job says: the env names the same port labels.
    _job, group_body, task = _service_task(spec)
    [env] = task["env"]
    assert env["FIREDRILL_PORT"] == "${NOMAD_PORT_" + main_port + "}"
    if spec.http_port is not None:
        assert env["FIREDRILL_HTTP_PORT"] == "${NOMAD_PORT_http}"
    [config] = task["config"]
    assert config["args"] == ["-m", spec.module]
    assert set(config["ports"]) == set(_ports(group_body)), f"{spec.name}: docker ports differ from the network"


@pytest.mark.parametrize("spec", catalog.SERVICES, ids=lambda s: s.name)
def test_catalog_service_has_a_plain_metrics_port_scraped_and_checked(spec: catalog.ServiceSpec) -> None:
    """/metrics and /health on the plain ops port: they must work when certificates or Vault do not."""
    assert spec.metrics_port is not None, f"{spec.name}: the catalog gives every service a metrics port"
    _job, group, service = _job_service(spec.name)
    _job, group_body, task = _service_task(spec)
    ports = _ports(group_body)
    assert "metrics" in ports, f"{spec.name}: no metrics port in group {group}"
    assert "static" not in ports["metrics"], f"{spec.name}: the metrics port must be dynamic"
    [meta] = service["meta"]
    assert meta["metrics_port"] == "${NOMAD_HOST_PORT_metrics}"
    assert meta["metrics_path"] == spec.metrics_path
    assert meta["metrics_scheme"] == "http"
    [env] = task["env"]
    assert env["FIREDRILL_METRICS_PORT"] == "${NOMAD_PORT_metrics}"
    checks = service.get("check") or []
    health = [c for c in checks if c["type"] == "http" and c.get("path") == spec.health_path]
    assert health, f"{spec.name}: no {spec.health_path} check"
    for check in health:
        assert check["port"] == "metrics", f"{spec.name}: {check['name']} is not on the metrics port"
        assert check.get("protocol", "http") == "http", f"{spec.name}: {check['name']} must be plain HTTP"
    # No check may depend on TLS: an expiring certificate must raise CertificateExpiringSoon, not
    # fail health checks (restarts, blocked deployments) -- and Consul has no platform client cert.
    for check in checks:
        assert check.get("protocol", "http") != "https", f"{spec.name}: {check['name']} uses https"
        assert not check.get("grpc_use_tls"), f"{spec.name}: {check['name']} checks the mTLS port"
        assert not check.get("tls_skip_verify"), f"{spec.name}: {check['name']} has TLS options"


@pytest.mark.parametrize("spec", catalog.SERVICES, ids=lambda s: s.name)
def test_service_tasks_set_only_variables_the_service_reads(spec: catalog.ServiceSpec) -> None:
    _job, _group, task = _service_task(spec)
    config_module = importlib.import_module(f"{spec.module}.config")
    known = getattr(config_module, "ENV_VARS", None)
    if known is None:
        pytest.skip(f"{spec.module}.config exposes no ENV_VARS")
    unknown = _env_keys(task) - set(known)
    assert not unknown, f"{spec.name}: the job sets {sorted(unknown)}, which {spec.module} does not read"


@pytest.mark.parametrize("spec", catalog.SERVICES, ids=lambda s: s.name)
def test_trace_ratio_replaces_the_otel_sampler_variables(spec: catalog.ServiceSpec) -> None:
    _job, _group, task = _service_task(spec)
    [env] = task["env"]
    assert env["FIREDRILL_TRACE_RATIO"] == "${var.trace_sample_ratio}"


def test_no_job_sets_the_otel_sampler() -> None:
    for path in nonempty(job_files().values(), "job files"):
        assert "OTEL_TRACES_SAMPLER" not in path.read_text(), f"{path.name} sets OTEL_TRACES_SAMPLER(_ARG)"
    for job, _group, task_name, task in nonempty(_tasks(), "tasks"):
        assert not {k for k in _env_keys(task) if k.startswith("OTEL_TRACES_SAMPLER")}, (job, task_name)


# --- Alertmanager's identity for the mTLS webhook to incidents ------------------------------------


def _alertmanager_task() -> dict[str, Any]:
    [task] = [
        body for group, name, body in JOBS["monitoring"].tasks() if group == "alertmanager" and name == "alertmanager"
    ]
    return task


def test_alertmanager_renders_its_certificate_from_vault_pki() -> None:
    task = _alertmanager_task()
    [vault] = task["vault"]
    assert vault["role"] == "firedrill-alertmanager"
    locals_text = job_files()["monitoring"].read_text()
    assert 'secret \\"pki_int/issue/alertmanager\\"' in locals_text
    rendered = {
        template["destination"]: template
        for template in task.get("template", [])
        if "pki_int/issue/alertmanager" in str(template.get("data", ""))
    }
    nonempty(rendered, "Alertmanager certificate templates")
    tls = ALERTMANAGER_TLS
    # The job's secrets/ is /secrets inside the container: the files tls_config points at.
    wanted = {str(path).removeprefix("/") for path in (tls.cert, tls.key, tls.ca)}
    assert set(rendered) == wanted
    for destination, template in rendered.items():
        assert template["change_mode"] == "signal", destination
        assert template["change_signal"] == "SIGHUP", destination
        assert template["uid"] == "${var.alertmanager_uid}", destination
        assert template["gid"] == "${var.alertmanager_gid}", destination
    assert rendered[str(tls.key).removeprefix("/")]["perms"] == "0600"


def _incidents_hook(text: str) -> dict[str, Any]:
    config = yaml.safe_load(text)
    [incidents] = [r for r in config["receivers"] if r["name"] == "incidents"]
    [hook] = incidents["webhook_configs"]
    assert isinstance(hook, dict)
    return hook


def test_cluster_alertmanager_config_calls_incidents_with_its_client_certificate() -> None:
    files = monitoring_files(REPO, "production")["alertmanager_files"]
    adapted = files["alertmanager.yml"]
    hook = _incidents_hook(adapted)
    assert hook["url"].startswith(INCIDENTS_LOOKUP)
    assert "https://" in hook["url"]
    tls = ALERTMANAGER_TLS
    assert hook["http_config"]["tls_config"] == {
        "ca_file": str(tls.ca),
        "cert_file": str(tls.cert),
        "key_file": str(tls.key),
        "server_name": INCIDENTS_SERVER_NAME,
    }
    assert INCIDENTS_SERVER_NAME == "incidents.service.consul"
    assert "insecure_skip_verify" not in adapted


def test_nothing_deploy_sends_skips_tls_verification() -> None:
    """Every variable of every job, as make deploy passes them: no insecure_skip_verify anywhere."""
    for name, job in nonempty(JOBS.items(), "jobs"):
        variables = variables_for(job, profile="production", image=None, overrides={})
        assert "insecure_skip_verify" not in repr(variables), f"{name}: deploy would send insecure_skip_verify"
        if name == "monitoring":
            adapted = variables["alertmanager_files"]["alertmanager.yml"]
            assert _incidents_hook(adapted)["http_config"]["tls_config"]["server_name"] == INCIDENTS_SERVER_NAME
    for path in job_files().values():
        assert "insecure_skip_verify" not in path.read_text(), path.name


def test_alertmanager_config_without_an_incidents_webhook_is_refused() -> None:
    with pytest.raises(JobSpecError, match="no webhook to the incidents service"):
        cluster_alertmanager("receivers: [{name: incidents, webhook_configs: []}]\n")
    with pytest.raises(JobSpecError, match="no webhook to the incidents service"):
        cluster_alertmanager("receivers: [{name: incidents, webhook_configs: [{url: 'http://elsewhere:5001/'}]}]\n")


def test_every_job_service_is_in_the_catalog_or_infra() -> None:
    names = set(catalog.service_names())
    for job, group, service in nonempty(_services(), "services"):
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
