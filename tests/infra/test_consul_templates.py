"""Every Nomad template that reads Consul, rendered by Go's text/template in every discovery state.

Nomad renders ``template {}`` blocks with consul-template (Go's text/template plus ``service``,
``key``, ``secret``, ``env``...). Consul and Nomad cannot run here and OpenBao's agent has no Consul
functions, so ``tests/infra/gotemplate`` — our own small Go program, standard library only — parses
and executes a template exactly as consul-template does (the block's delimiters, missingkey=zero,
consul-template's function names: an unknown one is a parse error) against a JSON *world* standing
in for Consul and Vault. It is built once per session.

Each job template whose actions call a Consul function (including ``dynamic "template"`` blocks fed
from a map variable's default) is taken from jobs/*.nomad.hcl as Nomad would see it: HCL's
``${var.X}`` replaced by the variable's default, Nomad runtime variables (``${NOMAD_...}``,
``${attr...}``) left as they are, anything else refused. It is rendered in three states:

* ``registered``: every service any job declares has two passing instances, with the ports and
  ``meta`` (``otlp_port``, ``metrics_port``...) its job block gives it;
* ``absent``: Consul knows none of them (a health query answers an empty list);
* ``unhealthy``: registered but with failing checks — the state right after Nomad places a task —
  which must render exactly like ``absent`` (``service`` returns passing instances only).

Then what reads each file checks it: ``amtool check-config`` and a real Alertmanager for
alertmanager.yml, the collector's pipelines, Grafana's datasources, and Nomad's env-file parser
(hashicorp/go-envparse, mirrored below) for ``env = true`` templates. Negative tests prove the
checks catch the historical defect (a webhook URL of ``/alerts`` when incidents is absent).

Known gap: python-hcl2 drops the final newline of a heredoc, which Nomad keeps; no reader checked
here cares about a file's last newline.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scripts.cluster.consul_template import CONSUL_FUNCTIONS
from scripts.cluster.hcl_strings import HclEvalError, HclScope
from scripts.cluster.jobspec import JobFile, job_files, labelled, read_job
from scripts.processes import spawn
from services.common import catalog
from services.common.waiting import TimedOut, wait_until
from tests.conftest import require_binary

pytestmark = pytest.mark.infra

GOTEMPLATE_SRC = Path(__file__).resolve().parent / "gotemplate"

STATES = ("registered", "absent", "unhealthy")
# Two Nomad clients on TEST-NET-1 (RFC 5737) documentation addresses: nothing here connects to them.
NODES = (("nomad-client-1", "192.0.2.10"), ("nomad-client-2", "192.0.2.11"))
FIRST_DYNAMIC_PORT = 21000
PORTS_PER_NODE = 1000  # the second node's ports sit this far above the first's, so a test can tell them apart


class JobTemplateError(Exception):
    """A job template this test cannot take as Nomad would (a for_each or a source it does not evaluate)."""


# --- HCL: what Nomad's job parser makes of a template block ---------------------------------------------


def resolve_hcl(text: str, where: str, variables: Mapping[str, Any], bindings: Mapping[str, str] | None = None) -> str:
    """A python-hcl2 string as Nomad's HCL parser leaves it (``scripts.cluster.hcl_strings``)."""
    return HclScope(variables, {}, bindings or {}).evaluate(text, where)


def _unescape_default(value: Any, where: str) -> Any:
    """A variable default with HCL's escapes resolved (a default cannot interpolate anything)."""
    if isinstance(value, str):
        return resolve_hcl(value, where, {})
    if isinstance(value, list):
        return [_unescape_default(v, where) for v in value]
    if isinstance(value, dict):
        return {k: _unescape_default(v, f"{where}[{k}]") for k, v in value.items()}
    return value


def variable_defaults(job: JobFile) -> dict[str, Any]:
    return {
        name: _unescape_default(decl["default"], f"{job.name}: variable {name}")
        for name, decl in job.variables.items()
        if "default" in decl
    }


FOR_EACH_VARIABLE = re.compile(r"\$\{var\.(\w+)\}")
FOR_EACH_FILTER = re.compile(
    r"\$\{\{\s*for\s+(\w+)\s*,\s*(\w+)\s+in\s+var\.(\w+)\s*:\s*(\w+)\s*=>\s*(\w+)"
    r'(?:\s+if\s+(\w+)\s*(==|!=)\s*"([^"\\]*)")?\s*\}\}'
)


def _for_each(raw: Any, variables: Mapping[str, Any], where: str) -> dict[str, str]:
    """The map a dynamic block iterates: ``var.X`` or ``{for k, v in var.X : k => v if k ==|!= "lit"}``."""
    text = str(raw)
    simple = FOR_EACH_VARIABLE.fullmatch(text)
    filtered = FOR_EACH_FILTER.fullmatch(text)
    name = simple.group(1) if simple else filtered.group(3) if filtered else None
    if name is None:
        raise JobTemplateError(f"{where}: dynamic template for_each {text!r} is not evaluated here")
    source = variables.get(name)
    if not isinstance(source, dict):
        raise JobTemplateError(f"{where}: for_each over var.{name}, whose default is not a map")
    if simple:
        return {str(k): str(v) for k, v in source.items()}
    assert filtered is not None
    key, value, _, out_key, out_value, tested, operator, literal = filtered.groups()
    if (out_key, out_value) != (key, value) or (tested is not None and tested not in (key, value)):
        raise JobTemplateError(f"{where}: dynamic template for_each {text!r} is not evaluated here")
    chosen = {}
    for k, v in source.items():
        subject = str(k) if tested == key else str(v)
        if tested is None or (subject == literal) == (operator == "=="):
            chosen[str(k)] = str(v)
    return chosen


