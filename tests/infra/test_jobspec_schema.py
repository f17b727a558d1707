"""The jobs against Nomad's real jobspec schema (jobs/.schema/nomad-<version>.json).

The schema is generated from Nomad's source by scripts/cluster/nomad_schema.py; the checker is
scripts/cluster/jobspec_lint.py. Set NOMAD_SRC to a hashicorp/nomad clone (or git dir) to also
check that the committed schema is what the generator makes from the recorded commit.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from scripts.cluster import jobspec_lint, nomad_schema
from scripts.cluster.jobspec import job_files

pytestmark = pytest.mark.infra

SCHEMA_FILES = jobspec_lint.schema_files()
SCHEMA = jobspec_lint.load_schema()
RAW: dict[str, Any] = json.loads(SCHEMA_FILES[-1].read_text(encoding="utf-8"))


def job(task: str = "", group: str = "", top: str = "") -> str:
    """A small job Nomad accepts, with extra text in the task, the group and at the top level."""
    return f"""
{top}
job "demo" {{
  datacenters = ["dc1"]

  group "demo" {{
    {group}
    task "demo" {{
      driver = "docker"
      config {{
        image = "example/demo:1.0"
      }}
      {task}
    }}
  }}
}}
"""


def messages(text: str) -> list[str]:
    return [f"{f.path}: {f.message}" for f in jobspec_lint.check_text(text, SCHEMA)]


# --- the real jobs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(job_files().values()), ids=lambda p: p.name)
def test_job_file_matches_nomads_jobspec(path: Path) -> None:
    findings = jobspec_lint.check_job_file(path, SCHEMA)
    assert findings == [], "\n" + "\n".join(str(f) for f in findings)


def test_cli_exit_status_follows_findings(tmp_path: Path) -> None:
    clean = tmp_path / "clean.nomad.hcl"
    clean.write_text(job(), encoding="utf-8")
    broken = tmp_path / "broken.nomad.hcl"
    broken.write_text(job(task="comand = 1"), encoding="utf-8")
    assert jobspec_lint.main([str(clean)]) == 0
    assert jobspec_lint.main([str(broken)]) == 1


# --- the checker on small jobs --------------------------------------------------------------------------


def test_a_minimal_job_is_clean() -> None:
    assert messages(job()) == []


def test_misspelt_attribute_is_reported_at_its_path() -> None:
    text = job(task='vault {\n role = "r"\n enf = true\n}')
    assert messages(text) == ['job.demo/group.demo/task.demo/vault: unknown attribute "enf"']


def test_misspelt_docker_config_key_is_reported() -> None:
    text = job().replace('image = "example/demo:1.0"', 'image = "example/demo:1.0"\n comand = "python"')
    assert messages(text) == ['job.demo/group.demo/task.demo/config: unknown attribute "comand"']


def test_other_drivers_config_is_free_form() -> None:
    text = job().replace('driver = "docker"', 'driver = "exec"').replace("image =", "command =")
    assert messages(text) == []


def test_unknown_nested_block_is_reported() -> None:
    text = job(task="resources {\n cpu = 100\n gpu {}\n}")
    assert messages(text) == ['job.demo/group.demo/task.demo/resources: unknown block "gpu"']


def test_attribute_written_as_block_and_block_as_attribute() -> None:
    text = job(task="kill_timeout { x = 1 }\nlogs = { max_files = 2 }")
    assert messages(text) == [
        'job.demo/group.demo/task.demo: "kill_timeout" is an attribute here, not a block',
        'job.demo/group.demo/task.demo: "logs" is a block here, not an attribute',
    ]


def test_meta_and_env_may_be_attributes_where_jobspec2_allows_it() -> None:
    text = job(task='env = { "A.B" = "c" }\nmeta = { a = "b" }', group='meta = { a = "b" }')
    assert messages(text) == []
    service = 'service {\n name = "s"\n meta = { a = "b" }\n}'
    assert messages(job(group=service)) == [
        'job.demo/group.demo/service: "meta" is a block here, not an attribute',
    ]


def test_a_single_block_given_twice_is_reported() -> None:
    text = job(group="update {\n max_parallel = 1\n}\nupdate {\n max_parallel = 2\n}")
    assert messages(text) == ['job.demo/group.demo: block "update" may appear only once here']


def test_repeated_blocks_are_fine() -> None:
    templates = "\n".join(f'template {{\n data = "{n}"\n destination = "local/{n}"\n}}' for n in "ab")
    assert messages(job(task=templates, group='network {\n port "a" {}\n port "b" {}\n}')) == []


def test_label_counts_are_checked() -> None:
    text = job(task='template "x" {\n data = "a"\n}', group="network {\n port {}\n}")
    assert messages(text) == [
        'job.demo/group.demo/network/port: block "port" takes 1 label (label), found 0',
        'job.demo/group.demo/task.demo/template.x: block "template" takes 0 labels, found 1',
    ]


def test_unknown_function_in_a_variable_validation_is_reported() -> None:
    variable = """
