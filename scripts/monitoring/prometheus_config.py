"""prometheus.yml for the local platform (file discovery) and the cluster (Consul discovery)."""

from __future__ import annotations

import posixpath
from typing import Any, Literal

from services.common import catalog
from services.common.profiles import TimingProfile, duration

from .recording import HEALTH_JOB, JOB
from .rules import RULE_FILES

Discovery = Literal["file", "consul"]


def _globals(profile: TimingProfile) -> dict[str, Any]:
    return {
        "scrape_interval": duration(profile.scrape_interval_s),
        "scrape_timeout": duration(profile.scrape_timeout_s),
        "evaluation_interval": duration(profile.evaluation_interval_s),
    }


# The one series the health scrape asks the services for (prometheus_client's ``name[]`` filter), so
# a scrape every few seconds costs a few hundred bytes instead of the whole /metrics page.
HEALTH_PROBE_METRIC = "process_start_time_seconds"


def health_job(profile: TimingProfile, services_job: dict[str, Any]) -> dict[str, Any]:
    """The services' targets again, scraped every health_scrape_interval_s for `up` alone.

    Same discovery and relabelling as the metrics job (so the same `service` and `instance`
    labels); every scraped sample is dropped, and metric_relabel_configs never touches the `up`
    Prometheus records for each scrape, which is all the "down" alerts read.
    """
    return {
        **{k: v for k, v in services_job.items() if k != "job_name"},
        "job_name": HEALTH_JOB,
        "scrape_interval": duration(profile.health_scrape_interval_s),
        "scrape_timeout": duration(profile.health_scrape_timeout_s),
        "params": {"name[]": [HEALTH_PROBE_METRIC]},
        "metric_relabel_configs": [{"source_labels": ["__name__"], "regex": ".+", "action": "drop"}],
    }


def _file_jobs(
    profile: TimingProfile, targets_dir: str, prometheus: str, alertmanager: str, vault_agent: str | None
) -> list[dict[str, Any]]:
    agent = [{"job_name": "vault-agent", "static_configs": [{"targets": [vault_agent]}]}] if vault_agent else []
    services: dict[str, Any] = {
        # One target per service instance, written by the local registry; a stopped service
        # keeps its target, so it shows as up == 0.
        "job_name": JOB,
        "file_sd_configs": [
            {"files": [f"{targets_dir}/*.json"], "refresh_interval": duration(max(5, profile.scrape_interval_s))}
        ],
    }
    return [
        services,
        health_job(profile, services),
        {"job_name": "prometheus", "static_configs": [{"targets": [prometheus]}]},
        {"job_name": "alertmanager", "static_configs": [{"targets": [alertmanager]}]},
        *agent,
        rollout_job(profile, targets_dir),
    ]


# A canary rollout's CLI registers its /metrics here for as long as it runs (scripts/canary/metrics_endpoint.py).
ROLLOUT_JOB = "canary-rollout"
ROLLOUT_TARGETS = "rollout-targets"


def rollout_job(profile: TimingProfile, targets_dir: str) -> dict[str, Any]:
    """The rollout's own metrics, from a folder beside the services' targets (file discovery)."""
    folder = posixpath.join(posixpath.dirname(targets_dir), ROLLOUT_TARGETS)
    return {
        "job_name": ROLLOUT_JOB,
        "file_sd_configs": [
            {"files": [f"{folder}/*.json"], "refresh_interval": duration(max(5, profile.scrape_interval_s))}
        ],
    }


def _consul_sd(server: str, services: list[str]) -> dict[str, Any]:
    return {"server": server, "services": services}


# The cluster CA (public certificate) as the Prometheus task sees it: a read-only Nomad host volume
# that terraform's bootstrap fills on every client (jobs/monitoring.nomad.hcl mounts it here).
CLUSTER_CA_DIR = "/etc/firedrill/cluster-ca"
CLUSTER_CA_FILE = f"{CLUSTER_CA_DIR}/ca.pem"


def _nomad_job(consul_server: str, role: str) -> dict[str, Any]:
    """Nomad's /v1/metrics (no ACL token needed) over the agents' TLS HTTP API.

    Every agent of a role shares one certificate whose name is ``<role>.global.nomad``, so the scrape
    verifies that name against the cluster CA while it connects to the agent's address.
    """
    return {
        "job_name": f"nomad-{role}",
        "metrics_path": "/v1/metrics",
        "params": {"format": ["prometheus"]},
        "scheme": "https",
        "tls_config": {"ca_file": CLUSTER_CA_FILE, "server_name": f"{role}.global.nomad"},
        "consul_sd_configs": [_consul_sd(consul_server, ["nomad" if role == "server" else "nomad-client"])],
        "relabel_configs": [
            {"source_labels": ["__meta_consul_tags"], "regex": ".*,http,.*", "action": "keep"},
            {"source_labels": ["__meta_consul_node"], "target_label": "node"},
            {"target_label": "role", "replacement": role},
        ],
    }