@dataclass(frozen=True)
class JobTemplate:
    job: str
    group: str
    task: str
    destination: str
    data: str
    left: str
    right: str
    env: bool

    @property
    def name(self) -> str:
        return f"{self.job}/{self.task}:{self.destination}"


def _template(
    job: JobFile,
    group: str,
    task: str,
    block: Mapping[str, Any],
    variables: Mapping[str, Any],
    bindings: Mapping[str, str],
) -> JobTemplate:
    where = f"{job.name}/{task}"
    destination = resolve_hcl(str(block.get("destination", "")), where, variables, bindings)
    where = f"{where}:{destination}"
    if "data" not in block:
        raise JobTemplateError(f"{where}: a template without data (source/artifact) cannot be rendered here")
    return JobTemplate(
        job=job.name,
        group=group,
        task=task,
        destination=destination,
        data=resolve_hcl(str(block["data"]), where, variables, bindings),
        left=resolve_hcl(str(block.get("left_delimiter", "{{")), where, variables, bindings),
        right=resolve_hcl(str(block.get("right_delimiter", "}}")), where, variables, bindings),
        env=block.get("env") in (True, "true"),
    )


def job_templates(job: JobFile) -> Iterator[JobTemplate]:
    """Every template of every task, dynamic ones expanded over their for_each default."""
    variables = variable_defaults(job)
    for group, task_name, task in job.tasks():
        for block in task.get("template", []):
            yield _template(job, group, task_name, block, variables, {})
        for dynamic in task.get("dynamic", []):
            for label, body in dynamic.items():
                if label.strip('"') != "template":
                    continue
                iterator = str(body.get("iterator", "template"))
                for key, value in _for_each(body.get("for_each"), variables, f"{job.name}/{task_name}").items():
                    bindings = {f"{iterator}.key": key, f"{iterator}.value": value}
                    for content in body.get("content", []):
                        yield _template(job, group, task_name, content, variables, bindings)


STRING_LITERAL = re.compile(r'"(?:\\.|[^"\\])*"|`[^`]*`')
CONSUL_CALL = re.compile(r"(?<![\w.$])(?:" + "|".join(sorted(CONSUL_FUNCTIONS)) + r")(?![\w])")


def mentions_consul(template: JobTemplate) -> bool:
    """Whether an action of the template names a Consul function (the Go parser confirms it)."""
    actions = re.findall(re.escape(template.left) + r"(.*?)" + re.escape(template.right), template.data, re.S)
    return any(CONSUL_CALL.search(STRING_LITERAL.sub('""', action)) for action in actions)


JOBS = {name: read_job(path) for name, path in job_files().items()}
TEMPLATES = [template for job in JOBS.values() for template in job_templates(job)]
CONSUL_TEMPLATES = [t for t in TEMPLATES if mentions_consul(t)]


def find_template(job: str, destination: str) -> JobTemplate:
    for template in TEMPLATES:
        if template.job == job and template.destination == destination:
            return template
    raise AssertionError(f"jobs/{job}.nomad.hcl has no template rendering {destination}")


# --- the Nomad side: ports, task environment, service registrations --------------------------------------


def _port_plan() -> dict[tuple[str, str], dict[str, tuple[int, int | None, bool]]]:
    """(job, group) -> port label -> (host port on the first node, ``to`` port inside the task, static)."""
    plan: dict[tuple[str, str], dict[str, tuple[int, int | None, bool]]] = {}
    next_port = FIRST_DYNAMIC_PORT
    for job in JOBS.values():
        for group_name, group in job.groups.items():
            ports: dict[str, tuple[int, int | None, bool]] = {}
            for network in group.get("network", []):
                for block in network.get("port", []):
                    for label, body in block.items():
                        static = (body or {}).get("static")
                        to = (body or {}).get("to")
                        if static:
                            host = int(static)
                        else:
                            host, next_port = next_port, next_port + 1
                        ports[label.strip('"')] = (host, int(to) if to else None, bool(static))
            plan[(job.name, group_name)] = ports
    return plan


PORTS = _port_plan()


