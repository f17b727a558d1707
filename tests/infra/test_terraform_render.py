"""The bootstrap script as Terraform renders it, checked with real engines.

`terraform console` renders templates/bootstrap.sh.tftpl through Terraform's own templatefile()
with the variables main.tf passes (scripts/cluster/tfrender.py), for both roles and 1 or 3
servers; bash -n and shellcheck read the result; the Consul, Nomad and Vault config files it
writes are parsed and checked against the keys each product's source accepts at the pinned
release (terraform/.schema/*.json, made by scripts/cluster/agent_schema.py).
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2.utils import SerializationOptions

from scripts.cluster import agent_schema, tfrender
from scripts.cluster.jobspec import REPO, load_hcl

pytestmark = pytest.mark.infra

TF = REPO / "terraform"
TEMPLATE = TF / "templates" / "bootstrap.sh.tftpl"
EXPLICIT = SerializationOptions(
    with_comments=False, explicit_blocks=True, strip_string_quotes=True, preserve_heredocs=False
)
NODES = [
    tfrender.Node("server", server_count=3, index=0),
    tfrender.Node("server", server_count=3, index=1),
    tfrender.Node("server", server_count=1, index=0),
    tfrender.Node("client", server_count=3, index=0),
    tfrender.Node("client", server_count=1, index=2),
]
AGENT_CONFIGS = {
    "/etc/consul.d/consul.hcl": "consul",
    "/etc/nomad.d/nomad.hcl": "nomad",
    "/etc/vault.d/vault.hcl": "vault",
}
EC2_USER_DATA_LIMIT = 16 * 1024  # bytes, before base64


def node_id(node: tfrender.Node) -> str:
    return f"{node.role}{node.index}-of-{node.server_count}"


@pytest.fixture(scope="module")
def rendered() -> dict[str, tfrender.Rendered]:
    if tfrender.terraform_binary() is None:
        pytest.skip("terraform is not installed: the template is rendered with terraform console where it is")
    return {node_id(r.node): r for r in tfrender.render_many(NODES)}


def files_of(rendered: tfrender.Rendered) -> dict[str, tfrender.WrittenFile]:
    return tfrender.config_files(rendered.script)


def parse_hcl(written: tfrender.WrittenFile) -> dict[str, Any]:
    text = tfrender.shell_placeholders(written.content) if written.expands else written.content
    data: dict[str, Any] = hcl2.loads(text, serialization_options=EXPLICIT)
    return data


def body(parsed: dict[str, Any], *path: str) -> dict[str, Any]:
    """The body of the single block at ``path`` (labels as path segments)."""
    node: Any = parsed
    for key in path:
        value = node[key]
        node = value[0] if isinstance(value, list) else value
    assert isinstance(node, dict)
    return node


def ini(written: tfrender.WrittenFile) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(written.content)
    return parser


# --- the render itself ----------------------------------------------------------------------------------


def test_templatefile_gets_exactly_the_variables_the_template_uses(rendered: dict[str, tfrender.Rendered]) -> None:
    text = TEMPLATE.read_text()
    used = set(re.findall(r"(?<!\$)\$\{\s*([a-z_][a-z0-9_]*)\s*\}", text))
    for directive in re.findall(r"%\{\s*if\s+([^}~]*)", text):
        names = re.findall(r"\b([a-z_][a-z0-9_]*)\b", re.sub(r'"[^"]*"', "", directive))
        used |= set(names) - {"true", "false", "null"}
    for key, result in rendered.items():
        passed = set(result.variables)
        assert passed == used, (
            f"{key}: main.tf passes {sorted(passed - used)} unused, template needs {sorted(used - passed)}"
        )


def test_render_follows_the_role_and_the_server_count(rendered: dict[str, tfrender.Rendered]) -> None:
    server = rendered["server0-of-3"].script
    assert 'ROLE="server"' in server
    assert "bootstrap_expect = 3" in server
    assert "bootstrap_expect = 1" in rendered["server0-of-1"].script
    client = rendered["client0-of-3"].script
    assert 'ROLE="client"' in client
    assert "bootstrap_expect" not in client
    assert "vault.hcl" not in client
    assert "%{" not in server + client, "a template directive was left in the script"


@pytest.mark.parametrize("key", [node_id(n) for n in NODES])
def test_rendered_script_is_valid_bash_and_shellcheck_clean(
    rendered: dict[str, tfrender.Rendered], key: str, tmp_path: Path
) -> None:
    script = tmp_path / f"bootstrap-{key}.sh"
    script.write_text(rendered[key].script)
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (make setup installs it)")
    result = subprocess.run([shellcheck, "--shell=bash", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_user_data_fits_the_ec2_limit(rendered: dict[str, tfrender.Rendered]) -> None:
    for key, result in rendered.items():
        size = len(result.script.encode())
        assert size <= EC2_USER_DATA_LIMIT, f"{key}: user data is {size} bytes, EC2 takes {EC2_USER_DATA_LIMIT}"


# --- agent configs against the products' own key lists -------------------------------------------------


@pytest.mark.parametrize("key", [node_id(n) for n in NODES])
def test_agent_configs_use_only_keys_of_the_pinned_releases(rendered: dict[str, tfrender.Rendered], key: str) -> None:
    files = files_of(rendered[key])
    expected = {"/etc/consul.d/consul.hcl", "/etc/nomad.d/nomad.hcl"}
    if key.startswith("server"):
        expected.add("/etc/vault.d/vault.hcl")
    assert set(AGENT_CONFIGS) & set(files) == expected
    problems = []
    for path, product in AGENT_CONFIGS.items():
        if path in files:
            schema = agent_schema.load_schema(product)
            problems += [f"{path}: {p}" for p in agent_schema.check(schema, parse_hcl(files[path]))]
    assert problems == []


def test_schemas_are_for_the_deployed_versions() -> None:
    variables = {name: body for block in load_hcl(TF / "variables.tf")["variable"] for name, body in block.items()}
    for product in ("consul", "nomad", "vault"):
        data = agent_schema.load_schema(product)
        assert data.version == variables[f"{product}_version"]["default"], (
            f"terraform/.schema/{product}.json is for {data.version}; regenerate it with "
            "scripts/cluster/agent_schema.py for the version variables.tf installs"
        )


def test_schema_files_record_their_origin() -> None:
    import json

    for path in sorted((TF / ".schema").glob("*.json")):
        data = json.loads(path.read_text())
        assert re.fullmatch(r"[0-9a-f]{40}", data["commit"]), path.name
        assert data["generated_by"].startswith("python -m scripts.cluster.agent_schema --product "), path.name
        assert data["upstream"].startswith("https://github.com/hashicorp/"), path.name
        assert set(data["keys"].values()) <= set(agent_schema.KINDS), path.name
        assert len(data["keys"]) > 100, path.name


@pytest.mark.parametrize(
    ("product", "text", "problem"),
    [
        ("consul", 'acl {\n enabled = true\n}\nacl {\n tokens {\n agent = "x"\n }\n}\n', "acl: block written 2 times"),
        ("consul", "ports {\n dnss = 8600\n}\n", "ports.dnss: not a consul"),
        ("consul", "acl = true\n", "acl: a block written as a value"),
        ("nomad", 'plugin "docker" {\n config {\n volume {\n enabled = false\n }\n }\n}\n', "config.volume: not a"),
        ("nomad", "client {\n enabled = true\n}\nclient {\n enabled = true\n}\n", "client: block written 2 times"),
        ("vault", 'storage "raft" {\n path = "/a"\n}\nstorage "raft" {\n path = "/b"\n}\n', "storage: block written 2"),
        ("vault", 'storage "raft" {\n retry_join {\n auto_joinn = "x"\n }\n}\n', "retry_join.auto_joinn: not a"),
        ("vault", 'listener "tcp" {\n telemetry {\n unauthenticated = true\n }\n}\n', "telemetry.unauthenticated"),
    ],
)
def test_checker_reports_mistakes(product: str, text: str, problem: str) -> None:
    parsed = hcl2.loads(text, serialization_options=EXPLICIT)
    problems = agent_schema.check(agent_schema.load_schema(product), parsed)
    assert any(problem in p for p in problems), problems


def test_checker_accepts_what_the_products_accept() -> None:
    vault = (
        'listener "tcp" {\n address = "a:1"\n}\nlistener "tcp" {\n address = "b:2"\n}\n'
        'seal "awskms" {\n region = "x"\n}\n'
    )
    assert (
        agent_schema.check(agent_schema.load_schema("vault"), hcl2.loads(vault, serialization_options=EXPLICIT)) == []
    )
    nomad = (
        'vault {\n enabled = true\n}\nvault {\n name = "other"\n}\n'
        'plugin "docker" {\n config {\n allow_privileged = false\n }\n}\n'
    )
    assert (
        agent_schema.check(agent_schema.load_schema("nomad"), hcl2.loads(nomad, serialization_options=EXPLICIT)) == []
    )


# --- defect 2: .consul names resolve before Nomad needs vault.service.consul -----------------------------


def test_consul_domain_is_forwarded_to_the_local_agent(rendered: dict[str, tfrender.Rendered]) -> None:
    for key, result in rendered.items():
        files = files_of(result)
        dropins = [f for p, f in files.items() if p.startswith("/etc/systemd/resolved.conf.d/")]
        assert len(dropins) == 1, f"{key}: no systemd-resolved drop-in for the consul domain"
        resolve = ini(dropins[0])["Resolve"]
        host, port = resolve["DNS"].rsplit(":", 1)
        assert resolve["Domains"].split() == ["~consul"], key
        assert resolve.get("DNSSEC", "").lower() in {"false", "no"}, f"{key}: Consul answers are unsigned"
        consul = parse_hcl(files["/etc/consul.d/consul.hcl"])
        dns_port = body(consul, "ports").get("dns", 8600)
        dns_addresses = str(body(consul, "addresses").get("dns") if "addresses" in consul else consul["client_addr"])
        assert int(port) == int(dns_port), f"{key}: resolved asks port {port}, Consul DNS listens on {dns_port}"
        assert host in dns_addresses.split(), f"{key}: Consul DNS listens on {dns_addresses}, not {host}"
        vault_address = body(parse_hcl(files["/etc/nomad.d/nomad.hcl"]), "vault")["address"]
        assert re.match(r"https://[a-z0-9.-]+\.consul:\d+$", vault_address), vault_address


def test_resolver_is_in_place_before_nomad_starts(rendered: dict[str, tfrender.Rendered]) -> None:
    for key, result in rendered.items():
        lines = result.script.splitlines()

        def first(pattern: str, lines: list[str] = lines, key: str = key) -> int:
            found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
            assert found, f"{key}: nothing matches {pattern!r}"
            return found[0]

        dropin = first(r"cat > /etc/systemd/resolved.conf.d/")
        consul = first(r"systemctl enable --now consul")
        resolved = first(r"systemctl (restart|reload-or-restart) systemd-resolved")
        nomad = first(r"systemctl enable --now nomad")
        assert dropin < resolved < nomad, key
        assert consul < nomad, key
        if key.startswith("server"):
            assert first(r"systemctl enable --now vault") < nomad, key
        nomad_unit = next(line for line in lines if re.match(r"unit nomad ", line))
        assert "consul.service" in nomad_unit, f"{key}: nomad.service must be ordered after consul.service"
        assert "systemd-resolved.service" in files_of(result)["/etc/systemd/system/$name.service"].content


def test_ami_resolver_accepts_a_port_in_dns() -> None:
    # DNS=ip:port in resolved.conf needs systemd >= 246 (Ubuntu 20.10 on): jammy has 249, noble 255.
    systemd_of = {"jammy": 249, "noble": 255}
    [ami] = [
        b
        for block in load_hcl(TF / "main.tf")["data"]
        for k, named in block.items()
        if k == "aws_ami"
        for b in named.values()
    ]
    name_filter = next(f for f in ami["filter"] if f["name"] == "name")["values"][0]
    release = next((r for r in systemd_of if f"-{r}-" in name_filter), None)
    assert release is not None, f"unknown AMI {name_filter}: check its systemd-resolved accepts DNS=host:port"
    assert systemd_of[release] >= 246


# --- defect 3: Vault verifies Nomad's JWKS over loopback -------------------------------------------------


def test_nomad_jwks_url_is_covered_by_the_server_certificate(rendered: dict[str, tfrender.Rendered]) -> None:
    main = load_hcl(TF / "main.tf")
    locals_ = {k: v for block in main["locals"] for k, v in block.items()}
    url = locals_["nomad_jwks_url"]
    match = re.fullmatch(r"https://([0-9.]+):(\d+)(/.*)", url)
    assert match, url
    host, port, path = match.groups()
    assert path == "/.well-known/jwks.json"
    server = locals_["tls_roles"]["server"]
    assert re.search(rf'"{re.escape(host)}"', str(server["ips"])), f"{host} is not an IP SAN of the server certificate"
    nomad = parse_hcl(files_of(rendered["server0-of-3"])["/etc/nomad.d/nomad.hcl"])
    assert int(port) == int(body(nomad, "ports").get("http", 4646) if "ports" in nomad else 4646)
    assert body(nomad, "tls")["http"] is True, "the JWKS URL is https: Nomad must serve TLS on HTTP"
    assert nomad["bind_addr"] in {"0.0.0.0", host}, "Nomad must listen on the loopback address Vault dials"
    vault_host = re.sub(r"https://([^:/]+).*", r"\1", body(nomad, "vault")["address"])
    assert vault_host in server["dns"], "Nomad's vault address must be a SAN of Vault's certificate"


def test_nomad_jwks_url_is_an_output_and_documented() -> None:
    outputs = {name: b for block in load_hcl(TF / "outputs.tf")["output"] for name, b in block.items()}
    assert outputs["nomad_jwks_url"]["value"] == "${local.nomad_jwks_url}"
    assert "FIREDRILL_NOMAD_JWKS_URL" in outputs["env"]["value"]
    for doc in (TF / "README.md", REPO / "docs" / "cluster.md"):
        text = doc.read_text()
        assert "nomad_jwks_url" in text, doc
        assert "FIREDRILL_NOMAD_JWKS_URL" in text, doc


# --- defect 4: the Terraform version constraint matches the language features used ----------------------


def _lower_bound(constraint: str) -> tuple[int, ...]:
    match = re.search(r">=\s*(\d+)\.(\d+)\.(\d+)", constraint)
    assert match, constraint
    return tuple(int(g) for g in match.groups())


# (feature in the *.tf files, first Terraform version that has it, where that is recorded)
FEATURES = [
    (r"\bnonsensitive\(", (1, 7, 0), "CHANGELOG 1.7.0: nonsensitive no longer errors on non-sensitive values (#33856)"),
    (r"\bissensitive\(", (1, 8, 0), "CHANGELOG 1.8.0: issensitive added"),
    (r"provider::", (1, 8, 0), "CHANGELOG 1.8.0: provider-defined functions"),
    (r"\btemplatestring\(", (1, 9, 0), "CHANGELOG 1.9.0: templatestring added"),
    (r"^\s*removed\s*\{", (1, 7, 0), "CHANGELOG 1.7.0: removed blocks"),
    (r"^\s*import\s*\{[^}]*for_each", (1, 7, 0), "CHANGELOG 1.7.0: for_each in import blocks"),
    (r"\bephemeral\s", (1, 10, 0), "CHANGELOG 1.10.0: ephemeral values"),
]


def test_required_version_covers_the_features_used() -> None:
    [terraform] = load_hcl(TF / "versions.tf")["terraform"]
    lower = _lower_bound(terraform["required_version"])
    text = "\n".join(p.read_text() for p in sorted(TF.glob("*.tf")))
    for pattern, needs, why in FEATURES:
        if re.search(pattern, text, re.M):
            assert lower >= needs, f"required_version allows {lower}, but {why}"


def test_nonsensitive_is_applied_to_a_value_that_is_not_sensitive() -> None:
    """Why 1.7: the keys of a map with sensitive values are not sensitive, so nonsensitive() on them is
    redundant, which Terraform < 1.7 rejects. Asked of the installed Terraform."""
    if tfrender.terraform_binary() is None:
        pytest.skip("terraform is not installed")
    assert "nonsensitive(toset(keys(local.ssm_secrets)))" in (TF / "main.tf").read_text()
    printed = tfrender.console('issensitive(toset(keys(merge({a = sensitive("x")}, {b = "y"}))))')
    assert printed == "false"


# --- more defects of the same kind: first boot, scraping, ordering, ACL bootstrap ------------------------


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for block in load_hcl(TF / "main.tf")["resource"]:
        found.update(block.get(kind, {}))
    return found


def test_servers_boot_with_their_elastic_ip_and_a_route() -> None:
    server = _resources("aws_instance")["server"]
    client = _resources("aws_instance")["client"]
    [association] = _resources("aws_eip_association").values()
    assert "instance_id" not in association, "an EIP associated to the instance arrives after boot"
    assert "network_interface_id" in association, "associate the EIP with the server's ENI before launch"
    [interface] = server["network_interface"]
    assert "aws_network_interface.server" in interface["network_interface_id"]
    assert "private_ip" not in server
    assert "subnet_id" not in server
    assert any("aws_eip_association.server" in d for d in server["depends_on"])
    for name, instance in (("server", server), ("client", client)):
        assert any("aws_route_table_association.public" in d for d in instance["depends_on"]), (
            f"{name} may boot before its subnet routes to the internet gateway"
        )
    assert client["associate_public_ip_address"] is True
    [eip] = _resources("aws_eip").values()
    assert any("aws_internet_gateway" in d for d in eip["depends_on"])


def _egress() -> list[dict[str, Any]]:
    [cluster] = _resources("aws_security_group").values()
    rules: list[dict[str, Any]] = cluster["egress"]
    return rules


def test_everything_bootstrap_downloads_is_reachable(rendered: dict[str, tfrender.Rendered]) -> None:
    open_ports = {
        (r["protocol"], p)
        for r in _egress()
        if "0.0.0.0/0" in r.get("cidr_blocks", [])
        for p in range(r["from_port"], r["to_port"] + 1)
    }
    for key, result in rendered.items():
        for scheme in set(re.findall(r"\b(https?)://(?!169\.254\.)", result.script)):
            assert ("tcp", 443 if scheme == "https" else 80) in open_ports, f"{key}: {scheme} downloads blocked"
    assert ("tcp", 80) in open_ports, "apt mirrors of the Ubuntu AMI are plain HTTP (signed)"
    dns = {r["protocol"] for r in _egress() if r["from_port"] == 53}
    assert dns == {"udp", "tcp"}, "DNS falls back to TCP for large answers"
    assert not any(
        r["from_port"] <= 123 <= r["to_port"] and r["protocol"] in {"udp", "-1"}
        for r in _egress()
        if "0.0.0.0/0" in r.get("cidr_blocks", [])
    )
    for key, result in rendered.items():
        files = files_of(result)
        assert "NTP=$AWS_NTP" in files["/etc/systemd/timesyncd.conf.d/aws-time-sync.conf"].content, key
        assert 'AWS_NTP="169.254.169.123"' in result.script, f"{key}: no NTP egress, so the link-local Amazon Time Sync"


def test_first_boot_waits_instead_of_failing(rendered: dict[str, tfrender.Rendered]) -> None:
    for key, result in rendered.items():
        script = result.script
        assert "DPkg::Lock::Timeout=" in script, f"{key}: apt must wait for unattended-upgrades' lock"
        assert re.search(r"^retry \d+ apt_get update", script, re.M), key
        assert "--retry-all-errors" in script, f"{key}: downloads must retry"
        assert "hostname -I" not in script, f"{key}: the private IP comes from IMDS, not hostname -I's order"
        assert "GNUPGHOME=" in script, f"{key}: gpg must not depend on HOME under cloud-init"


def test_prometheus_can_scrape_the_agents(rendered: dict[str, tfrender.Rendered]) -> None:
    [cluster] = _resources("aws_security_group").values()
    self_rules = [r for r in cluster["ingress"] if r.get("self") is True]
    assert any(r["protocol"] == "-1" for r in self_rules), "nodes must reach each other's dynamic ports"
    server = files_of(rendered["server0-of-3"])
    consul = parse_hcl(server["/etc/consul.d/consul.hcl"])
    assert "shell-PRIVATE_IP" in consul["client_addr"].split(), "Consul's HTTP port must be reachable from other nodes"
    assert body(consul, "telemetry")["prometheus_retention_time"]
    anonymous = re.search(r"policy firedrill-anonymous-read '([^']*)'", rendered["server0-of-3"].script)
    assert anonymous is not None
    assert 'agent_prefix "" { policy = "read" }' in anonymous.group(1), (
        "/v1/agent/metrics needs agent:read and Prometheus scrapes without a token"
    )
    vault = parse_hcl(server["/etc/vault.d/vault.hcl"])
    assert body(vault, "listener", "tcp", "telemetry")["unauthenticated_metrics_access"] is True
    assert body(vault, "telemetry")["prometheus_retention_time"]
    nomad = parse_hcl(server["/etc/nomad.d/nomad.hcl"])
    assert body(nomad, "telemetry")["prometheus_metrics"] is True


def test_prometheus_scrapes_nomad_over_https() -> None:
    import yaml

    config = yaml.safe_load((REPO / "prometheus" / "generated" / "production" / "prometheus-consul.yml").read_text())
    # Nomad serves its API (and /v1/metrics) only over HTTPS (tls.http = true).
    jobs = [j for j in config["scrape_configs"] if j["job_name"].startswith("nomad")]
    assert len(jobs) == 2, "Nomad servers and clients"
    for job in jobs:
        assert job.get("scheme") == "https"
        assert "ca_file" in job.get("tls_config", {})


def test_acl_and_vault_bootstrap_run_once(rendered: dict[str, tfrender.Rendered]) -> None:
    for key, result in rendered.items():
        once = key.startswith("server0-")
        for command in ("nomad acl bootstrap", "vault operator init", "consul acl policy create"):
            assert (command in result.script) == once, f"{key}: {command} must run on server 0 only"
        if key.startswith("server"):
            consul = parse_hcl(files_of(result)["/etc/consul.d/consul.hcl"])
            assert body(consul, "acl", "tokens")["initial_management"] == "shell-MGMT", (
                f"{key}: every server carries the same initial management token, so any leader bootstraps it"
            )
    script = rendered["server0-of-3"].script
    assert "wait_for 600 nomad_acl_bootstrap" in script, "Nomad's bootstrap must retry until a leader accepts it"


def test_docker_driver_keeps_its_safe_defaults(rendered: dict[str, tfrender.Rendered]) -> None:
    nomad = parse_hcl(files_of(rendered["client0-of-3"])["/etc/nomad.d/nomad.hcl"])
    docker = body(nomad, "plugin", "docker", "config")
    assert docker.get("allow_privileged", False) is False
    assert body(docker, "volumes")["enabled"] is False
    assert "client" not in parse_hcl(files_of(rendered["server0-of-3"])["/etc/nomad.d/nomad.hcl"])


def test_every_host_volume_a_job_mounts_is_declared_on_the_clients(rendered: dict[str, tfrender.Rendered]) -> None:
    from scripts.cluster.jobspec import job_files, labelled, read_job

    wanted = {
        body["source"]
        for path in job_files().values()
        for group in read_job(path).groups.values()
        for _name, body in labelled(group.get("volume"))
        if body.get("type") == "host"
    }
    assert wanted, "the monitoring job mounts the cluster CA from a host volume"
    for key, result in rendered.items():
        if not key.startswith("client"):
            continue
        client = body(parse_hcl(files_of(result)["/etc/nomad.d/nomad.hcl"]), "client")
        declared = {name.strip('"'): spec for name, spec in _host_volumes(client)}
        assert wanted <= set(declared), f"{key}: a job asks for a host volume no client declares"
        for name in wanted:
            # The bootstrap must create the directory the volume points at, or the client refuses to start.
            assert f"install -d -m 0755 {declared[name]['path']}" in result.script, name


def _host_volumes(client: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in client.get("host_volume", []):
        for name, spec in block.items():
            out.append((name, spec[0] if isinstance(spec, list) else spec))
    return out
