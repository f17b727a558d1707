"""The Vault side of the Nomad jobs' ``template`` blocks, rendered for real by ``bao agent``.

Nomad renders a task's ``template`` blocks with consul-template, holding a Vault token it got by
logging in with the task's workload identity; ``bao agent`` runs the same engine. This module has
the pieces to do that without Nomad (``tests/infra/test_vault_templates.py`` puts them together):

- ``job_tasks(jobs_dir)`` reads every ``jobs/*.nomad.hcl`` (python-hcl2) and gives each task with
  its ``vault`` role, its group's network ports and its templates. HCL interpolations in template
  text are evaluated as Nomad's parser would (``scripts.cluster.hcl_strings``); one it does not
  evaluate raises instead of being guessed. Each template is classified by the consul-template functions it calls:
  Vault (``secret``, ``pkiCert``) and static ones can be rendered here; those that call Consul or
  Nomad (``service``, ``nomadVar``...) are listed as skipped with the reason, and so are
  ``dynamic "template"`` blocks whose content comes from a variable map.
- ``NomadIdentitySigner`` keeps a key like a Nomad 1.8 server's (RSA 2048, RS256, ``kid`` = the
  root key's UUID; nomad/encrypter.go ``SignClaims``), mints the JWT Nomad gives Vault for a
  task's ``vault`` block (claims of nomad/structs/workload_id.go ``IdentityClaimsBuilder.Build``,
  identity ``vault_default``, audience ``vault.io``) and publishes ``/.well-known/jwks.json``;
  ``JwksServer`` serves it over HTTPS on loopback.
- ``render_once`` runs ``bao agent`` once (``exit_after_auth``, ``exit_on_retry_failure``) with the
  token in a 0600 file (``auto_auth`` method ``token_file``), the Vault address and CA, the
  templates as source files, and only the environment a Nomad task's templates would see.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from hcl2.utils import SerializationOptions
from jwt.algorithms import RSAAlgorithm

from scripts.cluster.consul_template import CONSUL_FUNCTIONS, ENV_FUNCTIONS, NOMAD_FUNCTIONS, VAULT_FUNCTIONS
from scripts.cluster.hcl_strings import HclEvalError, HclScope
from scripts.cluster.jobspec import JobSpecError, labelled, load_hcl
from scripts.vault.private_file import write_private

# Heredocs kept raw: python-hcl2 re-quotes them otherwise (and loses the final newline).
_HCL_OPTIONS = SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True, preserve_heredocs=True
)

# Nomad's default identity for a task's vault block (jobspec `vault {}` without `identity`).
VAULT_IDENTITY_NAME = "vault_default"
VAULT_AUDIENCE = "vault.io"
JWKS_PATH = "/.well-known/jwks.json"


class TemplateSourceError(HclEvalError):
    """A job's template cannot be read or evaluated here; the message names the job, task and text."""


# ---- Go templates: which consul-template functions a template calls ---------------------------------