def _runtime(text: str, env: Mapping[str, str], node_ip: str) -> str:
    """Nomad's run-time interpolation of task env values and service meta."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in env:
            return env[name]
        if name == "attr.unique.network.ip-address":
            return node_ip
        return match.group(0)

    return re.sub(r"\$\{([^}]+)\}", value, text)


def node_env(job: str, group: str, node: int) -> dict[str, str]:
    """The NOMAD_* variables of an allocation of ``group`` on node ``node``."""
    ip = NODES[node][1]
    env = {
        "NOMAD_JOB_NAME": job,
        "NOMAD_JOB_ID": job,
        "NOMAD_GROUP_NAME": group,
        "NOMAD_ALLOC_INDEX": str(node),
        "NOMAD_ALLOC_NAME": f"{job}.{group}[{node}]",
        "NOMAD_ALLOC_ID": f"0000000{node}-0000-4000-8000-000000000000",
        "NOMAD_DC": "dc1",
        "NOMAD_REGION": "global",
        "NOMAD_NAMESPACE": "default",
    }
    # The task directories as templates see them (Nomad makes them relative inside containers).
    env |= {f"NOMAD_{kind}_DIR": path for kind, path in (("ALLOC", "alloc"), ("TASK", "local"), ("SECRETS", "secrets"))}
    for label, (first_host, to, static) in PORTS[(job, group)].items():
        host = first_host if static else first_host + node * PORTS_PER_NODE
        inside = to or host
        env |= {
            f"NOMAD_IP_{label}": ip,
            f"NOMAD_HOST_IP_{label}": ip,
            f"NOMAD_PORT_{label}": str(inside),
            f"NOMAD_HOST_PORT_{label}": str(host),
            f"NOMAD_ADDR_{label}": f"{ip}:{inside}",
            f"NOMAD_HOST_ADDR_{label}": f"{ip}:{host}",
        }
    return env


def task_env(template: JobTemplate) -> dict[str, str]:
    """The environment the template runner sees: the task's, and nothing of this process's."""
    job = JOBS[template.job]
    env = node_env(template.job, template.group, 0) | {"NOMAD_TASK_NAME": template.task}
    variables = variable_defaults(job)
    task = dict(labelled(job.groups[template.group].get("task")))[template.task]
    for block in task.get("env", []):
        for key, raw in block.items():
            text = resolve_hcl(str(raw), f"{template.job}/{template.task}: env {key}", variables)
            env[key] = _runtime(text, env, NODES[0][1])
    return env


@dataclass(frozen=True)
class Registration:
    job: str
    group: str
    service: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.service["name"])


REGISTRATIONS = [Registration(job.name, group, service) for job in JOBS.values() for group, service in job.services()]
DECLARED_SERVICES = {r.name for r in REGISTRATIONS}


def instances(status: str) -> dict[str, list[dict[str, Any]]]:
    """Consul's health entries for every service the jobs declare, one instance per node."""
    services: dict[str, list[dict[str, Any]]] = {}
    for reg in REGISTRATIONS:
        variables = variable_defaults(JOBS[reg.job])
        where = f"{reg.job}/{reg.group}: service {reg.name}"
        for index, (node, ip) in enumerate(NODES):
            env = node_env(reg.job, reg.group, index)
            port_label = str(reg.service.get("port", "0"))
            port = int(port_label) if port_label.isdigit() else int(env[f"NOMAD_HOST_PORT_{port_label}"])
            meta: dict[str, str] = {}
            for block in reg.service.get("meta", []):
                meta |= {k: _runtime(resolve_hcl(str(v), where, variables), env, ip) for k, v in block.items()}
            tags = [resolve_hcl(str(tag), where, variables) for tag in reg.service.get("tags", [])]
            services.setdefault(reg.name, []).append(
                {
                    "Node": node,
                    "NodeAddress": ip,
                    "Address": ip,
                    "Port": port,
                    "ID": f"_nomad-task-{env['NOMAD_ALLOC_ID']}-{reg.group}-{reg.name}-{port_label}",
                    "Name": reg.name,
                    "Tags": tags,
                    "ServiceMeta": meta,
                    "Status": status,
                }
            )
    return services


# --- Vault: certificates and KV data the world answers with ----------------------------------------------