variable "image" {
  type    = string
  default = "a:1"
  validation {
    condition     = !endswith(var.image, ":latest") && length(regexall(":[a-z0-9]+$", var.image)) > 0
    error_message = "pinned"
  }
}
"""
    assert messages(job(top=variable)) == [
        'variable.image/validation: function "endswith" is not in Nomad v1.8.4\'s function table',
        'variable.image/validation: function "regexall" is not in Nomad v1.8.4\'s function table',
    ]


def test_known_functions_are_not_reported() -> None:
    variable = """
variable "image" {
  type    = map(list(string))
  default = {}
  validation {
    condition     = can(regex_replace("a", "b", "c")) && contains(["a"], "a") && length(keys(var.image)) >= 0
    error_message = "ok"
  }
}
locals {
  name  = trimsuffix(lower("A:1"), ":1")
  ports = convert(["1"], list(number))
}
"""
    assert messages(job(top=variable)) == []


def test_functions_inside_interpolations_and_heredocs_are_found() -> None:
    task = """
template {
  data        = "${startswith("a", "b")}"
  destination = "local/a"
}
template {
  data        = <<-EOT
    %{ if endswith("a", "b") }x%{ endif } $${notchecked()}
  EOT
  destination = "local/b"
}
"""
    assert messages(job(task=task)) == [
        'job.demo/group.demo/task.demo/template: function "startswith" is not in Nomad v1.8.4\'s function table',
        'job.demo/group.demo/task.demo/template: function "endswith" is not in Nomad v1.8.4\'s function table',
    ]


def test_go_template_text_is_not_hcl() -> None:
    quoted = r'"{{ with secret \"pki/issue/x\" (printf \"ip_sans=%s\" (env \"NOMAD_IP_http\")) }}{{ end }}"'
    task = (
        f'template {{\n  data = {quoted}\n  destination = "secrets/cert.pem"\n}}\n'
        + """
template {
  data        = <<-EOT
    {{ with secret "kv/data/x" }}{{ .Data.data.password | toJSON }}{{ end }} {{ env "HOME" }} {{ printf "%d" 1 }}
  EOT
  destination = "secrets/x"
}
"""
    )
    assert messages(job(task=task)) == []


def test_dynamic_template_is_checked_as_a_template() -> None:
    task = """