_TOKEN = re.compile(
    r"""(?P<str>"(?:[^"\\]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<char>'(?:[^'\\]|\\.)*')
      | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
      | (?P<var>\$[A-Za-z_0-9]*)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<lp>\()
      | (?P<rp>\))
      | (?P<ws>\s+)
      | (?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str

    @property
    def value(self) -> str:
        """A string literal's value."""
        if self.kind == "raw":
            return self.text[1:-1]
        try:
            decoded = json.loads(self.text)
        except ValueError:
            return self.text[1:-1]
        return str(decoded)


def actions(text: str, left: str = "{{", right: str = "}}") -> list[str]:
    """The inside of every action (``{{ ... }}``), trim markers and comments removed."""
    found: list[str] = []
    i = 0
    while (start := text.find(left, i)) != -1:
        j = start + len(left)
        while j < len(text) and not text.startswith(right, j):
            if text[j] == '"':
                j += 1
                while j < len(text) and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
            elif text[j] == "`":
                j = text.find("`", j + 1)
                if j == -1:
                    raise TemplateSourceError(f"unterminated raw string in {text[start : start + 60]!r}")
            j += 1
        if j >= len(text):
            raise TemplateSourceError(f"unterminated action {text[start : start + 60]!r}")
        inner = text[start + len(left) : j]
        i = j + len(right)
        inner = re.sub(r"^-\s", "", inner)
        inner = re.sub(r"\s-$", "", inner)
        if not inner.strip().startswith("/*"):
            found.append(inner)
    return found


def tokens(action: str) -> list[Token]:
    out = []
    for match in _TOKEN.finditer(action):
        kind = match.lastgroup or "other"
        if kind != "ws":
            out.append(Token(kind, match.group()))
    return out


@dataclass(frozen=True, slots=True)
class SecretCall:
    """One ``secret``/``pkiCert`` call: its path and ``key=value`` parameters (env reads as ``<env NAME>``)."""

    function: str
    path: str
    params: tuple[tuple[str, str], ...]

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name)

    def resolved(self, name: str, environ: Mapping[str, str]) -> str | None:
        value = self.param(name)
        if value is None:
            return None
        return re.sub(r"<env ([A-Za-z_][A-Za-z0-9_]*)>", lambda m: environ.get(m.group(1), ""), value)


def _matching_paren(items: Sequence[Token], start: int) -> int:
    depth = 0
    for index in range(start, len(items)):
        if items[index].kind == "lp":
            depth += 1
        elif items[index].kind == "rp":
            depth -= 1
            if depth == 0:
                return index
    raise TemplateSourceError("unbalanced parentheses in a template action")


def _argument(items: Sequence[Token]) -> str | None:
    """A call argument's value when it is a string, ``env "X"`` or ``printf "fmt" args...``."""
    if len(items) == 1 and items[0].kind in ("str", "raw"):
        return items[0].value
    if len(items) >= 2 and items[0].kind == "lp" and items[-1].kind == "rp":
        return _argument(items[1:-1])
    if len(items) == 2 and items[0].text in ENV_FUNCTIONS and items[1].kind in ("str", "raw"):
        return f"<env {items[1].value}>"
    if items and items[0].text == "printf" and len(items) >= 2 and items[1].kind in ("str", "raw"):
        values: list[str] = []
        i = 2
        while i < len(items):
            end = _matching_paren(items, i) if items[i].kind == "lp" else i
            value = _argument(items[i : end + 1])
            if value is None:
                return None
            values.append(value)
            i = end + 1
        try:
            return items[1].value % tuple(values)
        except (TypeError, ValueError):
            return None
    return None


def secret_calls(action: str) -> list[SecretCall]:
    items = tokens(action)
    calls = []
    for index, item in enumerate(items):
        if item.kind != "ident" or item.text not in VAULT_FUNCTIONS:
            continue
        args: list[str] = []
        i = index + 1
        while i < len(items) and items[i].kind in ("str", "raw", "lp"):
            end = _matching_paren(items, i) if items[i].kind == "lp" else i
            value = _argument(items[i : end + 1])
            args.append("<expression>" if value is None else value)
            i = end + 1
        if not args:
            raise TemplateSourceError(f"{item.text} without a literal path in {action.strip()[:80]!r}")
        params = tuple((k, v) for k, _, v in (a.partition("=") for a in args[1:]))
        calls.append(SecretCall(item.text, args[0], params))
    return calls


@dataclass(frozen=True, slots=True)
class TemplateUse:
    """What a template's text asks for: functions called, environment variables read, Vault calls."""

    functions: frozenset[str]
    env_reads: frozenset[str]
    secrets: tuple[SecretCall, ...]


