"""What the local platform needs from the Vault side: two programs and per-service environment.

    from scripts.vault.local import prepare
    vault = prepare(state.root, timing)          # before writing supervisord.conf
    programs = [*vault.programs, ...]            # openbao (priority 10), vault-agent (priority 20)
    env = {**service_environment(...), **vault.service_env.get(spec.name, {})}

``prepare`` creates ``<state>/vault/`` (0700) and, once, the root token file (0600) that only the
``openbao`` wrapper and the agent's bootstrap step read. No program gets the token in its argv
or environment from supervisor, and the dev server's banner is redacted before it reaches the log.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts.local.programs import ProgramSpec, local_url
from scripts.vault.agent import AGENT_PORT, secrets_folder
from scripts.vault.devserver import ensure_token_file
from scripts.vault.identity_requests import requests_for
from services.common import catalog
from services.common.config import TlsFiles
from services.common.profiles import TimingProfile


@dataclass(frozen=True, slots=True)
class VaultLocal:
    addr: str
    root_token_file: Path
    agent_port: int
    programs: tuple[ProgramSpec, ...]
    # Per catalog service: FIREDRILL_TLS_{CERT,KEY,CA}_FILE, and FIREDRILL_JWT_PUBLIC_KEYS_FILE
    # (token verifiers) / FIREDRILL_JWT_KEY_FILE (auth) / FIREDRILL_ADMIN_TOKEN_FILE (every service: its own).
    service_env: dict[str, dict[str, str]]
    # Client certificates for the scraper and for operator tooling (probes, drills, traffic).
    prometheus_tls: TlsFiles
    operator_tls: TlsFiles


def tls_files(state_dir: Path, identity: str) -> TlsFiles:
    folder = secrets_folder(state_dir, identity)
    return TlsFiles(folder / "cert.pem", folder / "key.pem", folder / "ca.pem")


def service_env(state_dir: Path, service: str) -> dict[str, str]:
    """The files the agent renders for ``service``, by the variables that name them (as on a cluster)."""
    files = tls_files(state_dir, service)
    folder = secrets_folder(state_dir, service)
    env = files.as_environment()
    for kv in requests_for(service).kv:
        env[kv.env] = str(folder / kv.file)
    return env


def root_token_file(state_dir: Path) -> Path:
    return state_dir.resolve() / "vault" / "root-token"


def openbao_addr() -> str:
    """The local OpenBao's API (its catalog port, shifted by FIREDRILL_PORT_OFFSET)."""
    return local_url(catalog.port(catalog.infra("openbao").port))


def prepare(state_dir: Path, timing: TimingProfile) -> VaultLocal:
    state_dir = state_dir.resolve()
    token_file = root_token_file(state_dir)
    token_file.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(token_file.parent, 0o700)
    ensure_token_file(token_file)
    port = catalog.port(catalog.infra("openbao").port)
    addr = openbao_addr()
    agent_port = catalog.port(AGENT_PORT)
    openbao = ProgramSpec(
        name="openbao",
        command=(
            sys.executable,
            "-m",
            "scripts.vault.devserver",
            "--token-file",
            str(token_file),
            "--listen",
            f"127.0.0.1:{port}",
        ),
        ports=(port, port + 1),  # API and the dev server's cluster listener
        health_url=local_url(port, "/v1/sys/health"),
        priority=10,
        kind="secrets",
    )
    agent = ProgramSpec(
        name="vault-agent",
        command=(
            sys.executable,
            "-m",
            "scripts.vault.agent",
            "--state-dir",
            str(state_dir),
            "--addr",
            addr,
            "--profile",
            timing.name,
            "--bootstrap-token-file",
            str(token_file),
            "--metrics-port",
            str(agent_port),
        ),
        ports=(agent_port,),
        health_url=local_url(agent_port, "/health"),
        env={"PYTHONUNBUFFERED": "1"},
        priority=20,
        kind="secrets",
    )
    return VaultLocal(
        addr=addr,
        root_token_file=token_file,
        agent_port=agent_port,
        programs=(openbao, agent),
        service_env={name: service_env(state_dir, name) for name in catalog.service_names()},
        prometheus_tls=tls_files(state_dir, "prometheus"),
        operator_tls=tls_files(state_dir, "operator"),
    )


def rendered_identity(state_dir: Path, identity: str) -> TlsFiles | None:
    """``identity``'s certificate, key and CA in ``state_dir``, or None when they are not rendered."""
    files = tls_files(state_dir.resolve(), identity)
    return files if all(p.is_file() for p in (files.cert, files.key, files.ca)) else None


def operator_identity(state_dir: Path) -> TlsFiles | None:
    """The operator's certificate, key and CA in ``state_dir``, or None when they are not rendered."""
    return rendered_identity(state_dir, "operator")
