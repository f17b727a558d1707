"""The generated jobs: up to date, parsed by a real HCL v2 parser, and agreeing with the image.

Nomad's Docker driver keeps the image's ENTRYPOINT unless the task sets ``entrypoint``; ``command``
plus ``args`` (or ``args`` alone) replace the image's CMD (hashicorp/nomad v1.8,
drivers/docker/driver.go, createContainerConfig). The process is ENTRYPOINT + Cmd.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scripts.cluster import jobgen
from scripts.cluster.hcl_strings import HclScope
from scripts.cluster.jobgen.__main__ import generated, stale
from scripts.cluster.jobgen.deployments import DEPLOYMENTS
from scripts.cluster.jobspec import JOBS_DIR, REPO, JobFile, job_files, labelled, read_job
from services.common import catalog

pytestmark = pytest.mark.infra

JOBS = {name: read_job(path) for name, path in job_files().items()}
DOCKERFILE = REPO / "Dockerfile"


def test_committed_jobs_are_what_the_generator_writes() -> None:
    assert generated(), "the generator produced no job"
    assert stale() == [], "run: python -m scripts.cluster.jobgen render"


def test_staleness_check_notices_an_edited_file(tmp_path: Path) -> None:
    for name, text in generated().items():
        (tmp_path / f"{name}.nomad.hcl").write_text(text)
    assert stale(tmp_path) == []
    hello = tmp_path / "hello.nomad.hcl"
    hello.write_text(hello.read_text().replace('"firedrill-hello"', '"firedrill-response"'))
    (tmp_path / "stray.nomad.hcl").write_text("")
    assert stale(tmp_path) == ["hello", "stray.nomad.hcl"]


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform (for its HCL v2 parser) is not on PATH")
@pytest.mark.parametrize("path", sorted(JOBS_DIR.glob("*.nomad.hcl")), ids=lambda p: p.name)
def test_jobs_parse_with_a_real_hcl2_parser(path: Path) -> None:
    # `terraform fmt -` parses with hashicorp/hcl v2 (hclsyntax), Nomad's jobspec2 parser; a syntax
    # error exits non-zero. Its rewrite of "${X}" to X is Terraform style and must NOT be applied to
    # jobs (Nomad interpolates ${NOMAD_...} at run time), so only the exit status is used.
    result = subprocess.run(
        ["terraform", "fmt", "-no-color", "-"], input=path.read_bytes(), capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")


def test_the_real_parser_refuses_escaped_quotes_inside_an_interpolation(tmp_path: Path) -> None:
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on PATH")
    # The defect the HCL v2 parse caught in the generator: json-quoting a string whose ${...} holds quotes.
    bad = 'x = "a/${replace(template.key, \\"/\\", \\"-\\")}"\n'
    result = subprocess.run(["terraform", "fmt", "-"], input=bad.encode(), capture_output=True, timeout=60, check=False)
    assert result.returncode != 0


# --- image and jobs agree -------------------------------------------------------------------------------


def dockerfile_runtime() -> dict[str, Any]:
    """ENTRYPOINT, CMD, USER, WORKDIR and created users of the Dockerfile's last stage."""
    stages = re.split(r"(?m)^FROM ", DOCKERFILE.read_text())
    last = stages[-1]
    found: dict[str, Any] = {"users": {}}
    for keyword in ("ENTRYPOINT", "CMD"):
        match = re.search(rf"(?m)^{keyword}\s+(\[.*\])\s*$", last)
        assert match, f"{keyword} must use the JSON (exec) form"
        found[keyword] = json.loads(match.group(1))
    found["USER"] = re.search(r"(?m)^USER\s+(\S+)", last).group(1)  # type: ignore[union-attr]
    found["WORKDIR"] = re.search(r"(?m)^WORKDIR\s+(\S+)", last).group(1)  # type: ignore[union-attr]
    for match in re.finditer(r"useradd[^\n]*?--uid (\d+)[^\n]*?--home-dir (\S+)[^\n]*?--create-home", last):
        found["users"][int(match.group(1))] = match.group(2)
    return found