def template_use(text: str, left: str = "{{", right: str = "}}") -> TemplateUse:
    functions: set[str] = set()
    env_reads: set[str] = set()
    secrets: list[SecretCall] = []
    for action in actions(text, left, right):
        items = tokens(action)
        for index, item in enumerate(items):
            if item.kind != "ident":
                continue
            functions.add(item.text)
            if item.text in ENV_FUNCTIONS and index + 1 < len(items) and items[index + 1].kind in ("str", "raw"):
                env_reads.add(items[index + 1].value)
        secrets.extend(secret_calls(action))
    return TemplateUse(frozenset(functions), frozenset(env_reads), tuple(secrets))


# ---- the jobs: tasks, their vault role and their templates ------------------------------------------


@dataclass(frozen=True, slots=True)
class JobTemplate:
    job: str
    group: str
    task: str
    index: int
    destination: str
    text: str
    left_delimiter: str
    right_delimiter: str
    perms: str | None
    env: bool
    use: TemplateUse

    @property
    def kind(self) -> str:
        """``vault`` (calls Vault), ``static`` (no lookups), ``consul`` or ``nomad`` (needs that API)."""
        if self.use.functions & NOMAD_FUNCTIONS:
            return "nomad"
        if self.use.functions & CONSUL_FUNCTIONS:
            return "consul"
        if self.use.functions & VAULT_FUNCTIONS:
            return "vault"
        return "static"

    @property
    def label(self) -> str:
        return f"{self.job}/{self.group}/{self.task} -> {self.destination}"


@dataclass(frozen=True, slots=True)
class SkippedTemplate:
    job: str
    group: str
    task: str
    destination: str
    reason: str

    @property
    def label(self) -> str:
        return f"{self.job}/{self.group}/{self.task} -> {self.destination}"


@dataclass(frozen=True, slots=True)
class JobTask:
    job: str
    group: str
    task: str
    vault_role: str | None
    ports: tuple[str, ...]
    env: Mapping[str, str]
    templates: tuple[JobTemplate, ...]
    skipped: tuple[SkippedTemplate, ...]

    @property
    def name(self) -> str:
        return f"{self.job}/{self.group}/{self.task}"

    @property
    def renderable(self) -> tuple[JobTemplate, ...]:
        return tuple(t for t in self.templates if t.kind in ("vault", "static"))

    @property
    def vault_templates(self) -> tuple[JobTemplate, ...]:
        return tuple(t for t in self.templates if t.kind == "vault")


def _skip_reason(template: JobTemplate) -> str | None:
    if template.kind == "nomad":
        called = sorted(template.use.functions & NOMAD_FUNCTIONS)
        return f"calls Nomad ({', '.join(called)}): cannot render without Nomad's API"
    if template.kind == "consul":
        called = sorted(template.use.functions & CONSUL_FUNCTIONS)
        also = " (and Vault)" if template.use.functions & VAULT_FUNCTIONS else ""
        return f"calls Consul ({', '.join(called)}){also}: cannot render without Consul"
    return None


def _one(blocks: Any) -> dict[str, Any] | None:
    if isinstance(blocks, list):
        return blocks[0] if blocks and isinstance(blocks[0], dict) else None
    return blocks if isinstance(blocks, dict) else None


def load_job_source(path: Path) -> dict[str, Any]:
    try:
        return load_hcl(path, _HCL_OPTIONS)
    except JobSpecError as exc:
        raise TemplateSourceError(str(exc)) from exc


def read_job_tasks(path: Path) -> list[JobTask]:
    data = load_job_source(path)
    jobs = list(labelled(data.get("job")))
    if len(jobs) != 1:
        raise TemplateSourceError(f"{path} must declare exactly one job, found {len(jobs)}")
    job_name, job = jobs[0]
    merged_locals: dict[str, Any] = {}
    for block in data.get("locals", []) or []:
        merged_locals.update(block)
    defaults = {name: decl["default"] for name, decl in labelled(data.get("variable")) if "default" in decl}
    scope = HclScope(defaults, merged_locals)
    found = []
    for group_name, group in labelled(job.get("group")):
        ports: list[str] = []
        for network in group.get("network", []) or []:
            ports.extend(label for label, _ in labelled(network.get("port")))
        for task_name, task in labelled(group.get("task")):
            found.append(_read_task(scope, job_name, group_name, task_name, task, tuple(ports)))
    return found


