"""Writing the generated files: the committed ones (both profiles) and the local platform's."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from services.common import catalog
from services.common.config import TlsFiles
from services.common.profiles import PROFILES, TimingProfile
from services.common.tls import service_dns_name

from .alertmanager_config import ReceiverSecrets, render_alertmanager_config
from .prometheus_config import ROLLOUT_TARGETS, render_prometheus_config
from .rule_tests import promtool_test_documents
from .rules import rule_documents
from .settings import LINKS, Links
from .yamlio import dump

REPO = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO / "alertmanager" / "templates"
INCIDENTS_PATH = "/alerts"
# On the cluster Alertmanager reaches the receiver through Consul DNS.
CLUSTER_INCIDENTS_URL = f"http://{service_dns_name('incidents')}:{catalog.service('incidents').port}{INCIDENTS_PATH}"


@dataclass(frozen=True, slots=True)
class MonitoringPaths:
    prometheus_config: Path
    alertmanager_config: Path
    rules_dir: Path
    file_sd_dir: Path


def local_incidents_url(scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{catalog.port(catalog.service('incidents').port)}{INCIDENTS_PATH}"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def committed_files(repo: Path = REPO) -> dict[Path, str]:
    """Every committed generated file and its content, for both profiles (no port offset, no secrets)."""
    out: dict[Path, str] = {}
    for name, profile in sorted(PROFILES.items()):
        prom = repo / "prometheus" / "generated" / name
        for file_name, doc in rule_documents(profile, links=LINKS).items():
            out[prom / "rules" / file_name] = dump(doc)
        for file_name, doc in promtool_test_documents(profile, links=LINKS).items():
            out[prom / "tests" / file_name] = dump(doc)
        out[prom / "prometheus.yml"] = dump(render_prometheus_config(profile, "file"))
        out[prom / "prometheus-consul.yml"] = dump(render_prometheus_config(profile, "consul"))
        incidents = f"http://127.0.0.1:{catalog.service('incidents').port}{INCIDENTS_PATH}"
        if name == "production":
            incidents = CLUSTER_INCIDENTS_URL
        am = render_alertmanager_config(profile, incidents, templates_dir="../../templates")
        out[repo / "alertmanager" / "generated" / name / "alertmanager.yml"] = dump(am)
    return out


def render_committed(repo: Path = REPO) -> list[Path]:
    """Rewrite the committed generated files; delete generated files nothing produces any more."""
    files = committed_files(repo)
    for root in (repo / "prometheus" / "generated", repo / "alertmanager" / "generated"):
        if root.exists():
            for old in root.rglob("*.yml"):
                if old not in files:
                    old.unlink()
    for path, text in files.items():
        _write(path, text)
    return sorted(files)


def stale_files(repo: Path = REPO) -> list[Path]:
    """Generated files that differ from what the generator produces now (or are missing/extra)."""
    files = committed_files(repo)
    stale = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    for root in (repo / "prometheus" / "generated", repo / "alertmanager" / "generated"):
        if root.exists():
            stale += [p for p in root.rglob("*.yml") if p not in files]
    return sorted(stale)


def local_paths(state_dir: Path) -> MonitoringPaths:
    """Where write_local_config puts things, without writing anything."""
    state_dir = state_dir.resolve()
    prom_dir = state_dir / "prometheus"
    return MonitoringPaths(
        prom_dir / "prometheus.yml",
        state_dir / "alertmanager" / "alertmanager.yml",
        prom_dir / "rules",
        prom_dir / "targets",
    )


def write_local_config(
    state_dir: Path,
    profile: TimingProfile,
    *,
    links: Links | None = None,
    secrets: ReceiverSecrets | None = None,
    webhook_tls: TlsFiles | None = None,
) -> MonitoringPaths:
    """Everything the local Prometheus and Alertmanager need, under state_dir, with the port offset.

    Prometheus: ``prometheus/prometheus.yml``, ``prometheus/rules/``, file discovery from
    ``prometheus/targets/*.json``. Alertmanager: ``alertmanager/alertmanager.yml`` and its
    templates; Slack/PagerDuty secrets from the environment go to ``alertmanager/secrets/`` (0600).
    """
    state_dir = state_dir.resolve()
    prom_dir = state_dir / "prometheus"
    rules_dir = prom_dir / "rules"
    targets_dir = prom_dir / "targets"
    am_dir = state_dir / "alertmanager"
    targets_dir.mkdir(parents=True, exist_ok=True)
    (prom_dir / ROLLOUT_TARGETS).mkdir(parents=True, exist_ok=True)  # watched by the canary-rollout job
    links = links or Links.from_env(f"http://127.0.0.1:{catalog.port(catalog.infra('grafana').port)}")
    secrets = secrets if secrets is not None else ReceiverSecrets.from_env(am_dir / "secrets")

    if rules_dir.exists():
        shutil.rmtree(rules_dir)
    for file_name, doc in rule_documents(profile, links=links).items():
        _write(rules_dir / file_name, dump(doc))
    prometheus_config = prom_dir / "prometheus.yml"
    _write(
        prometheus_config,
        dump(
            render_prometheus_config(
                profile,
                "file",
                rules_dir=str(rules_dir),
                targets_dir=str(targets_dir),
                prometheus_address=f"127.0.0.1:{catalog.port(catalog.infra('prometheus').port)}",
                alertmanager_address=f"127.0.0.1:{catalog.port(catalog.infra('alertmanager').port)}",
                vault_agent_address=f"127.0.0.1:{catalog.port(catalog.infra('vault-agent').port)}",
            )
        ),
    )
    templates = am_dir / "templates"
    if templates.exists():
        shutil.rmtree(templates)
    shutil.copytree(TEMPLATES_DIR, templates)
    alertmanager_config = am_dir / "alertmanager.yml"
    _write(
        alertmanager_config,
        dump(
            render_alertmanager_config(
                profile,
                local_incidents_url("https" if webhook_tls else "http"),
                secrets=secrets,
                templates_dir=str(templates),
                webhook_tls=webhook_tls,
            )
        ),
    )
    return MonitoringPaths(prometheus_config, alertmanager_config, rules_dir, targets_dir)