def _certificates(paths: list[str]) -> dict[str, dict[str, Any]]:
    """A real CA and, per PKI issue path, a certificate from it (an Alertmanager loads them)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "firedrill test intermediate")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=72))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    issued: dict[str, dict[str, Any]] = {}
    for path in paths:
        role = path.rsplit("/", 1)[-1]
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{role}.service.consul")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=72))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName(role),
                        x509.DNSName(f"{role}.service.consul"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        issued[path] = {
            "certificate": cert.public_bytes(serialization.Encoding.PEM).decode().strip(),
            "private_key": key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            .decode()
            .strip(),
            "issuing_ca": ca_pem.strip(),
            "ca_chain": [ca_pem.strip()],
            "serial_number": format(cert.serial_number, "x"),
            "expiration": int(cert.not_valid_after_utc.timestamp()),
        }
    return issued


def world_secrets(paths: list[str]) -> dict[str, dict[str, Any]]:
    secrets: dict[str, dict[str, Any]] = _certificates([p for p in paths if "/issue/" in p])
    for path in paths:
        if path in secrets:
            continue
        if "/data/" in path:  # KV version 2: the payload sits under data
            secrets[path] = {"data": {"value": f"test value of {path}"}, "metadata": {"version": 1}}
        else:
            secrets[path] = {"value": f"test value of {path}"}
    return secrets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ttl=${var.cert_ttl} port=${NOMAD_PORT_http}", "ttl=72h port=${NOMAD_PORT_http}"),
        ("ip=${attr.unique.network.ip-address} n=${var.count}", "ip=${attr.unique.network.ip-address} n=2"),
        ("$${NOMAD_PORT_http} %%{ if } {{ $labels.x }}", "${NOMAD_PORT_http} %{ if } {{ $labels.x }}"),
        ('${replace(template.key, "/", "-")}', "a-b.json"),
        ('v=${regex_replace(var.image, "^.*:([a-z0-9.]+)$", "$1")}', "v=0.1.0"),
        ('${regex_replace(var.image, "([0-9])", "<${1}>")}', "firedrill/services:<0>.<1>.<0>"),
    ],
)
def test_hcl_interpolations_resolve_as_nomad_would(text: str, expected: str) -> None:
    variables = {"cert_ttl": "72h", "count": 2, "image": "firedrill/services:0.1.0"}
    assert resolve_hcl(text, "test", variables, {"template.key": "a/b.json"}) == expected


@pytest.mark.parametrize(
    "text",
    [
        "${local.x}",
        "${upper(var.cert_ttl)}",
        "${var.nowhere}",
        "%{ if true }x%{ endif }",
        "${var.list}",
        "${x",
        '${regex_replace(var.cert_ttl, "h", "$name")}',
    ],
)
def test_hcl_interpolations_not_evaluated_here_fail_loudly(text: str) -> None:
    with pytest.raises(HclEvalError):
        resolve_hcl(text, "test", {"cert_ttl": "72h", "list": ["a"]})


def test_dynamic_templates_expand_over_their_for_each_default() -> None:
    files = variable_defaults(JOBS["monitoring"])["alertmanager_files"]
    rendered = {t.destination: t for t in TEMPLATES if (t.job, t.task) == ("monitoring", "alertmanager")}
    for path, body in files.items():
        template = rendered[f"local/alertmanager/{path}"]
        assert template.data == body
        delimiters = (
            ("[[", "]]") if path == "alertmanager.yml" else ("<<FIREDRILL-VERBATIM<<", ">>FIREDRILL-VERBATIM>>")
        )
        assert (template.left, template.right) == delimiters, path


# --- the renderer ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inspection:
    functions: frozenset[str]
    lookups: dict[str, list[str]]
    dynamic: list[str]

    @property
    def consul(self) -> bool:
        return bool(self.functions & CONSUL_FUNCTIONS)

    def services(self) -> set[str]:
        """Service names of the ``service`` queries ("tag.name@dc|filter" -> name)."""
        names = set()
        for query in self.lookups.get("service", []) + self.lookups.get("connect", []):
            head = re.split(r"[?@~|]", query, maxsplit=1)[0]
            names.add(head.rsplit(".", 1)[-1])
        return names


@dataclass(frozen=True)
class Rendered:
    returncode: int
    output: str
    error: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Renderer:
    """The built gotemplate binary, the worlds, and memoised renders of this session."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self._inspections: dict[JobTemplate, Inspection] = {}
        self._renders: dict[tuple[JobTemplate, str], Rendered] = {}
        self.worlds: dict[str, Path] = {}
        self.world_data: dict[str, dict[str, Any]] = {}

    def run(
        self, command: str, data: str, left: str, right: str, *, world: Path | None, env: Mapping[str, str]
    ) -> Rendered:
        args = [str(self.binary), command, f"-left={left}", f"-right={right}"]
        if world is not None:
            args.append(f"-world={world}")
        done = subprocess.run(
            [*args, "-"], input=data, env=dict(env), capture_output=True, text=True, encoding="utf-8", timeout=60
        )
        return Rendered(done.returncode, done.stdout, done.stderr.strip())

    def inspect(self, template: JobTemplate) -> Inspection:
        if template not in self._inspections:
            done = self.run("inspect", template.data, template.left, template.right, world=None, env={})
            if not done.ok:
                raise AssertionError(f"{template.name}: consul-template would refuse it: {done.error}")
            report = json.loads(done.output)
            self._inspections[template] = Inspection(
                frozenset(report["functions"]), report["lookups"], report["dynamic"]
            )
        return self._inspections[template]

    def make_worlds(self) -> None:
        paths = sorted({p for t in TEMPLATES for p in self.inspect(t).lookups.get("secret", [])})
        secrets = world_secrets(paths)
        for state, services in (
            ("registered", instances("passing")),
            ("absent", {}),
            ("unhealthy", instances("critical")),
        ):
            world = {"services": services, "kv": {}, "secrets": secrets}
            path = self.workdir / f"world-{state}.json"
            path.write_text(json.dumps(world, indent=1))
            self.worlds[state] = path
            self.world_data[state] = world

    def render_text(self, template: JobTemplate, data: str, state: str) -> Rendered:
        return self.run("render", data, template.left, template.right, world=self.worlds[state], env=task_env(template))

    def render(self, template: JobTemplate, state: str) -> Rendered:
        key = (template, state)
        if key not in self._renders:
            self._renders[key] = self.render_text(template, template.data, state)
        return self._renders[key]

    def rendered(self, template: JobTemplate, state: str) -> str:
        result = self.render(template, state)
        assert result.ok, f"{template.name} [{state}] does not render (exit {result.returncode}): {result.error}"
        return result.output

    def first(self, service: str) -> dict[str, Any]:
        """The instance ``with index (service NAME) 0`` picks when registered (by node, then ID)."""
        entries: list[dict[str, Any]] = self.world_data["registered"]["services"][service]
        return sorted(entries, key=lambda e: (e["Node"], e["ID"]))[0]


@pytest.fixture(scope="session")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    go = shutil.which("go")
    if go is None:
        pytest.skip(
            "go is not installed: the consul-template renderer (tests/infra/gotemplate) is built with it; "
            "`bash scripts/setup.sh` installs Debian's golang-go"
        )
    workdir = tmp_path_factory.mktemp("gotemplate")
    binary = workdir / "gotemplate"
    env = dict(os.environ) | {"CGO_ENABLED": "0", "GOPROXY": "off", "GOFLAGS": "", "GOWORK": "off"}
    if not {"GOCACHE", "HOME", "XDG_CACHE_HOME"} & set(os.environ):
        env["GOCACHE"] = str(workdir / "gocache")
    done = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=GOTEMPLATE_SRC,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, f"go build of {GOTEMPLATE_SRC} failed:\n{done.stdout}{done.stderr}"
    built = Renderer(binary, workdir)
    built.make_worlds()
    return built


