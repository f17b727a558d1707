"""Programs beyond the catalog services: monitoring (and, when present, secrets) components."""

from __future__ import annotations

from scripts.local.platform_binaries import require_binary
from scripts.local.programs import ProgramSpec, StateLayout, local_url
from services.common import catalog
from services.common.profiles import TimingProfile


def monitoring_programs(state: StateLayout, timing: TimingProfile) -> list[ProgramSpec]:
    from scripts.monitoring import write_local_config

    paths = write_local_config(state.root, timing)
    prometheus_port = catalog.port(catalog.infra("prometheus").port)
    alertmanager_port = catalog.port(catalog.infra("alertmanager").port)
    (state.root / "prometheus" / "data").mkdir(parents=True, exist_ok=True)
    (state.root / "alertmanager" / "data").mkdir(parents=True, exist_ok=True)
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
            ),
            ports=(prometheus_port,),
            health_url=local_url(prometheus_port, "/-/ready"),
            priority=300,
            kind="monitoring",
        ),
        ProgramSpec(
            name="alertmanager",
            command=(
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


def extension_programs(state: StateLayout, timing: TimingProfile) -> list[ProgramSpec]:
    """OpenBao and the secrets renderer first (services read their files), then monitoring."""
    from scripts.vault.local import prepare

    return [*prepare(state.root, timing).programs, *monitoring_programs(state, timing)]


def service_env_additions(state: StateLayout, timing: TimingProfile) -> dict[str, dict[str, str]]:
    """Per-service environment from the Vault side: certificate, key, CA and JWT key files."""
    from scripts.vault.local import prepare

    return prepare(state.root, timing).service_env