def _read_task(
    scope: HclScope, job: str, group: str, task_name: str, task: dict[str, Any], ports: tuple[str, ...]
) -> JobTask:
    where = f"{job}/{group}/{task_name}"
    vault = _one(task.get("vault"))
    role = None
    if vault is not None:
        if "role" not in vault:
            raise TemplateSourceError(f"{where}: vault block without a role (Vault's default_role would apply)")
        role = scope.evaluate(vault["role"], f"{where} vault.role")
    env: dict[str, str] = {}
    for block in task.get("env", []) or []:
        for key, value in block.items():
            with contextlib.suppress(HclEvalError):  # what is not evaluated here stays as written
                env[key] = scope.evaluate(value, f"{where} env.{key}")
            env.setdefault(key, str(value))
    templates: list[JobTemplate] = []
    skipped: list[SkippedTemplate] = []
    for index, block in enumerate(task.get("template", []) or []):
        spot = f"{where} template #{index + 1}"
        destination = scope.evaluate(block.get("destination", ""), f"{spot} destination")
        if "data" not in block:
            reason = "reads a file on the client (source)" if "source" in block else "has no data"
            skipped.append(SkippedTemplate(job, group, task_name, destination, reason))
            continue
        left = scope.evaluate(block.get("left_delimiter", "{{"), f"{spot} left_delimiter")
        right = scope.evaluate(block.get("right_delimiter", "}}"), f"{spot} right_delimiter")
        text = scope.evaluate(block["data"], f"{spot} ({destination}) data")
        perms = scope.evaluate(block["perms"], f"{spot} perms") if "perms" in block else None
        template = JobTemplate(
            job=job,
            group=group,
            task=task_name,
            index=index,
            destination=destination,
            text=text,
            left_delimiter=left,
            right_delimiter=right,
            perms=perms,
            env=bool(block.get("env", False)),
            use=template_use(text, left, right),
        )
        why = _skip_reason(template)
        if why is None:
            templates.append(template)
        else:
            skipped.append(SkippedTemplate(job, group, task_name, destination, why))
    for dynamic in task.get("dynamic", []) or []:
        for label, body in dynamic.items():
            if label.strip('"') != "template":
                continue
            for_each = str(body.get("for_each", ""))
            content = _one(body.get("content")) or {}
            destination = str(content.get("destination", "?"))
            if "var." not in for_each or "template.value" not in str(content.get("data", "")):
                raise TemplateSourceError(
                    f'{where}: dynamic "template" over {for_each!r} is not evaluated here '
                    "(only blocks whose content comes from a variable map are recognised, and skipped)"
                )
            variables = sorted(set(re.findall(r"var\.([A-Za-z_][A-Za-z0-9_-]*)", for_each)))
            skipped.append(
                SkippedTemplate(
                    job,
                    group,
                    task_name,
                    destination,
                    f'dynamic "template": content from the variable map {", ".join("var." + v for v in variables)} '
                    "(files the deploy passes in; no Vault in them)",
                )
            )
    return JobTask(job, group, task_name, role, ports, env, tuple(templates), tuple(skipped))


def job_tasks(jobs_dir: Path) -> list[JobTask]:
    """Every task of every ``*.nomad.hcl`` under ``jobs_dir``, read now (the files may be regenerated)."""
    paths = sorted(jobs_dir.glob("*.nomad.hcl"))
    if not paths:
        raise TemplateSourceError(f"no *.nomad.hcl in {jobs_dir}")
    return [task for path in paths for task in read_job_tasks(path)]