dynamic "template" {
  for_each = var.files
  content {
    data        = template.value
    destination = "local/${replace(template.key, "/", "-")}"
    perms       = "0640"
    permz       = "0640"
  }
}
"""
    top = 'variable "files" {\n type = map(string)\n default = {}\n}'
    assert messages(job(task=task, top=top)) == [
        'job.demo/group.demo/task.demo/dynamic.template/content: unknown attribute "permz"',
    ]


def test_dynamic_block_header_is_checked() -> None:
    task = 'dynamic "template" {\n labels = ["x"]\n content {}\n}\ndynamic "tempalte" {\n for_each = []\n content {}\n}'
    assert messages(job(task=task)) == [
        'job.demo/group.demo/task.demo/dynamic.template: missing required attribute "for_each"',
        'job.demo/group.demo/task.demo/dynamic.template: unknown attribute "labels"',
        'job.demo/group.demo/task.demo/dynamic.tempalte: unknown block "tempalte" (dynamic)',
    ]


def test_duration_literals_are_checked() -> None:
    text = job(task='kill_timeout = "20 s"\nshutdown_delay = "1m30s"')
    assert messages(text) == [
        'job.demo/group.demo/task.demo: "kill_timeout" = "20 s" is not a duration (such as "10s")',
    ]


def test_filesystem_functions_fail_over_the_http_api() -> None:
    assert messages(job(task='template {\n data = file("x.tpl")\n destination = "local/x"\n}')) == [
        'job.demo/group.demo/task.demo/template: function "file" reads the filesystem: disabled when Nomad '
        "parses over its HTTP API (/v1/jobs/parse, as make deploy does)",
    ]


def test_invalid_hcl_is_one_finding() -> None:
    findings = jobspec_lint.check_text('job "x" {', SCHEMA)
    assert len(findings) == 1
    assert "not valid HCL" in findings[0].message


# --- the committed schema -------------------------------------------------------------------------------


def test_one_schema_named_after_its_recorded_version() -> None:
    assert len(SCHEMA_FILES) == 1, SCHEMA_FILES
    version = RAW["nomad_version"]
    assert re.fullmatch(r"v1\.8\.\d+", version)
    assert SCHEMA_FILES[0].name == f"nomad-{version}.json"
    recorded = RAW["_generated_by"]
    assert recorded["nomad_version"] == version
    assert re.fullmatch(r"[0-9a-f]{40}", recorded["nomad_commit"])
    assert recorded["nomad_commit"] == RAW["nomad_commit"]
    command = shlex.split(recorded["command"])
    assert command[:3] == ["python", "-m", "scripts.cluster.nomad_schema"]
    assert command[command.index("--out") + 1] == f"jobs/.schema/nomad-{version}.json"
    assert command[command.index("--ref") + 1] == version


def test_schema_has_what_the_jobs_rely_on() -> None:
    bodies = SCHEMA.bodies
    assert {"env", "role", "change_mode", "change_signal"} <= set(bodies["Vault"].attributes)
    assert {"uid", "gid", "perms", "left_delimiter", "right_delimiter", "data", "destination", "env"} <= set(
        bodies["Template"].attributes
    )
    assert bodies["Template"].attributes["splay"] == "duration"
    assert {"can", "contains", "length", "regex_replace", "replace", "try"} <= SCHEMA.functions
    assert not {"endswith", "startswith", "regex", "regexall", "strcontains"} & SCHEMA.functions
    job_blocks = bodies["Job"].blocks
    assert job_blocks["group"].repeated
    assert job_blocks["group"].labels == ("name",)
    assert not job_blocks["update"].repeated
    group_blocks = bodies["TaskGroup"].blocks
    assert not group_blocks["update"].repeated
    assert not group_blocks["vault"].repeated
    assert group_blocks["meta"].as_attribute
    task_blocks = bodies["Task"].blocks
    assert task_blocks["template"].repeated
    assert not task_blocks["vault"].repeated
    assert task_blocks["env"].as_attribute
    assert task_blocks["config"].schema is None
    assert "image" in bodies[SCHEMA.drivers["docker"]].attributes


def test_schema_is_sorted_json() -> None:
    text = SCHEMA_FILES[0].read_text(encoding="utf-8")
    assert text == nomad_schema.render(RAW)


def test_schema_is_what_the_generator_makes_from_the_recorded_commit() -> None:
    nomad_src = os.environ.get("NOMAD_SRC")
    if not nomad_src:
        pytest.skip("NOMAD_SRC is not set: point it at a hashicorp/nomad clone to check the schema is not stale")
    source = nomad_schema.NomadSource(Path(nomad_src), RAW["nomad_commit"])
    fresh = nomad_schema.build_schema(source, RAW["_generated_by"]["command"])
    assert fresh == RAW, "the committed schema is stale: rerun " + RAW["_generated_by"]["command"]