# --- Nomad's env-file parser ----------------------------------------------------------------------------


class EnvParseError(ValueError):
    pass


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "r": "\r", "n": "\n", "t": "\t"}


def _env_value(value: str) -> str:
    """One value the way go-envparse reads it: quotes, JSON escapes, ``#`` comments."""
    out: list[str] = []
    last_significant = 0
    mode = "normal"
    i = 0
    while i < len(value):
        char = value[i]
        if ord(char) < 32:
            raise EnvParseError(f"0x{ord(char):02x} is an invalid value character")
        if mode == "normal":
            if char == '"':
                mode = "double"
            elif char == "'":
                mode = "single"
            elif char == "#":
                return "".join(out[:last_significant])
            else:
                out.append(char)
                if char not in " \t":
                    last_significant = len(out)
        elif mode == "double":
            if char == '"':
                mode = "normal"
            elif char == "\\":
                mode = "escape"
            else:
                out.append(char)
                last_significant = len(out)
        elif mode == "single":
            if char == "'":
                mode = "normal"
            else:
                out.append(char)
                last_significant = len(out)
        else:  # escape
            if char == "u":
                digits = value[i + 1 : i + 5]
                if len(digits) < 4 or not re.fullmatch(r"[0-9A-Fa-f]{4}", digits):
                    raise EnvParseError("incomplete or invalid hex sequence")
                out.append(chr(int(digits, 16)))
                i += 4
            elif char in _ESCAPES:
                out.append(_ESCAPES[char])
            elif ord(char) > 127:
                raise EnvParseError("multibyte characters disallowed in escape sequences")
            else:
                raise EnvParseError(f"invalid escape sequence: {char!r}")
            last_significant = len(out)
            mode = "double"
        i += 1
    if mode != "normal":
        raise EnvParseError({"double": 'unmatched "', "single": "unmatched '", "escape": "incomplete escape"}[mode])
    return "".join(out)


def parse_env_file(text: str) -> dict[str, str]:
    """What Nomad sets from an ``env = true`` template (loadTemplateEnv -> go-envparse's Parse).

    Blank and ``#`` lines are skipped; other lines are ``[export ]KEY=value`` with KEY matching
    ``[A-Za-z_][A-Za-z0-9_./]*``; a value may be quoted; an empty value sets nothing. Anything else
    is an error, and Nomad kills the task ("Template failed to read environment variables").
    """
    env: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if len(raw.encode()) > 64 * 1024:
            raise EnvParseError(f"line {number}: longer than bufio.Scanner's 64 KiB token")
        line = raw.strip(" \t\r\n\v\f")
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise EnvParseError(f"error on line {number}: missing =")
        key, value = (part.strip(" \t\r\n\v\f") for part in line.split("=", 1))
        if len(key) > len("export "):
            key = key.removeprefix("export ")
        if not key:
            raise EnvParseError(f"error on line {number}: empty key")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./]*", key):
            raise EnvParseError(f"error on line {number}: key {key!r} is not [A-Za-z_][A-Za-z0-9_./]*")
        try:
            parsed = _env_value(value)
        except EnvParseError as exc:
            raise EnvParseError(f"error on line {number}: {exc}") from None
        if parsed:
            env[key] = parsed
    return env


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("\n# comment\n\n", {}),
        ("A=b\n", {"A": "b"}),
        ("export A = b c  # note\n", {"A": "b c"}),
        ("A=\n", {}),  # an empty value sets nothing
        ("A=\"x\\ny\"\nB='q # r'\n", {"A": "x\ny", "B": "q # r"}),
        ("a.b/c_1=v", {"a.b/c_1": "v"}),
    ],
)
def test_env_parser_accepts_what_nomad_accepts(text: str, expected: dict[str, str]) -> None:
    assert parse_env_file(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:4317\n",  # a bare value: missing =
        "=value\n",
        "1A=b\n",
        "OTEL ENDPOINT=x\n",
        "A-B=c\n",
        'A="open\n',
        "A='open\n",
        'A="\\q"\n',
        "A=b\x01\n",
    ],
)
def test_env_parser_rejects_what_nomad_rejects(text: str) -> None:
    with pytest.raises(EnvParseError):
        parse_env_file(text)


# --- consumers ------------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML as Go's strict decoders read it: a key twice in one mapping is an error."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def check_format(template: JobTemplate, text: str) -> None:
    """What every reader of the file needs at least: it parses as its kind of file."""
    if template.env:
        parse_env_file(text)
    elif template.destination.endswith((".yml", ".yaml")):
        load_yaml(text)
    elif template.destination.endswith(".json"):
        json.loads(text)
    else:
        raise AssertionError(
            f"{template.name}: no reader check for this kind of file; add one to tests/infra/test_consul_templates.py"
        )


# Container paths Nomad mounts for a task; the rendered files use them as the task sees them.
CONTAINER_PATH = re.compile(r"(?<=[\s'\"=:])/(secrets|local|alloc)/")


