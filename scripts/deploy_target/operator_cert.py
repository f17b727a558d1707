"""The operator's client certificate on a cluster: issued by Vault's ``pki_int`` for the ``operator`` role.

Every Firedrill listener that serves an API over mTLS requires a client certificate and checks the
identity in it (``ServiceSpec.callers``); the operator identity is allowed everywhere. Locally the
Vault agent renders it into the state folder. On a cluster the operator's tooling (drills' fault
switch and logins, ``admin_call``) asks Vault for a short-lived one with the operator's own Vault
token, as ``make vault-bootstrap`` set the role up, and keeps it in a private folder (0700, the key
0600) that is removed when the process ends: never in the repo, argv or environment.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from scripts.deploy_target.interface import PlatformError
from scripts.vault.identity_requests import requests_for
from services.common.config import TlsFiles

OPERATOR = "operator"
PKI_MOUNT = "pki_int"
TTL_S = 3600  # an operator session; a drill that outlives it asks again (a new platform object)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")


def issue_operator_tls(client: Any, folder: Path | None = None) -> TlsFiles:
    """Issue the operator certificate with ``client`` (an hvac client holding the operator's token)."""
    request = requests_for(OPERATOR).pki
    if request is None:
        raise PlatformError("the operator identity asks for no certificate (scripts/vault/identity_requests.py)")
    where = f"{PKI_MOUNT}/issue/{request.role}"
    params = request.data(TTL_S)
    try:
        answer = client.secrets.pki.generate_certificate(
            name=request.role, common_name=params.pop("common_name"), extra_params=params, mount_point=PKI_MOUNT
        )
    except Exception as exc:  # hvac raises many kinds (Forbidden, InvalidPath, transport errors)
        raise PlatformError(f"issuing the operator certificate from {where} failed: {exc}") from exc
    data = answer.get("data") or {}
    chain = data.get("ca_chain") or [data.get("issuing_ca", "")]
    if not data.get("certificate") or not data.get("private_key") or not any(chain):
        raise PlatformError(f"{where} answered without a certificate, key or CA")
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="firedrill-operator-"))  # 0700
        atexit.register(shutil.rmtree, folder, True)
    files = TlsFiles(folder / "cert.pem", folder / "key.pem", folder / "ca.pem")
    _write_private(files.key, data["private_key"])
    _write_private(files.cert, data["certificate"])
    _write_private(files.ca, "\n".join(pem.strip() for pem in chain if pem))
    return files