def _vault_job(consul_server: str) -> dict[str, Any]:
    """Vault's /v1/sys/metrics on every Vault server, over TLS, without a token.

    The listener sets ``unauthenticated_metrics_access`` (terraform's bootstrap); Vault registers
    itself in Consul as ``vault`` at its api_addr, and its certificate carries vault.service.consul.
    """
    return {
        "job_name": "vault",
        "metrics_path": "/v1/sys/metrics",
        "params": {"format": ["prometheus"]},
        "scheme": "https",
        "tls_config": {"ca_file": CLUSTER_CA_FILE, "server_name": "vault.service.consul"},
        "consul_sd_configs": [_consul_sd(consul_server, ["vault"])],
        "relabel_configs": [{"source_labels": ["__meta_consul_node"], "target_label": "node"}],
    }


# The scrape jobs of the cluster's own agents (the cluster dashboard reads these).
CLUSTER_JOBS = ("nomad-server", "nomad-client", "consul", "vault")


def _consul_jobs(profile: TimingProfile, consul_server: str) -> list[dict[str, Any]]:
    names = list(catalog.service_names())
    services: dict[str, Any] = {
        # Consul lists only passing instances, so a stopped service vanishes: ServiceDown also
        # fires on absent(up{service=…}) for every catalog service.
        "job_name": JOB,
        "consul_sd_configs": [_consul_sd(consul_server, names)],
        "relabel_configs": [
            {"source_labels": ["__meta_consul_service"], "target_label": "service"},
            {"source_labels": ["__meta_consul_service_id"], "target_label": "instance_id"},
            {"source_labels": ["__meta_consul_node"], "target_label": "node"},
            # The running version from the service meta: canary analysis compares versions by it.
            {
                "source_labels": ["__meta_consul_service_metadata_version"],
                "regex": "(.+)",
                "target_label": "version",
            },
            {
                # gRPC services serve /metrics on a separate port named in the service meta.
                "source_labels": ["__meta_consul_service_address", "__meta_consul_service_metadata_metrics_port"],
                "regex": "(.+);([0-9]+)",
                "replacement": "$1:$2",
                "target_label": "__address__",
            },
            {
                "source_labels": ["__meta_consul_service_metadata_metrics_path"],
                "regex": "(.+)",
                "target_label": "__metrics_path__",
            },
        ],
    }
    return [
        services,
        health_job(profile, services),
        *(_nomad_job(consul_server, role) for role in ("server", "client")),
        {
            "job_name": "consul",
            "metrics_path": "/v1/agent/metrics",
            "params": {"format": ["prometheus"]},
            "consul_sd_configs": [_consul_sd(consul_server, ["consul"])],
            "relabel_configs": [
                # The `consul` service advertises the server RPC port; metrics are on the HTTP API.
                {
                    "source_labels": ["__meta_consul_address"],
                    "regex": "(.+)",
                    "replacement": "$1:8500",
                    "target_label": "__address__",
                },
                {"source_labels": ["__meta_consul_node"], "target_label": "node"},
            ],
        },
        _vault_job(consul_server),
        {
            "job_name": "prometheus",
            "consul_sd_configs": [_consul_sd(consul_server, ["prometheus"])],
        },
        {
            "job_name": "alertmanager",
            "consul_sd_configs": [_consul_sd(consul_server, ["alertmanager"])],
        },
        {
            # A rollout announces its /metrics in Consul while it runs (scripts/canary/consul_registration.py).
            "job_name": ROLLOUT_JOB,
            "consul_sd_configs": [_consul_sd(consul_server, [ROLLOUT_JOB])],
            "relabel_configs": [
                {"source_labels": ["__meta_consul_service_metadata_rollout_service"], "target_label": "rollout_service"}
            ],
        },
    ]


def render_prometheus_config(
    profile: TimingProfile,
    discovery: Discovery = "file",
    *,
    rules_dir: str = "rules",
    targets_dir: str = "targets",
    prometheus_address: str = f"127.0.0.1:{catalog.infra('prometheus').port}",
    alertmanager_address: str = f"127.0.0.1:{catalog.infra('alertmanager').port}",
    vault_agent_address: str | None = None,
    consul_server: str = "127.0.0.1:8500",
    external_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Prometheus configuration document (paths relative to the config file unless absolute)."""
    config: dict[str, Any] = {"global": _globals(profile)}
    if external_labels:
        config["global"]["external_labels"] = dict(external_labels)
    config["rule_files"] = [f"{rules_dir}/{name}" for name in RULE_FILES]
    if discovery == "file":
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_address]}]}]}
        config["scrape_configs"] = _file_jobs(
            profile, targets_dir, prometheus_address, alertmanager_address, vault_agent_address
        )
    elif discovery == "consul":
        config["alerting"] = {"alertmanagers": [{"consul_sd_configs": [_consul_sd(consul_server, ["alertmanager"])]}]}
        config["scrape_configs"] = _consul_jobs(profile, consul_server)
    else:
        raise ValueError(f"discovery must be 'file' or 'consul', got {discovery!r}")
    return config
