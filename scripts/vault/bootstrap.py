"""Configure a Vault-API server (local OpenBao or a cluster's Vault) for Firedrill, idempotently.

    VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN_FILE=.firedrill/vault/root-token \\
        python -m scripts.vault.bootstrap

What it makes sure of (each step reads first and writes only what differs, so a second run
reports "0 changes"):

- KV v2 at ``secret/``;
- PKI: a root CA at ``pki/`` and an intermediate CA at ``pki_int/`` signed by it; one role per
  catalog service, named after it, that issues only ``<name>``, ``<name>.service.consul``,
  ``localhost`` and loopback/cluster IP SANs; client-only roles ``prometheus`` and ``operator``;
- the JWT signing key set at ``secret/firedrill/auth/jwt`` (format of
  ``services.common.auth_tokens``: ``active_kid`` + ``keys`` by kid) and its public half at
  ``secret/firedrill/public/jwt``; every catalog service's own admin token at
  ``secret/firedrill/<name>/admin`` (generated when absent, so a state from before per-service
  tokens gets the missing ones on its next run);
- one policy per identity (``firedrill-<name>``): read its own ``secret/firedrill/<name>/*``
  and the public JWT keys, issue only its own certificates;
- AppRole roles ``firedrill-<name>`` for the local platform (``--approle-dir`` writes each
  role-id/secret-id pair to 0600 files, a new secret-id only when the stored one is no longer valid);
- the JWT auth method at ``jwt-nomad/`` with a role ``firedrill-<name>`` per workload, bound to
  Nomad workload identities, whenever a Nomad JWKS URL is configured (skipped with a message otherwise).

The JWKS URL is Vault's setting, not the operator's: Vault itself fetches Nomad's public keys when
the config is written and whenever it meets a new ``kid``. On the cluster Vault runs on the server
nodes beside the Nomad servers, whose public address (``NOMAD_ADDR``, port 4646 on the Elastic IP)
the security groups do not open to Vault, so the default is the local Nomad server,
``https://127.0.0.1:4646/.well-known/jwks.json``, verified against ``NOMAD_CACERT``. Set
``--nomad-jwks-url`` / ``FIREDRILL_NOMAD_JWKS_URL`` to use another one; with neither and no
``NOMAD_ADDR`` (the local platform) the JWT auth method is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import hvac
from hvac import exceptions as hvac_errors

from scripts.vault import jwt_keys
from scripts.vault.identity_requests import ADMIN_TOKEN_FILE
from scripts.vault.vaultapi import (
    ADMIN_TOKEN_FIELD,
    APPROLE_MOUNT,
    EXTRA_WORKLOADS,
    GRAFANA_PATH,
    JWT_KEYS_PATH,
    JWT_PUBLIC_PATH,
    KV_MOUNT,
    NOMAD_JWT_MOUNT,
    PKI_INT,
    PKI_ROOT,
    VaultToolError,
    admin_token_path,
    client,
    identities,
    policy_name,
    read_token,
    vault_addr,
)
from services.common import catalog
from services.common.profiles import TimingProfile, profile
from services.common.tls import OBSERVERS, service_dns_name
from services.common.waiting import TimedOut, wait_until

ROOT_TTL_S = 10 * 365 * 24 * 3600
INT_TTL_S = 5 * 365 * 24 * 3600
CERT_MAX_TTL_S = 7 * 24 * 3600
APPROLE_TOKEN_TTL_S = 3600
APPROLE_TOKEN_MAX_TTL_S = 4 * 3600
NOMAD_TOKEN_PERIOD_S = 30 * 60
DEFAULT_IP_SAN_CIDRS = ("127.0.0.1/32",)
NOMAD_JWKS_PATH = "/.well-known/jwks.json"
NOMAD_HTTP_PORT = 4646
# Vault runs on the server nodes beside the Nomad servers: it reaches Nomad's JWKS on loopback.
DEFAULT_NOMAD_JWKS_URL = f"https://127.0.0.1:{NOMAD_HTTP_PORT}{NOMAD_JWKS_PATH}"
JWKS_URL_ENV = "FIREDRILL_NOMAD_JWKS_URL"


@dataclass
class Report:
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    emit: Callable[[str], None] = print

    def changed(self, what: str) -> None:
        self.changes.append(what)
        self.emit(f"  changed: {what}")

    def note(self, what: str) -> None:
        self.notes.append(what)
        self.emit(f"  note: {what}")


def _norm(value: Any) -> Any:
    """Vault answers lists as lists or comma strings, and sometimes a 1-element list for a string."""
    if isinstance(value, str) and "," in value:
        return sorted(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple):
        return sorted(str(v) for v in value)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in sorted(value.items())}
    return value


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """Keys of ``desired`` whose value differs; keys the server does not know (absent) are ignored."""
    out = []
    for key, want in desired.items():
        if key not in current:
            continue
        have = current[key]
        if _norm(have) != _norm(want) and not (want in ([], "") and have in (None, [], "")):
            out.append(key)
    return out


def _read(vault: hvac.Client, path: str) -> dict[str, Any] | None:
    try:
        answer = vault.read(path)
    except hvac_errors.InvalidPath:
        return None
    if not answer or not isinstance(answer, dict):
        return None
    data = answer.get("data")
    return data if isinstance(data, dict) else None


class Bootstrap:
    def __init__(
        self,
        vault: hvac.Client,
        timing: TimingProfile,
        report: Report,
        *,
        ip_san_cidrs: Sequence[str] = DEFAULT_IP_SAN_CIDRS,
        admin_token_seeds: Mapping[str, Path] | None = None,
        jwt_keys_seed: Path | None = None,
        max_token_lifetime_s: int = jwt_keys.DEFAULT_MAX_TOKEN_LIFETIME_S,
    ) -> None:
        self.vault = vault
        self.timing = timing
        self.report = report
        self.ip_san_cidrs = tuple(ip_san_cidrs)
        self.admin_token_seeds = dict(admin_token_seeds or {})
        self.jwt_keys_seed = jwt_keys_seed
        self.max_token_lifetime_s = max_token_lifetime_s

    # -- generic ------------------------------------------------------------------------------

    def ensure(self, path: str, desired: dict[str, Any], what: str) -> None:
        current = _read(self.vault, path)
        if current is None:
            self.vault.write_data(path, data=desired)
            self.report.changed(f"{what}: created")
            return
        differing = _differs(current, desired)
        if differing:
            self.vault.write_data(path, data=desired)
            self.report.changed(f"{what}: updated ({', '.join(differing)})")

    def ensure_mount(self, path: str, kind: str, *, options: dict[str, str] | None = None, max_ttl_s: int = 0) -> None:
        mounts = self.vault.sys.list_mounted_secrets_engines()
        mounts = mounts.get("data", mounts)
        existing = mounts.get(f"{path}/")
        if existing is None:
            self.vault.sys.enable_secrets_engine(
                kind, path=path, options=options, config={"max_lease_ttl": f"{max_ttl_s}s"} if max_ttl_s else None
            )
            self.report.changed(f"secrets engine {path}/ ({kind}): enabled")
            return
        if existing["type"] != kind:
            raise VaultToolError(f"{path}/ is mounted as {existing['type']}, expected {kind}; fix it by hand")
        if options and any((existing.get("options") or {}).get(k) != v for k, v in options.items()):
            if kind == "kv" and options.get("version") == "2":
                self.vault.sys.tune_mount_configuration(path, options=options)
                self.report.changed(f"secrets engine {path}/: upgraded to KV v2")
            else:
                raise VaultToolError(f"{path}/ has options {existing.get('options')}, expected {options}")
        if max_ttl_s and self._max_lease_ttl(path) != max_ttl_s:
            self.vault.sys.tune_mount_configuration(path, max_lease_ttl=f"{max_ttl_s}s")
            self.report.changed(f"secrets engine {path}/: max lease TTL {max_ttl_s}s")

    def _max_lease_ttl(self, path: str) -> int:
        tune = self.vault.sys.read_mount_configuration(path)
        return int(tune.get("data", tune).get("max_lease_ttl", 0))

    def ensure_auth(self, path: str, kind: str) -> None:
        methods = self.vault.sys.list_auth_methods()
        methods = methods.get("data", methods)
        existing = methods.get(f"{path}/")
        if existing is None:
            self.vault.sys.enable_auth_method(kind, path=path)
            self.report.changed(f"auth method {path}/ ({kind}): enabled")
        elif existing["type"] != kind:
            raise VaultToolError(f"auth {path}/ is {existing['type']}, expected {kind}; fix it by hand")

    def ensure_policy(self, name: str, text: str) -> None:
        current = _read(self.vault, f"sys/policies/acl/{name}")
        if current is not None and current.get("policy", "").strip() == text.strip():
            return
        self.vault.sys.create_or_update_acl_policy(name, text)
        self.report.changed(f"policy {name}: {'updated' if current else 'created'}")

    def ensure_kv(self, path: str, make: Callable[[], dict[str, Any]], what: str) -> dict[str, Any]:
        try:
            answer = self.vault.secrets.kv.v2.read_secret_version(
                path, mount_point=KV_MOUNT, raise_on_deleted_version=True
            )
            data: dict[str, Any] = answer["data"]["data"]
            return data
        except hvac_errors.InvalidPath:
            pass
        data = make()
        self.vault.secrets.kv.v2.create_or_update_secret(path, secret=data, mount_point=KV_MOUNT, cas=0)
        self.report.changed(f"{what} at {KV_MOUNT}/{path}: created")
        return data

    # -- the steps ----------------------------------------------------------------------------

    def kv(self) -> None:
        self.ensure_mount(KV_MOUNT, "kv", options={"version": "2"})

    def pki(self) -> None:
        self.ensure_mount(PKI_ROOT, "pki", max_ttl_s=ROOT_TTL_S)
        self.ensure_mount(PKI_INT, "pki", max_ttl_s=INT_TTL_S)
        if not self._issuers(PKI_ROOT):
            self.vault.write_data(
                f"{PKI_ROOT}/root/generate/internal",
                data={"common_name": "Firedrill Root CA", "key_type": "ec", "key_bits": 256, "ttl": f"{ROOT_TTL_S}s"},
            )
            self.report.changed("root CA in pki/: generated")
        if not self._issuers(PKI_INT):
            csr = self.vault.write_data(
                f"{PKI_INT}/intermediate/generate/internal",
                data={"common_name": "Firedrill Intermediate CA", "key_type": "ec", "key_bits": 256},
            )["data"]["csr"]
            signed = self.vault.write_data(
                f"{PKI_ROOT}/root/sign-intermediate",
                data={
                    "csr": csr,
                    "format": "pem_bundle",
                    "ttl": f"{INT_TTL_S}s",
                    "common_name": "Firedrill Intermediate CA",
                },
            )["data"]["certificate"]
            self.vault.write_data(f"{PKI_INT}/intermediate/set-signed", data={"certificate": signed})
            self.report.changed("intermediate CA in pki_int/: generated and signed by the root")
        for identity in identities():
            self.ensure(f"{PKI_INT}/roles/{identity}", self._role(identity), f"PKI role {identity}")

    def _issuers(self, mount: str) -> list[str]:
        try:
            answer = self.vault.list(f"{mount}/issuers")
        except hvac_errors.InvalidPath:
            return []
        keys = (answer or {}).get("data", {}).get("keys") or []
        return [str(k) for k in keys]

    def _role(self, identity: str) -> dict[str, Any]:
        serves = identity not in OBSERVERS
        return {
            "allowed_domains": [identity, service_dns_name(identity)],
            "allow_bare_domains": True,
            "allow_subdomains": False,
            "allow_glob_domains": False,
            "allow_wildcard_certificates": False,
            "allow_any_name": False,
            "allow_localhost": serves,
            "allow_ip_sans": serves,
            "allowed_ip_sans_cidr": list(self.ip_san_cidrs) if serves else [],
            "allowed_uri_sans": [],
            "enforce_hostnames": True,
            "server_flag": serves,
            "client_flag": True,
            "key_type": "ec",
            "key_bits": 256,
            "ttl": self.timing.cert_ttl_s,
            "max_ttl": CERT_MAX_TTL_S,
            "no_store": True,
            "require_cn": True,
        }

    def secrets(self) -> None:
        ring = self.ensure_kv(JWT_KEYS_PATH, self._jwt_key_set, "JWT signing key set")
        public = jwt_keys.public_set(ring)
        try:
            current = self.vault.secrets.kv.v2.read_secret_version(
                JWT_PUBLIC_PATH, mount_point=KV_MOUNT, raise_on_deleted_version=True
            )["data"]["data"]
        except hvac_errors.InvalidPath:
            current = None
        if current != public:
            self.vault.secrets.kv.v2.create_or_update_secret(JWT_PUBLIC_PATH, secret=public, mount_point=KV_MOUNT)
            self.report.changed(f"JWT public keys at {KV_MOUNT}/{JWT_PUBLIC_PATH}: written")
        for service in catalog.service_names():
            self.ensure_kv(admin_token_path(service), partial(self._admin_token, service), f"{service} admin token")
        self.ensure_kv(GRAFANA_PATH, lambda: {"admin_password": secrets.token_urlsafe(24)}, "Grafana admin password")

    def _jwt_key_set(self) -> dict[str, Any]:
        """A new key set, or the one last rendered locally (a restarted dev server keeps tokens valid)."""
        seed = self.jwt_keys_seed
        if seed is not None and seed.is_file():
            try:
                data = json.loads(seed.read_text())
                if isinstance(data, dict) and data.get("active_kid") and isinstance(data.get("keys"), list):
                    return data
            except (OSError, ValueError):
                pass
        return jwt_keys.new_key_set(self.max_token_lifetime_s)

    def _admin_token(self, service: str) -> dict[str, Any]:
        """A new token, or the one last rendered for ``service`` (a restarted dev server keeps it)."""
        seed = self.admin_token_seeds.get(service)
        try:
            kept = seed.read_text().strip() if seed is not None and seed.is_file() else ""
        except OSError:
            kept = ""
        return {ADMIN_TOKEN_FIELD: kept or secrets.token_urlsafe(32)}

    def policies(self) -> None:
        for identity in (*identities(), *EXTRA_WORKLOADS):
            self.ensure_policy(policy_name(identity), policy_text(identity))

    def approles(self, approle_dir: Path | None) -> None:
        self.ensure_auth(APPROLE_MOUNT, "approle")
        for identity in identities():
            name = policy_name(identity)
            self.ensure(
                f"auth/{APPROLE_MOUNT}/role/{name}",
                {
                    "token_policies": [name],
                    "token_ttl": APPROLE_TOKEN_TTL_S,
                    "token_max_ttl": APPROLE_TOKEN_MAX_TTL_S,
                    "token_type": "service",
                    "bind_secret_id": True,
                    "secret_id_ttl": 0,
                    "secret_id_num_uses": 0,
                    "token_no_default_policy": False,
                },
                f"AppRole {name}",
            )
            if approle_dir is not None:
                self._credentials(name, approle_dir / identity)

    def _credentials(self, role: str, folder: Path) -> None:
        from scripts.vault.private_file import write_private

        role_id = self.vault.auth.approle.read_role_id(role, mount_point=APPROLE_MOUNT)["data"]["role_id"]
        role_file, secret_file = folder / "role-id", folder / "secret-id"
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        if not role_file.is_file() or role_file.read_text().strip() != role_id:
            write_private(role_file, role_id.encode())
            self.report.changed(f"AppRole {role}: role-id written to {role_file}")
        if secret_file.is_file() and self._secret_id_valid(role, secret_file.read_text().strip()):
            return
        secret_id = self.vault.auth.approle.generate_secret_id(role, mount_point=APPROLE_MOUNT)["data"]["secret_id"]
        write_private(secret_file, secret_id.encode())
        self.report.changed(f"AppRole {role}: new secret-id written to {secret_file}")

    def _secret_id_valid(self, role: str, secret_id: str) -> bool:
        if not secret_id:
            return False
        try:
            answer = self.vault.auth.approle.read_secret_id(role, secret_id, mount_point=APPROLE_MOUNT)
        except (hvac_errors.InvalidPath, hvac_errors.InvalidRequest):
            return False
        # An unknown secret-id is answered with an empty 204 (a Response object, not a dict).
        return isinstance(answer, dict) and bool(answer.get("data"))

    def nomad_jwt(self, jwks_url: str | None, nomad_ca_pem: str | None) -> None:
        if not jwks_url:
            self.report.note(
                f"no Nomad JWKS URL (--nomad-jwks-url, {JWKS_URL_ENV} or NOMAD_ADDR): "
                "skipping the JWT auth method for Nomad workload identities"
            )
            return
        self.ensure_auth(NOMAD_JWT_MOUNT, "jwt")
        config: dict[str, Any] = {
            "jwks_url": jwks_url,
            "jwt_supported_algs": ["RS256", "EdDSA"],
            "default_role": policy_name("hello"),
        }
        if nomad_ca_pem:
            config["jwks_ca_pem"] = nomad_ca_pem
        try:
            self.ensure(f"auth/{NOMAD_JWT_MOUNT}/config", config, "JWT auth config (Nomad JWKS)")
        except hvac_errors.InvalidRequest as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
            raise VaultToolError(
                f"Vault could not use the Nomad JWKS at {jwks_url} ({reason}). Vault fetches it itself: the "
                f"URL must be reachable from the Vault servers (default {DEFAULT_NOMAD_JWKS_URL}, Nomad beside "
                f"Vault; set {JWKS_URL_ENV} or --nomad-jwks-url otherwise) and its certificate must verify "
                "against NOMAD_CACERT; Vault's own log has the exact error"
            ) from None
        for workload in (*catalog.service_names(), *NOMAD_CLIENT_WORKLOADS, *EXTRA_WORKLOADS):
            name = policy_name(workload)
            self.ensure(
                f"auth/{NOMAD_JWT_MOUNT}/role/{name}",
                {
                    "role_type": "jwt",
                    "bound_audiences": ["vault.io"],
                    # Job AND task: the movie job runs four services, and each task may log in
                    # only as itself (its own admin token, auth's signing keys stay auth's).
                    "bound_claims": {"nomad_job_id": _job_of(workload), "nomad_task": workload},
                    "user_claim": "/nomad_job_id",
                    "user_claim_json_pointer": True,
                    "claim_mappings": {
                        "nomad_namespace": "nomad_namespace",
                        "nomad_job_id": "nomad_job_id",
                        "nomad_task": "nomad_task",
                    },
                    "token_type": "service",
                    "token_policies": [name],
                    "token_period": NOMAD_TOKEN_PERIOD_S,
                    "token_explicit_max_ttl": 0,
                },
                f"JWT role {name}",
            )

    def run(self, *, approle_dir: Path | None, nomad_jwks_url: str | None, nomad_ca_pem: str | None) -> Report:
        self.kv()
        self.pki()
        self.secrets()
        self.policies()
        self.approles(approle_dir)
        self.nomad_jwt(nomad_jwks_url, nomad_ca_pem)
        return self.report


# Client-only identities that run as Nomad tasks (Alertmanager posts to incidents over mTLS).
NOMAD_CLIENT_WORKLOADS: tuple[str, ...] = ("alertmanager",)


def _job_of(workload: str) -> str:
    """The Nomad job a workload's task runs in (jobs/*.nomad.hcl): the gRPC services share ``movie``.

    The task itself is named after the workload (the JWT roles bind ``nomad_task`` to it)."""
    if workload in {"metadata", "rating", "movie", "auth"}:
        return "movie"
    if workload in {"grafana", "alertmanager"}:
        return "monitoring"
    return workload


def policy_text(identity: str) -> str:
    """Read its own secrets and the public JWT keys; issue only its own certificates."""
    lines = [
        f"# {policy_name(identity)}: written by scripts/vault/bootstrap.py; edits are overwritten.",
        f'path "{KV_MOUNT}/data/firedrill/{identity}" {{ capabilities = ["read"] }}',
        f'path "{KV_MOUNT}/data/firedrill/{identity}/*" {{ capabilities = ["read"] }}',
        f'path "{KV_MOUNT}/metadata/firedrill/{identity}/*" {{ capabilities = ["read", "list"] }}',
        f'path "{KV_MOUNT}/data/{JWT_PUBLIC_PATH}" {{ capabilities = ["read"] }}',
    ]
    if identity not in EXTRA_WORKLOADS:
        lines += [
            f'path "{PKI_INT}/issue/{identity}" {{ capabilities = ["create", "update"] }}',
            f'path "{PKI_INT}/cert/ca_chain" {{ capabilities = ["read"] }}',
        ]
    return "\n".join(lines) + "\n"


def nomad_jwks_url(flag: str | None = None, environ: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """The URL Vault fetches Nomad's workload-identity keys from, and where that choice came from.

    ``--nomad-jwks-url``, else ``FIREDRILL_NOMAD_JWKS_URL``, else, when ``NOMAD_ADDR`` names a Nomad
    cluster, the Nomad server beside Vault on loopback: NOMAD_ADDR's scheme and port (default 4646)
    on 127.0.0.1 -- ``https://127.0.0.1:4646/.well-known/jwks.json`` on the terraform cluster, the
    plain-HTTP port of a dev agent (``make dev-cluster``). None: no Nomad, skip the JWT auth method.
    """
    env = os.environ if environ is None else environ
    if flag and flag.strip():
        return flag.strip(), "--nomad-jwks-url"
    configured = env.get(JWKS_URL_ENV, "").strip()
    if configured:
        return configured, JWKS_URL_ENV
    nomad_addr = env.get("NOMAD_ADDR", "").strip()
    if not nomad_addr:
        return None, f"neither --nomad-jwks-url, {JWKS_URL_ENV} nor NOMAD_ADDR is set"
    parsed = urllib.parse.urlsplit(nomad_addr if "://" in nomad_addr else f"https://{nomad_addr}")
    scheme = "http" if parsed.scheme == "http" else "https"
    try:
        port = parsed.port or NOMAD_HTTP_PORT
    except ValueError:
        raise VaultToolError(f"NOMAD_ADDR={nomad_addr!r} has an invalid port") from None
    return (
        f"{scheme}://127.0.0.1:{port}{NOMAD_JWKS_PATH}",
        "the Nomad server beside Vault (NOMAD_ADDR's scheme and port on loopback)",
    )


def run_bootstrap(
    vault: hvac.Client,
    *,
    timing: TimingProfile,
    approle_dir: Path | None = None,
    nomad_jwks_url: str | None = None,
    nomad_ca_pem: str | None = None,
    ip_san_cidrs: Sequence[str] = DEFAULT_IP_SAN_CIDRS,
    admin_token_seeds: Mapping[str, Path] | None = None,
    jwt_keys_seed: Path | None = None,
    emit: Callable[[str], None] = print,
) -> Report:
    report = Report(emit=emit)
    return Bootstrap(
        vault,
        timing,
        report,
        ip_san_cidrs=ip_san_cidrs,
        admin_token_seeds=admin_token_seeds,
        jwt_keys_seed=jwt_keys_seed,
    ).run(approle_dir=approle_dir, nomad_jwks_url=nomad_jwks_url, nomad_ca_pem=nomad_ca_pem)


def admin_token_seed_files(folder: Path | None) -> dict[str, Path]:
    """Each catalog service's rendered admin token under ``folder`` (``<folder>/<service>/admin-token``)."""
    if folder is None:
        return {}
    return {service: folder / service / ADMIN_TOKEN_FILE for service in catalog.service_names()}