def nomad_task_env(task: JobTask, node_ip: str, alloc_id: str, task_dir: Path) -> dict[str, str]:
    """The runtime variables Nomad gives a task's templates (``env "NOMAD_IP_http"``...)."""
    env = {
        "NOMAD_ALLOC_ID": alloc_id,
        "NOMAD_SHORT_ALLOC_ID": alloc_id[:8],
        "NOMAD_ALLOC_NAME": f"{task.job}.{task.group}[0]",
        "NOMAD_ALLOC_INDEX": "0",
        "NOMAD_JOB_ID": task.job,
        "NOMAD_JOB_NAME": task.job,
        "NOMAD_GROUP_NAME": task.group,
        "NOMAD_TASK_NAME": task.task,
        "NOMAD_NAMESPACE": "default",
        "NOMAD_REGION": "global",
        "NOMAD_DC": "dc1",
        "NOMAD_TASK_DIR": str(task_dir / "local"),
        "NOMAD_SECRETS_DIR": str(task_dir / "secrets"),
        "NOMAD_ALLOC_DIR": str(task_dir / "alloc"),
    }
    for number, label in enumerate(task.ports):
        port = str(20000 + number)
        env[f"NOMAD_IP_{label}"] = node_ip
        env[f"NOMAD_PORT_{label}"] = port
        env[f"NOMAD_HOST_PORT_{label}"] = port
        env[f"NOMAD_ADDR_{label}"] = f"{node_ip}:{port}"
        env[f"NOMAD_HOST_ADDR_{label}"] = f"{node_ip}:{port}"
        env[f"NOMAD_HOST_IP_{label}"] = node_ip
    return env


def task_path(task_dir: Path, destination: str) -> Path:
    """Where a template's destination lands inside a task directory (relative paths only)."""
    relative = PurePosixPath(destination)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise TemplateSourceError(f"destination {destination!r} is not a path inside the task directory")
    return task_dir.joinpath(*relative.parts)


# ---- Nomad's workload identities: the signing key, the JWT, the JWKS endpoint ------------------------


class NomadIdentitySigner:
    """A Nomad 1.8 server's workload-identity key (RSA 2048, RS256) and the JWTs it signs."""

    def __init__(self, *, region: str = "global", namespace: str = "default", ttl_s: int = 3600) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = str(uuid.uuid4())  # Nomad's root key ID
        self.region = region
        self.namespace = namespace
        self.ttl_s = ttl_s

    def jwks(self) -> dict[str, Any]:
        """The body of Nomad's ``/.well-known/jwks.json``."""
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def claims(
        self, job: str, group: str, task: str, *, vault_role: str | None, alloc_id: str, now: float | None = None
    ) -> dict[str, Any]:
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "nomad_namespace": self.namespace,
            "nomad_job_id": job,
            "nomad_allocation_id": alloc_id,
            "nomad_task": task,
            "sub": ":".join((self.region, self.namespace, job, group, task, VAULT_IDENTITY_NAME)),
            "aud": [VAULT_AUDIENCE],
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.ttl_s,
            "jti": str(uuid.uuid4()),
        }
        if vault_role:
            claims["vault_role"] = vault_role
        return claims

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(dict(claims), self._key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})


class _TlsHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.context = context
        self.requests_served = 0
        self.failed_handshakes = 0
        self.lock = threading.Lock()

    def get_request(self) -> tuple[Any, Any]:
        raw, address = self.socket.accept()
        # The TLS handshake happens in the request's own thread (setup), not in the accept loop.
        return self.context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.failed_handshakes += 1


class JwksServer:
    """Nomad's ``/.well-known/jwks.json`` over HTTPS on a free loopback port (the kernel picks it)."""

    def __init__(self, jwks: Mapping[str, Any], cert_file: Path, key_file: Path) -> None:
        self.body = json.dumps(jwks).encode()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._context.load_cert_chain(cert_file, key_file)
        self._server: _TlsHttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the JWKS server is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{JWKS_PATH}"

    @property
    def requests_served(self) -> int:
        return 0 if self._server is None else self._server.requests_served

    @property
    def failed_handshakes(self) -> int:
        return 0 if self._server is None else self._server.failed_handshakes

    def start(self) -> JwksServer:
        body = self.body

        class Handler(BaseHTTPRequestHandler):
            timeout = 5

            def setup(self) -> None:
                super().setup()
                self.connection.do_handshake()

            def do_GET(self) -> None:
                found = self.path.split("?", 1)[0] == JWKS_PATH
                payload = body if found else b'{"errors":["not found"]}'
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "max-age=900")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                server = self.server
                if found and isinstance(server, _TlsHttpServer):
                    with server.lock:
                        server.requests_served += 1

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = _TlsHttpServer(self._context, Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="jwks", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None) -> None:
        self.close()