def task_tree(renderer: Renderer, job: str, task: str, state: str, root: Path, overrides: Mapping[str, str]) -> Path:
    """Every template of a task rendered into ``root`` as its task directory.

    ``overrides`` replaces the data of templates by destination (negative tests). Absolute
    container paths (/secrets/tls/ca.pem: Nomad mounts the task's secrets/ there) are rewritten to
    the same files under ``root`` — this machine has no /secrets, and writing there would collide
    between runs — so the consumer reads exactly the files the task's own templates produced.
    """
    rendered_any = False
    for template in TEMPLATES:
        if template.job != job or template.task != task:
            continue
        data = overrides.get(template.destination, template.data)
        result = renderer.render_text(template, data, state)
        assert result.ok, f"{template.name} [{state}] does not render: {result.error}"
        target = root / template.destination
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(CONTAINER_PATH.sub(lambda m: f"{root}/{m.group(1)}/", result.output), encoding="utf-8")
        rendered_any = True
    assert rendered_any, f"jobs/{job}.nomad.hcl has no task {task} with templates"
    return root


ALERTMANAGER_YML = "local/alertmanager/alertmanager.yml"
LISTENING = 'msg="Listening on"'


def amtool_check(config: Path) -> subprocess.CompletedProcess[str]:
    amtool = require_binary("amtool")
    return subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, check=False, timeout=60
    )


def incidents_hooks(config_text: str) -> list[dict[str, Any]]:
    config = load_yaml(config_text)
    return [
        hook
        for receiver in config.get("receivers") or []
        for hook in receiver.get("webhook_configs") or []
        if receiver.get("name") == "incidents"
    ]


def start_alertmanager(config: Path, storage: Path) -> tuple[bool, str]:
    """Start a real Alertmanager on ``config``: (config and TLS files loaded, its log).

    Alertmanager loads the configuration and builds every receiver — reading the TLS files — before
    it listens; on failure it exits. Its log (beside ``storage``) is read until one or the other
    happens; if neither does within 30 s, it counts as not loaded. It is stopped either way.
    """
    binary = shutil.which("prometheus-alertmanager") or require_binary("alertmanager")
    process = spawn(
        "alertmanager",
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={storage}",
            "--web.listen-address=127.0.0.1:0",
            "--cluster.listen-address=",
        ],
        storage.parent / f"{storage.name}-alertmanager.log",
    )

    def listening() -> bool:
        return LISTENING in process.log_file.read_text(encoding="utf-8", errors="replace")

    try:
        wait_until(
            lambda: listening() or not process.running,
            timeout_s=30,
            interval_s=0.05,
            what="Alertmanager listening or exited",
        )
    except TimedOut:
        pass  # neither: reported as not loaded, with the log
    finally:
        process.stop(timeout_s=10)
    log = process.log_file.read_text(encoding="utf-8", errors="replace")
    return LISTENING in log, log


# --- the tests ------------------------------------------------------------------------------------------


def test_the_renderer_behaves_like_consul_template(renderer: Renderer) -> None:
    """The instrument first: functions, health filtering and ordering, failures as consul-template's."""

    def run(data: str, state: str = "registered") -> Rendered:
        return renderer.run("render", data, "{{", "}}", world=renderer.worlds[state], env={"NOMAD_PORT_x": "1234"})

    nodes = run('{{ range service "jaeger" }}{{ .Node }} {{ end }}')
    assert nodes.output == "nomad-client-1 nomad-client-2 ", nodes
    assert run('{{ service "jaeger" | len }}', "unhealthy").output == "0"
    assert run('{{ service "jaeger|any" | len }}', "unhealthy").output == "2"
    assert run('{{ service "no-such-service" | len }}').output == "0"
    assert run('{{ env "NOMAD_PORT_x" }}/{{ env "HOME" }}').output == "1234/"
    assert run('{{ with secret "secret/data/nowhere" }}x{{ end }}').returncode == 3  # waits for Vault forever
    assert run('{{ key "firedrill/flag" }}').returncode == 3  # key blocks until the key exists
    assert run('{{ keyOrDefault "firedrill/flag" "off" }}').output == "off"
    assert run('{{ "<a>" | toJSON }}').output == '"\\u003ca\\u003e"'  # encoding/json escapes HTML
    mixed = (
        '{{ with secret "pki_int/issue/alertmanager" "ttl=1h" }}{{ with service "incidents" }}both{{ end }}{{ end }}'
    )
    assert run(mixed).output == "both"  # Vault and Consul in one template
    assert run(mixed, "absent").output == ""
    undefined = run('{{ serviceAddress "jaeger" }}')
    assert undefined.returncode == 1
    assert 'function "serviceAddress" not defined' in undefined.error
    assert undefined.error.startswith("parse: ")
    assert "function is disabled" in run('{{ plugin "x" }}').error  # Nomad's default function_denylist
    assert "does not implement" in run('{{ sprig_upper "x" }}').error  # defined, but not by us: says so