def docker_argv(image: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The process Nomad's Docker driver starts for a task ``config`` on ``image``."""
    entrypoint = config.get("entrypoint", image["ENTRYPOINT"])
    if config.get("command"):
        cmd = [config["command"], *config.get("args", [])]
    elif config.get("args"):
        cmd = list(config["args"])
    else:
        cmd = list(image["CMD"])
    return [*entrypoint, *cmd]


def service_tasks() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for job in JOBS.values():
        for _group, task_name, task in job.tasks():
            [config] = task["config"]
            if config.get("image") == "${var.image}":
                out.append((task_name, config))
    return out


def test_docker_argv_follows_the_driver_rules() -> None:
    image = {"ENTRYPOINT": ["python"], "CMD": ["-m", "services.hello"]}
    # The old jobs' form: command + args after the image's entrypoint ran `python python -m ...`.
    assert docker_argv(image, {"command": "python", "args": ["-m", "x"]}) == ["python", "python", "-m", "x"]
    assert docker_argv(image, {"args": ["-m", "x"]}) == ["python", "-m", "x"]
    assert docker_argv(image, {}) == ["python", "-m", "services.hello"]
    assert docker_argv(image, {"entrypoint": ["sh"], "args": ["-c", "true"]}) == ["sh", "-c", "true"]


def test_every_service_task_starts_its_module_in_the_image() -> None:
    image = dockerfile_runtime()
    tasks = dict(service_tasks())
    assert sorted(tasks) == sorted(catalog.service_names())
    for spec in catalog.SERVICES:
        assert docker_argv(image, tasks[spec.name]) == ["python", "-m", spec.module], spec.name
        package = REPO / spec.module.replace(".", "/")
        assert (package / "__main__.py").is_file(), f"{spec.module} cannot run with -m"
    assert docker_argv(image, {}) == ["python", "-m", catalog.service("hello").module]


def test_the_image_holds_what_the_jobs_assume() -> None:
    image = dockerfile_runtime()
    text = DOCKERFILE.read_text()
    uid, gid = (int(part) for part in image["USER"].split(":"))
    for job in JOBS.values():
        if "service_uid" in job.variables:
            assert job.variables["service_uid"]["default"] == uid
            assert job.variables["service_gid"]["default"] == gid
    assert image["users"].get(uid) == image["WORKDIR"], "the runtime user's home is the working directory"
    assert "COPY services ./services" in text, "the services package is installed into the image"
    assert re.search(r"(?m)^ENV PATH=/opt/venv/bin:", text), "python is the virtualenv's"


# --- what the generator promises ------------------------------------------------------------------------


def vault_blocks(job: JobFile) -> list[dict[str, Any]]:
    return [vault for _g, _t, task in job.tasks() for vault in task.get("vault", [])]


def test_vault_tokens_stay_out_of_the_task_environment() -> None:
    blocks = [vault for job in JOBS.values() for vault in vault_blocks(job)]
    assert len(blocks) >= len(catalog.SERVICES) + 2, "every service, Alertmanager and Grafana use Vault"
    for vault in blocks:
        assert vault.get("env") is False, vault


@pytest.mark.parametrize("deployment", [d for d in DEPLOYMENTS if d.stateful], ids=lambda d: d.service)
def test_single_writers_keep_their_data_across_deployments(deployment: Any) -> None:
    group = JOBS[deployment.job].groups[deployment.service]
    assert group["count"] == 1, "one SQLite writer"
    [disk] = group["ephemeral_disk"]
    assert disk["sticky"] is True
    assert disk["migrate"] is True
    [update] = group["update"]
    assert update["canary"] == 0, "a canary starts with an empty alloc/data"
    [(_name, task)] = labelled(group["task"])
    assert task["env"][0]["FIREDRILL_DATA_DIR"] == "${NOMAD_ALLOC_DIR}/data"


def test_monitoring_groups_keep_their_state_across_deployments() -> None:
    job = JOBS["monitoring"]
    [update] = job.body["update"]
    assert update.get("canary", 0) == 0
    for name in ("prometheus", "alertmanager", "grafana"):
        [disk] = job.groups[name]["ephemeral_disk"]
        assert (disk["sticky"], disk["migrate"]) == (True, True), name


def test_monitoring_job_carries_its_configuration() -> None:
    job = JOBS["monitoring"]
    for variable in ("prometheus_files", "alertmanager_files", "grafana_dashboards"):
        default = job.variables[variable]["default"]
        assert default, f"{variable} has no default: nomad job run would start an unconfigured task"
    assert "prometheus-consul.yml" in job.variables["prometheus_files"]["default"]
    assert "alertmanager.yml" in job.variables["alertmanager_files"]["default"]


def test_generator_is_documented_as_the_source() -> None:
    assert jobgen.__doc__
    for path in JOBS_DIR.glob("*.nomad.hcl"):
        header = "".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("#"))
        assert "python -m scripts.cluster.jobgen render" in header, path.name


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("firedrill/services:0.1.0", "0.1.0"),
        ("registry.example:5000/firedrill/services:v2-rc.1", "v2-rc.1"),
        ("firedrill/services@sha256:" + "ab" * 32, "ab" * 31 + "a"),
    ],
)
def test_services_report_their_image_version_before_any_canary(image: str, version: str) -> None:
    """Stable instances carry a ``version`` (env and Consul meta, hence the series' label) from the
    image tag, so a canary rollout can compare its new version with them."""
    from services.common.config import VERSION_PATTERN

    found = 0
    for job in JOBS.values():
        for group_name, _task_name, task in job.tasks():
            [config] = task["config"]
            if config.get("image") != "${var.image}":
                continue
            [env] = task["env"] if isinstance(task["env"], list) else [task["env"]]
            [service] = job.groups[group_name]["service"]
            [meta] = service["meta"]
            assert meta["version"] == env["FIREDRILL_VERSION"]
            reported = HclScope({"image": image}, {}, {}).evaluate(env["FIREDRILL_VERSION"], "FIREDRILL_VERSION")
            assert reported == version
            assert VERSION_PATTERN.fullmatch(reported)
            found += 1
    assert found == len(catalog.SERVICES)
