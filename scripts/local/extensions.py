"""Programs beyond the catalog services: monitoring (and, when present, secrets) components."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from scripts.local.binaries import require_binary
from scripts.local.programs import ProgramSpec, StateLayout, local_url
from services.common import catalog
from services.common.config import TlsFiles
from services.common.profiles import TimingProfile


def monitoring_programs(
    state: StateLayout, timing: TimingProfile, webhook_tls: TlsFiles | None, *, write_config: bool
) -> list[ProgramSpec]:
    """Prometheus and Alertmanager; their config files are (re)written only when starting."""
    from scripts.monitoring.files import MonitoringPaths, local_paths, write_local_config

    paths: MonitoringPaths = local_paths(state.root)
    if write_config:
        paths = write_local_config(state.root, timing, webhook_tls=webhook_tls)
        (state.root / "prometheus" / "data").mkdir(parents=True, exist_ok=True)
        (state.root / "alertmanager" / "data").mkdir(parents=True, exist_ok=True)
    prometheus_port = catalog.port(catalog.infra("prometheus").port)
    alertmanager_port = catalog.port(catalog.infra("alertmanager").port)
    return [
        ProgramSpec(
            name="prometheus",
            command=(
                require_binary("prometheus"),
                f"--config.file={paths.prometheus_config}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                f"--storage.tsdb.path={state.root / 'prometheus' / 'data'}",
                "--storage.tsdb.retention.time=2d",
                "--web.enable-lifecycle",
                "--enable-feature=exemplar-storage",
            ),
            ports=(prometheus_port,),
            health_url=local_url(prometheus_port, "/-/ready"),
            priority=300,
            kind="monitoring",
        ),
        ProgramSpec(
            name="alertmanager",
            command=(
                *wait_for_files(webhook_tls),
                require_binary("prometheus-alertmanager", "alertmanager"),
                f"--config.file={paths.alertmanager_config}",
                f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                f"--storage.path={state.root / 'alertmanager' / 'data'}",
                "--cluster.listen-address=",
            ),
            ports=(alertmanager_port,),
            health_url=local_url(alertmanager_port, "/-/ready"),
            priority=300,
            kind="monitoring",
        ),
    ]


# How long a launcher waits for the agent's first certificates. Longer than `make up`'s own wait on
# purpose: on a loaded machine the first render can take over a minute, and a launcher that gave up
# would only be started again after a back-off; `make up` reports a program still waiting by name.
CERTIFICATE_WAIT_S = 300


def wait_for_files(tls: TlsFiles | None) -> tuple[str, ...]:
    """A launcher prefix that waits for the certificate files a program's config names."""
    if tls is None:
        return ()
    waits = [arg for path in (tls.cert, tls.key, tls.ca) for arg in ("--wait-for", str(path))]
    return (sys.executable, "-m", "scripts.local.launch", *waits, "--timeout", str(CERTIFICATE_WAIT_S), "--")


@dataclass(frozen=True, slots=True)
class Extensions:
    programs: list[ProgramSpec]
    # Per catalog service: certificate, key, CA and JWT key files rendered from Vault.
    service_env: dict[str, dict[str, str]]


def extensions(state: StateLayout, timing: TimingProfile, *, write_config: bool) -> Extensions:
    """OpenBao and the secrets renderer first (services read their files), then monitoring."""
    from scripts.vault.local import prepare, tls_files

    vault = prepare(state.root, timing)
    monitoring = monitoring_programs(
        state, timing, webhook_tls=tls_files(state.root, "alertmanager"), write_config=write_config
    )
    return Extensions([*vault.programs, *monitoring], vault.service_env)
