"""What the local platform runs: one ProgramSpec per supervised process."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from services.common import catalog
from services.common.catalog import ServiceSpec


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    name: str
    command: tuple[str, ...]
    # Ports the program listens on (checked free before start), and its health URL.
    ports: tuple[int, ...]
    health_url: str | None
    env: dict[str, str] = field(default_factory=dict)
    # Lower starts first (supervisor priority): secrets, then services, then monitoring.
    priority: int = 500
    stop_wait_s: int = 15
    kind: str = "service"


@dataclass(frozen=True, slots=True)
class StateLayout:
    """Every file of the local platform lives under one state directory."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def registry(self) -> Path:
        return self.root / "registry"

    @property
    def prometheus_targets(self) -> Path:
        """Prometheus' file-discovery folder (the registry and the restarter write targets here)."""
        return self.root / "prometheus" / "targets"

    @property
    def traces(self) -> Path:
        return self.root / "traces"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def supervisor_conf(self) -> Path:
        return self.root / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        return self.root / "supervisor.sock"

    @property
    def supervisor_pidfile(self) -> Path:
        return self.root / "supervisord.pid"

    @property
    def admin_token_file(self) -> Path:
        """response's admin token (its fault switch and debugging endpoints)."""
        return self.admin_token("response")

    def admin_token(self, service: str) -> Path:
        """``service``'s own admin token, rendered by the vault agent from ``secret/firedrill/<service>/admin``."""
        return self.secrets / service / "admin-token"

    def data(self, service: str) -> Path:
        return self.root / "data" / service

    def trace_file(self, service: str) -> Path:
        return self.traces / f"{service}.jsonl"


def local_url(port: int, path: str = "", scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{port}{path}"


def variables_read_by(spec: ServiceSpec) -> frozenset[str]:
    """The variables a service declares it reads (``ENV_VARS`` of its config module)."""
    config = importlib.import_module(f"{spec.module}.config")
    return frozenset(config.ENV_VARS)


def service_environment(spec: ServiceSpec, state: StateLayout, profile: str) -> dict[str, str]:
    """The environment a catalog service gets on the local platform (no secret values: files only).

    Only variables the service reads are set, so its supervisor entry documents its real inputs.
    """
    env = {
        "FIREDRILL_STATE_DIR": str(state.root),
        "FIREDRILL_PROFILE": profile,
        "FIREDRILL_BIND_HOST": "127.0.0.1",
        "FIREDRILL_PORT": str(catalog.port(spec.port)),
        "FIREDRILL_DISCOVERY": "local",
        "FIREDRILL_REGISTRY_DIR": str(state.registry),
        "FIREDRILL_DATA_DIR": str(state.data(spec.name)),
        "FIREDRILL_TRACE_FILE": str(state.trace_file(spec.name)),
        "FIREDRILL_PROMETHEUS_URL": local_url(catalog.port(catalog.infra("prometheus").port)),
        # The local platform seeds demo data in every profile (auth has no demo user by default
        # outside the drill profile, so `FIREDRILL_PROFILE=production make up` needs it named).
        "FIREDRILL_DEMO_USER": "demo",
        "PYTHONUNBUFFERED": "1",
    }
    if spec.metrics_port is not None:
        env["FIREDRILL_METRICS_PORT"] = str(catalog.port(spec.metrics_port))
    if spec.http_port is not None:
        env["FIREDRILL_HTTP_PORT"] = str(catalog.port(spec.http_port))
    env["FIREDRILL_ADMIN_TOKEN_FILE"] = str(state.admin_token(spec.name))
    reads = variables_read_by(spec) | {"FIREDRILL_STATE_DIR", "PYTHONUNBUFFERED"}
    return {key: value for key, value in env.items() if key in reads}


def service_program(spec: ServiceSpec, state: StateLayout, profile: str, extra_env: dict[str, str]) -> ProgramSpec:
    ports = tuple(catalog.port(p) for p in (spec.port, spec.metrics_port, spec.http_port) if p is not None)
    return ProgramSpec(
        name=spec.name,
        command=(sys.executable, "-m", spec.module),
        ports=ports,
        health_url=local_url(catalog.port(spec.scrape_port), spec.health_path),
        env={**service_environment(spec, state, profile), **extra_env},
        priority=200 if spec.depends_on else 100,
    )
