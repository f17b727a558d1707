"""Shared pieces of the Vault tooling: names, the hvac client, where the token comes from.

The token never travels on a command line: it is read from ``VAULT_TOKEN`` (or OpenBao's
``BAO_TOKEN``), or from a file named by ``--token-file`` / ``VAULT_TOKEN_FILE``, or from
``~/.vault-token``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import hvac

from services.common import catalog
from services.common.tls import OBSERVERS

KV_MOUNT = "secret"
PKI_ROOT = "pki"
PKI_INT = "pki_int"
APPROLE_MOUNT = "approle"
NOMAD_JWT_MOUNT = "jwt-nomad"
JWT_KEYS_PATH = "firedrill/auth/jwt"
JWT_PUBLIC_PATH = "firedrill/public/jwt"
ADMIN_TOKEN_FIELD = "token"  # noqa: S105 (a field name, not a secret)
GRAFANA_PATH = "firedrill/grafana"

# Cluster workloads that read secrets but serve no mTLS (Grafana's admin password).
EXTRA_WORKLOADS: tuple[str, ...] = ("grafana",)


class VaultToolError(RuntimeError):
    """Something the operator must fix (address, token, permissions); the message says what."""


def admin_token_path(service: str) -> str:
    """Where ``service``'s own admin token lives in KV: under its own folder, which only its policy reads."""
    return f"firedrill/{service}/admin"


# response's admin token also guards its fault switch (/admin/faults).
ADMIN_TOKEN_PATH = admin_token_path("response")


def policy_name(identity: str) -> str:
    return f"firedrill-{identity}"


def identities() -> tuple[str, ...]:
    """Everyone who gets a certificate: the catalog services, then the observers."""
    return (*catalog.service_names(), *OBSERVERS)


def vault_addr(environ: Mapping[str, str] | None = None, default: str | None = None) -> str:
    env = os.environ if environ is None else environ
    addr = env.get("VAULT_ADDR") or env.get("BAO_ADDR") or default
    if not addr:
        raise VaultToolError("set VAULT_ADDR (e.g. http://127.0.0.1:8200) to the Vault or OpenBao API")
    return addr.rstrip("/")


def read_token(token_file: Path | None = None, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if token_file is None:
        direct = env.get("VAULT_TOKEN") or env.get("BAO_TOKEN")
        if direct:
            return direct.strip()
        named = env.get("VAULT_TOKEN_FILE")
        token_file = Path(named) if named else Path.home() / ".vault-token"
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        raise VaultToolError(
            f"no Vault token: set VAULT_TOKEN, or VAULT_TOKEN_FILE / --token-file to a file holding it "
            f"({token_file}: {exc.strerror})"
        ) from None
    if not token:
        raise VaultToolError(f"the token file {token_file} is empty")
    return token


def client(
    addr: str, token: str | None = None, timeout_s: float = 5.0, verify: bool | str | None = None
) -> hvac.Client:
    """An hvac client; ``verify`` is a CA bundle path for HTTPS (None: hvac's default, VAULT_CACERT)."""
    return hvac.Client(url=addr, token=token, timeout=timeout_s, verify=verify)
