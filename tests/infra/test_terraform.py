"""Static checks of terraform/: parse, variable hygiene, no world-open ingress, pinned providers, checkov.

`terraform validate` needs the providers, which cannot be downloaded here; `terraform fmt` runs
when terraform is installed, and checkov (in its own .venv-checkov, installed by `make setup`)
scans the whole module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scripts.cluster.jobspec import REPO, labelled, load_hcl

pytestmark = pytest.mark.infra

TF = REPO / "terraform"
FILES = sorted(TF.glob("*.tf"))
PARSED = {p.name: load_hcl(p) for p in FILES}
VARIABLES = {name: body for data in PARSED.values() for name, body in labelled(data.get("variable"))}
RESOURCES = [
    (kind, name, body)
    for data in PARSED.values()
    for block in data.get("resource", [])
    for kind, named in block.items()
    for name, body in named.items()
]
# Installed by `make setup` (scripts/setup.sh runs scripts/cluster/install-checkov.sh), never by a test.
CHECKOV = REPO / os.environ.get("CHECKOV_VENV", ".venv-checkov") / "bin" / "checkov"


def test_module_layout() -> None:
    for name in ("versions.tf", "main.tf", "variables.tf", "outputs.tf", "terraform.tfvars.example", "README.md"):
        assert (TF / name).is_file(), f"terraform/{name} is missing"
    assert (TF / "templates" / "bootstrap.sh.tftpl").is_file()


def test_every_variable_is_typed_described_and_validated() -> None:
    assert VARIABLES
    for name, body in VARIABLES.items():
        assert body.get("type"), f"variable {name} has no type"
        assert body.get("description"), f"variable {name} has no description"
        assert body.get("validation"), f"variable {name} has no validation"


def test_required_variables_come_first() -> None:
    order = list(labelled(PARSED["variables.tf"]["variable"]))
    required = [name for name, body in order if "default" not in body]
    assert required == ["name", "allowed_cidrs"]
    assert [name for name, _ in order[: len(required)]] == required


def test_allowlist_refuses_the_world() -> None:
    conditions = [v["condition"] for v in VARIABLES["allowed_cidrs"]["validation"]]
    assert any("0.0.0.0/0" in c for c in conditions)
    assert "default" not in VARIABLES["allowed_cidrs"]


def _ingress_cidrs(body: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for rule in body.get("ingress", []):
        cidrs = rule.get("cidr_blocks", [])
        found += cidrs if isinstance(cidrs, list) else [cidrs]
        ipv6 = rule.get("ipv6_cidr_blocks", [])
        found += ipv6 if isinstance(ipv6, list) else [ipv6]
    return found


def test_no_ingress_from_the_world() -> None:
    groups = [(n, b) for kind, n, b in RESOURCES if kind == "aws_security_group"]
    assert groups
    for name, body in groups:
        cidrs = _ingress_cidrs(body)
        assert "0.0.0.0/0" not in cidrs, f"security group {name} is open to the world"
        assert "::/0" not in cidrs, f"security group {name} is open to the world (IPv6)"
        for rule in body.get("ingress", []):
            assert rule.get("description"), f"{name}: ingress rule without a description"
    for kind, name, body in RESOURCES:
        if kind in {"aws_security_group_rule", "aws_vpc_security_group_ingress_rule"}:
            assert body.get("type") != "ingress" or "0.0.0.0/0" not in str(body.get("cidr_blocks")), name
            assert body.get("cidr_ipv4") != "0.0.0.0/0", name


def test_providers_are_pinned() -> None:
    [terraform] = PARSED["versions.tf"]["terraform"]
    assert terraform["required_version"]
    [providers] = terraform["required_providers"]
    assert set(providers) >= {"aws", "random", "tls"}
    for name, spec in providers.items():
        assert spec["source"].startswith("hashicorp/"), name
        assert re.fullmatch(r"~> \d+\.\d+", spec["version"]), f"{name} is not pinned: {spec['version']}"


def test_nodes_are_hardened() -> None:
    instances = [(n, b) for kind, n, b in RESOURCES if kind == "aws_instance"]
    assert {n for n, _ in instances} == {"server", "client"}
    for name, body in instances:
        [meta] = body["metadata_options"]
        assert meta["http_tokens"] == "required", f"{name}: IMDSv2 not enforced"
        [root] = body["root_block_device"]
        assert root["encrypted"] is True
        assert body["user_data"].startswith("${templatefile(")


def test_bootstrap_installs_verified_pinned_releases() -> None:
    text = (TF / "templates" / "bootstrap.sh.tftpl").read_text()
    for product in ("nomad", "consul", "vault"):
        assert f'install_release {product} "${{{product}_version}}"' in text
    assert "--verify" in text
    assert "sha256sum -c" in text
    assert "HASHICORP_FPR=" in text
    for must in ("acl {", "enabled = true", "verify_server_hostname = true", "encrypt", 'seal "awskms"'):
        assert must in text, must


def test_tfvars_example_sets_the_required_inputs() -> None:
    example = load_hcl(TF / "terraform.tfvars.example")
    assert set(example) >= {"name", "allowed_cidrs"}
    assert "0.0.0.0/0" not in example["allowed_cidrs"]


def test_readme_documents_every_input_and_output() -> None:
    readme = (TF / "README.md").read_text()
    outputs = [name for data in PARSED.values() for name, _ in labelled(data.get("output"))]
    for name in [*VARIABLES, *outputs]:
        assert f"`{name}`" in readme, f"terraform/README.md does not mention {name}"


def test_terraform_fmt() -> None:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed: formatting is checked where it is")
    result = subprocess.run([binary, "fmt", "-check", "-recursive", str(TF)], capture_output=True, text=True)
    assert result.returncode == 0, f"terraform fmt would change: {result.stdout}"


def _checkov() -> Path:
    if not CHECKOV.exists():
        pytest.skip(
            f"checkov is not installed at {CHECKOV}: `make setup` installs it (scripts/cluster/install-checkov.sh)"
        )
    return CHECKOV


def test_checkov_has_no_failed_checks_and_every_skip_has_a_reason() -> None:
    checkov = _checkov()
    result = subprocess.run(
        [str(checkov), "-d", str(TF), "--framework", "terraform", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 50
    for skipped in report["results"]["skipped_checks"]:
        reason = (skipped.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason) > 20, f"{skipped['check_id']} on {skipped['resource']} is skipped without a reason"