# ---- bao agent: render a set of templates once ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentTemplate:
    text: str
    destination: Path
    perms: str | None = None
    left_delimiter: str = "{{"
    right_delimiter: str = "}}"


@dataclass(frozen=True, slots=True)
class AgentRun:
    """One ``bao agent`` run: its exit code (None: killed at the timeout), output, argv and environment."""

    returncode: int | None
    output: str
    seconds: float
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def agent_config(
    *,
    vault_addr: str,
    vault_ca: Path | None,
    token_file: Path,
    sources: Sequence[tuple[Path, AgentTemplate]],
    retries: int,
) -> dict[str, Any]:
    """The agent's configuration (JSON): render once with the token from the file, then exit."""
    vault: dict[str, Any] = {"address": vault_addr, "retry": {"num_retries": retries}}
    if vault_ca is not None:
        vault["ca_cert"] = str(vault_ca)
    templates = []
    for source, template in sources:
        stanza: dict[str, Any] = {"source": str(source), "destination": str(template.destination)}
        if template.perms:
            stanza["perms"] = template.perms
        if template.left_delimiter != "{{":
            stanza["left_delimiter"] = template.left_delimiter
        if template.right_delimiter != "}}":
            stanza["right_delimiter"] = template.right_delimiter
        templates.append(stanza)
    return {
        "exit_after_auth": True,
        "vault": vault,
        "auto_auth": {"method": [{"type": "token_file", "config": {"token_file_path": str(token_file)}}]},
        "template_config": {"exit_on_retry_failure": True},
        "template": templates,
    }


def render_once(
    *,
    binary: str,
    vault_addr: str,
    vault_ca: Path | None,
    token: str,
    templates: Sequence[AgentTemplate],
    env: Mapping[str, str],
    workdir: Path,
    timeout_s: float = 30.0,
    retries: int = 1,
) -> AgentRun:
    """Render ``templates`` once with ``bao agent`` holding ``token``; never leaves the agent running.

    The token goes to a 0600 file the agent reads (never argv or environment); the agent gets only
    PATH, HOME (``workdir``) and ``env`` -- what a Nomad task's templates see, no VAULT_*/BAO_*.
    With ``exit_on_retry_failure`` a refused request ends the agent (non-zero) after ``retries``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o700)
    token_file = workdir / "vault-token"
    write_private(token_file, token.encode())
    sources = []
    for number, template in enumerate(templates):
        source = workdir / f"template-{number}.ctmpl"
        write_private(source, template.text.encode())
        template.destination.parent.mkdir(parents=True, exist_ok=True)
        sources.append((source, template))
    config_file = workdir / "agent.json"
    config = agent_config(
        vault_addr=vault_addr, vault_ca=vault_ca, token_file=token_file, sources=sources, retries=retries
    )
    write_private(config_file, json.dumps(config, indent=2).encode())
    argv = (binary, "agent", f"-config={config_file}", "-log-level=info")
    child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), **env}
    log_file = workdir / "agent.log"
    started = time.monotonic()
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            argv, env=child_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    returncode: int | None
    try:
        returncode = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        returncode = None
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    return AgentRun(
        returncode=returncode,
        output=log_file.read_text(errors="replace"),
        seconds=time.monotonic() - started,
        argv=argv,
        env=child_env,
    )


def iter_pem_blocks(text: str) -> Iterator[str]:
    for match in re.finditer(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", text, re.DOTALL):
        yield match.group()