def _vault_problem(vault: hvac.Client) -> str | None:
    """What keeps the server from being usable (None: it answers, initialised and unsealed)."""
    try:
        status = vault.sys.read_health_status(method="GET")
        body = status.json() if hasattr(status, "json") else status
        if isinstance(body, dict) and body.get("initialized") and not body.get("sealed"):
            return None
        return f"health says {json.dumps(body)[:120]}"
    except Exception as exc:  # connection refused while it starts
        return exc.__class__.__name__


def wait_for_vault(vault: hvac.Client, timeout_s: float) -> None:
    """Bounded wait until the server answers, is initialised and unsealed."""
    problem = ""

    def ready() -> bool:
        nonlocal problem
        problem = _vault_problem(vault) or ""
        return not problem

    try:
        wait_until(ready, timeout_s=timeout_s, interval_s=0.1, what=f"Vault at {vault.url} ready")
    except TimedOut:
        raise VaultToolError(f"Vault at {vault.url} not ready after {timeout_s:.0f}s ({problem})") from None


def _nomad_ca_pem(path: str | None) -> str | None:
    if not path:
        return None
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise VaultToolError(f"NOMAD_CACERT={path}: {exc.strerror}") from None
    if "BEGIN CERTIFICATE" not in text:
        raise VaultToolError(f"NOMAD_CACERT={path} holds no PEM certificate")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.vault.bootstrap",
        description="Configure Vault/OpenBao for Firedrill (idempotent). VAULT_ADDR names the server; "
        "the token comes from VAULT_TOKEN, or the file named by --token-file / VAULT_TOKEN_FILE, "
        "or ~/.vault-token (never from the command line).",
    )
    parser.add_argument("--token-file", type=Path, help="file holding the Vault token (default: VAULT_TOKEN_FILE)")
    parser.add_argument("--profile", help="timing profile for certificate TTLs (default: FIREDRILL_PROFILE or drill)")
    parser.add_argument(
        "--approle-dir", type=Path, help="write each identity's AppRole role-id/secret-id (0600) under this folder"
    )
    parser.add_argument(
        "--ip-san-cidr",
        action="append",
        dest="ip_san_cidrs",
        help="IP SANs certificates may carry (repeatable; default 127.0.0.1/32, all the jobs ask for: "
        "clients pin the service's DNS name)",
    )
    parser.add_argument(
        "--admin-token-seed-dir",
        type=Path,
        help="seed each service's admin token, when absent in Vault, from DIR/<service>/admin-token if present",
    )
    parser.add_argument(
        "--nomad-jwks-url",
        help=f"where Vault fetches Nomad's workload-identity keys (default: {JWKS_URL_ENV}, else with NOMAD_ADDR set "
        f"{DEFAULT_NOMAD_JWKS_URL}: the Nomad server beside Vault; verified against NOMAD_CACERT)",
    )
    parser.add_argument("--wait-s", type=float, default=10.0, help="wait this long for the server to be ready")
    args = parser.parse_args(argv)
    try:
        addr = vault_addr()
        jwks_url, source = nomad_jwks_url(args.nomad_jwks_url)
        ca_pem = _nomad_ca_pem(os.environ.get("NOMAD_CACERT"))
        vault = client(addr, read_token(args.token_file))
        wait_for_vault(vault, args.wait_s)
        print(f"bootstrapping {addr}")
        if jwks_url:
            trust = "NOMAD_CACERT" if ca_pem else "Vault's system CAs (NOMAD_CACERT is not set)"
            print(f"Nomad JWKS: {jwks_url} ({source}), verified against {trust}")
        report = run_bootstrap(
            vault,
            timing=profile(args.profile),
            approle_dir=args.approle_dir,
            nomad_jwks_url=jwks_url,
            nomad_ca_pem=ca_pem,
            ip_san_cidrs=args.ip_san_cidrs or DEFAULT_IP_SAN_CIDRS,
            admin_token_seeds=admin_token_seed_files(args.admin_token_seed_dir),
        )
    except VaultToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except hvac_errors.Forbidden:
        print("error: the token is not allowed to configure Vault (use a root or admin token)", file=sys.stderr)
        return 2
    except hvac_errors.VaultError as exc:
        print(f"error: Vault refused a request: {exc.__class__.__name__}: {str(exc)[:300]}", file=sys.stderr)
        return 1
    print(f"{len(report.changes)} changes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