def test_every_template_parses_and_looks_up_what_exists(renderer: Renderer) -> None:
    """Every template of every job parses with consul-template's functions; Consul ones are found."""
    problems: list[str] = []
    consul: list[str] = []
    for template in TEMPLATES:
        try:
            seen = renderer.inspect(template)
        except AssertionError as exc:
            problems.append(str(exc))
            continue
        if seen.consul:
            consul.append(template.name)
        if seen.dynamic:
            problems.append(f"{template.name}: lookups with computed arguments cannot be checked: {seen.dynamic}")
        unknown = seen.services() - DECLARED_SERVICES
        if unknown:
            problems.append(f"{template.name}: looks up services no job registers: {sorted(unknown)}")
        env = task_env(template)
        unset = [name for name in seen.lookups.get("env", []) if name not in env]
        if unset:
            problems.append(f"{template.name}: reads variables its task does not have (renders empty): {unset}")
    assert not problems, "\n".join(problems)
    assert sorted(consul) == sorted(t.name for t in CONSUL_TEMPLATES), "the Consul-template filter disagrees with Go"
    assert {t.destination for t in CONSUL_TEMPLATES} >= {
        ALERTMANAGER_YML,
        "local/collector.yaml",
        "local/grafana/provisioning/datasources/firedrill.yaml",
        "local/upstreams.env",
    }


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("template", CONSUL_TEMPLATES, ids=[t.name for t in CONSUL_TEMPLATES])
def test_consul_template_renders_a_readable_file(renderer: Renderer, template: JobTemplate, state: str) -> None:
    text = renderer.rendered(template, state)
    literal = re.findall(r"\$\{(?:NOMAD_|attr\.|node\.|meta\.)[^}]*\}", text)
    assert not literal, f"{template.name}: Nomad does not interpolate template data; rendered literally: {literal}"
    check_format(template, text)
    if state == "unhealthy":
        # Checks still failing right after placement: consul-template sees no healthy instance.
        assert text == renderer.rendered(template, "absent")


@pytest.mark.parametrize("state", STATES)
def test_alertmanager_config_passes_amtool_in_every_state(renderer: Renderer, state: str, tmp_path: Path) -> None:
    root = task_tree(renderer, "monitoring", "alertmanager", state, tmp_path, {})
    config = root / ALERTMANAGER_YML
    done = amtool_check(config)
    assert done.returncode == 0, f"[{state}] amtool check-config:\n{done.stdout}{done.stderr}\n{config.read_text()}"
    assert "1 templates" in done.stdout, done.stdout  # templates/*.tmpl found beside the file and parsed

    hooks = incidents_hooks(config.read_text())
    assert len(hooks) == 1, hooks
    hook = hooks[0]
    url = urllib.parse.urlsplit(hook["url"])
    tls = hook["http_config"]["tls_config"]
    assert tls["server_name"] == "incidents.service.consul"
    assert not tls.get("insecure_skip_verify")
    for key in ("ca_file", "cert_file", "key_file"):
        assert Path(tls[key]).read_text().startswith("-----BEGIN "), (key, tls[key])
    if state == "registered":
        incidents = renderer.first("incidents")
        assert hook["url"] == f"https://{incidents['Address']}:{incidents['Port']}/alerts"
    else:
        fallback = f"https://incidents.service.consul:{catalog.service('incidents').port}/alerts"
        assert hook["url"] == fallback, url


@pytest.mark.parametrize("state", ["registered", "absent"])
def test_alertmanager_starts_on_the_rendered_config_and_certificates(
    renderer: Renderer, state: str, tmp_path: Path
) -> None:
    """amtool does not open the TLS files; Alertmanager itself does, when it builds the receiver."""
    root = task_tree(renderer, "monitoring", "alertmanager", state, tmp_path / "task", {})
    loaded, log = start_alertmanager(root / ALERTMANAGER_YML, tmp_path / "data")
    assert loaded, f"[{state}] Alertmanager refused the rendered configuration:\n{log}"


def _old_url_form(data: str) -> str:
    """The webhook URL as it was before the fallback: no [[ else ]] branch."""
    old, replaced = re.subn(r"\[\[ else \]\][^\[\]]*\[\[ end \]\]", "[[ end ]]", data, count=1)
    assert replaced == 1, "the alertmanager.yml template has no [[ else ]] fallback to remove"
    return old


def test_negative_the_old_webhook_url_is_refused_by_amtool_when_incidents_is_absent(
    renderer: Renderer, tmp_path: Path
) -> None:
    old = _old_url_form(find_template("monitoring", ALERTMANAGER_YML).data)
    for state, should_pass in (("registered", True), ("absent", False), ("unhealthy", False)):
        root = task_tree(renderer, "monitoring", "alertmanager", state, tmp_path / state, {ALERTMANAGER_YML: old})
        text = (root / ALERTMANAGER_YML).read_text()
        done = amtool_check(root / ALERTMANAGER_YML)
        assert (done.returncode == 0) is should_pass, f"[{state}] {incidents_hooks(text)}\n{done.stdout}{done.stderr}"
        if not should_pass:
            assert incidents_hooks(text)[0]["url"] == "/alerts"
            assert 'unsupported scheme "" for URL' in done.stdout + done.stderr


def test_negative_index_of_an_absent_service_fails_to_render(renderer: Renderer) -> None:
    template = find_template("monitoring", ALERTMANAGER_YML)
    lookup = re.search(r'\[\[ with service "incidents" \]\].*?\[\[ else \]\].*?\[\[ end \]\]', template.data)
    assert lookup, "the alertmanager.yml template no longer looks incidents up"
    broken = template.data.replace(
        lookup.group(0), '[[ with index (service "incidents") 0 ]]https://[[ .Address ]]:[[ .Port ]][[ end ]]'
    )
    assert renderer.render_text(template, broken, "registered").ok
    for state in ("absent", "unhealthy"):
        result = renderer.render_text(template, broken, state)
        assert result.returncode == 1, result
        assert result.error.startswith("execute: "), result.error
        assert "error calling index" in result.error, result.error


def test_negative_a_function_consul_template_lacks_fails_the_test(renderer: Renderer) -> None:
    template = find_template("tracing", "local/collector.yaml")
    broken = template.data.replace('{{ with service "jaeger" }}', '{{ with serviceHealthy "jaeger" }}', 1)
    assert broken != template.data
    result = renderer.render_text(template, broken, "registered")
    assert result.returncode == 1
    assert 'function "serviceHealthy" not defined' in result.error


def test_negative_an_env_template_nomad_cannot_parse_is_caught(renderer: Renderer) -> None:
    template = find_template("hello", "local/upstreams.env")
    broken = template.data.replace("OTEL_EXPORTER_OTLP_ENDPOINT=", "")  # the bare URL: no KEY=
    text = renderer.render_text(template, broken, "registered")
    assert text.ok
    with pytest.raises(EnvParseError, match="missing ="):
        parse_env_file(text.output)
    assert parse_env_file(renderer.render_text(template, broken, "absent").output) == {}


COLLECTOR = "local/collector.yaml"


@pytest.mark.parametrize("state", STATES)
def test_collector_pipelines_use_only_defined_components(renderer: Renderer, state: str) -> None:
    template = find_template("tracing", COLLECTOR)
    config = load_yaml(renderer.rendered(template, state))
    env = task_env(template)
    for kind in ("receivers", "processors", "exporters"):
        for pipeline, body in config["service"]["pipelines"].items():
            for name in body.get(kind) or []:
                assert name in (config.get(kind) or {}), f"[{state}] pipeline {pipeline} uses undefined {kind} {name}"
    assert set(config["service"].get("extensions") or []) <= set(config.get("extensions") or {})
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == f"0.0.0.0:{env['NOMAD_PORT_otlp']}"
    assert config["extensions"]["health_check"]["endpoint"] == f"0.0.0.0:{env['NOMAD_PORT_health']}"
    exporters = config["service"]["pipelines"]["traces"]["exporters"]
    if state == "registered":
        jaeger = renderer.first("jaeger")
        assert exporters == ["otlp/jaeger"]
        endpoint = config["exporters"]["otlp/jaeger"]["endpoint"]
        assert endpoint == f"{jaeger['Address']}:{jaeger['ServiceMeta']['otlp_port']}"
        assert endpoint != f"{jaeger['Address']}:{jaeger['Port']}", "the UI port is not Jaeger's OTLP receiver"
    else:
        assert exporters == ["debug"]
        assert set(config["exporters"]) == {"debug"}


DATASOURCES = "local/grafana/provisioning/datasources/firedrill.yaml"


@pytest.mark.parametrize("state", STATES)
def test_grafana_datasources_point_at_registered_services(renderer: Renderer, state: str) -> None:
    text = renderer.rendered(find_template("monitoring", DATASOURCES), state)
    doc = load_yaml(text)
    assert doc["apiVersion"] == 1
    sources = doc.get("datasources") or []
    for source in sources:
        assert {"name", "uid", "type", "url"} <= set(source), source
        url = urllib.parse.urlsplit(source["url"])
        assert url.scheme == "http", source
        assert url.hostname, source
        assert url.port, source
    by_uid = {s["uid"]: s for s in sources}
    if state != "registered":
        assert sources == [], f"[{state}] datasources without a registered service: {sources}"
        return
    for uid, service in (("prometheus", "prometheus"), ("alertmanager", "alertmanager"), ("jaeger", "jaeger")):
        instance = renderer.first(service)
        assert by_uid[uid]["url"] == f"http://{instance['Address']}:{instance['Port']}"
    for source in sources:
        for link in (source.get("jsonData") or {}).get("exemplarTraceIdDestinations") or []:
            assert link["datasourceUid"] in by_uid, link
    dashboards = variable_defaults(JOBS["monitoring"])["grafana_dashboards"]
    for name, body in dashboards.items():
        for panel in json.loads(body).get("panels", []):
            panel_uid = (panel.get("datasource") or {}).get("uid")
            assert panel_uid is None or panel_uid in by_uid, (name, panel.get("title"), panel_uid)


ENV_TEMPLATES = [t for t in CONSUL_TEMPLATES if t.env]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("template", ENV_TEMPLATES, ids=[t.name for t in ENV_TEMPLATES])
def test_env_templates_set_upstream_addresses_or_nothing(renderer: Renderer, template: JobTemplate, state: str) -> None:
    env = parse_env_file(renderer.rendered(template, state))
    if state != "registered":
        assert env == {}, f"[{state}] {template.name} sets {env} with no upstream registered"
        return
    assert env, f"{template.name} sets nothing with every upstream registered"
    for service in renderer.inspect(template).services():
        instance = renderer.first(service)
        address = f"{instance['Address']}:{instance['Port']}"
        assert any(address in value for value in env.values()), f"{template.name}: no variable points at {service}"
    for key, value in env.items():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", key), key
        if "://" in value:
            url = urllib.parse.urlsplit(value)
            assert url.hostname, (key, value)
            assert url.port, (key, value)
