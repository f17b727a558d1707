"""The cluster dashboard: the Nomad, Consul and Vault servers the services run on.

Its metric names are the products' documented ones (cluster_telemetry.py); the scrape jobs that
collect them are the Consul-discovery jobs of prometheus_config.py. Raft timers are summaries in
milliseconds, so the panels read a quantile series and use the ``ms`` unit.
"""

from __future__ import annotations

from .alerts import ALERTING_UID, OVERVIEW_UID, PLATFORM_UID
from .grafana_kit import (
    Board,
    Query,
    above,
    below,
    board,
    informational,
    nonzero,
    stat_panel,
    states,
    timeseries_panel,
    to_dashboard,
)
from .prometheus_config import CLUSTER_JOBS

CLUSTER_UID = "firedrill-cluster"
RATE = "[$__rate_interval]"
# Consul's telemetry guide: a healthy cluster's leader lastContact stays under 200 ms.
LAST_CONTACT_LIMIT_MS = 200


def cluster() -> Board:
    jobs = "|".join(CLUSTER_JOBS)
    return board(
        CLUSTER_UID,
        "Firedrill — cluster (Nomad, Consul, Vault)",
        "Health of the servers under the services: Raft leadership, Consul's autopilot, Vault's seal, Nomad's "
        "scheduling and clients. Only a cluster has these series; the local platform shows no data here.",
        (
            stat_panel(
                "Agents scraped",
                "Whether Prometheus scrapes every Nomad, Consul and Vault agent's telemetry endpoint (per job, the "
                "worst instance).",
                (Query(f'min by (job) (up{{job=~"{jobs}"}})', "{{job}}"),),
                "none",
                below(1),
                mappings=states("DOWN", "UP"),
                width=24,
                height=4,
            ),
            stat_panel(
                "Consul autopilot",
                "Autopilot's view of the Consul servers: UNHEALTHY when any server is unhealthy (only the leader "
                "reports; followers report NaN).",
                (Query("max(consul_autopilot_healthy)"),),
                "none",
                below(1),
                mappings=states("UNHEALTHY", "HEALTHY"),
                width=6,
            ),
            stat_panel(
                "Consul failure tolerance",
                "Voting Consul servers the cluster can lose and keep working: 0 means one more loss is an outage.",
                (Query("max(consul_autopilot_failure_tolerance)"),),
                "none",
                below(1),
                width=6,
            ),
            stat_panel(
                "Vault sealed",
                "Whether each Vault server is unsealed; a SEALED server serves no secrets (VaultUnreachable follows "
                "in the services).",
                (Query('min by (node) (vault_core_unsealed{job="vault"})', "{{node}}"),),
                "none",
                below(1),
                mappings=states("SEALED", "UNSEALED"),
                width=6,
            ),
            stat_panel(
                "Vault autopilot",
                "Autopilot's view of Vault's integrated storage (Raft) servers.",
                (Query("max(vault_autopilot_healthy)"),),
                "none",
                below(1),
                mappings=states("UNHEALTHY", "HEALTHY"),
                width=6,
            ),
            timeseries_panel(
                "Raft leader last contact (p99)",
                f"Time since each product's Raft leader last reached its followers; above {LAST_CONTACT_LIMIT_MS} ms "
                "leadership is at risk (slow disks, network trouble between servers).",
                (
                    Query('max(nomad_raft_leader_lastContact{quantile="0.99"})', "nomad"),
                    Query('max(consul_raft_leader_lastContact{quantile="0.99"})', "consul"),
                    Query('max(vault_raft_leader_lastContact{quantile="0.99"})', "vault"),
                ),
                "ms",
                thresholds=above(LAST_CONTACT_LIMIT_MS),
            ),
            timeseries_panel(
                "Leadership changes",
                "Consul elections started and leaderships won; a stable cluster shows none after start-up.",
                (
                    Query(f"sum(rate(consul_raft_state_candidate{RATE}))", "consul elections"),
                    Query(f"sum(rate(consul_raft_state_leader{RATE}))", "consul new leader"),
                ),
                "ops",
                thresholds=nonzero(),
            ),
            timeseries_panel(
                "Nomad allocations by client",
                "Allocations each Nomad client runs, and those pending or blocked waiting for an earlier version "
                "to stop.",
                (
                    Query("sum by (node) (nomad_client_allocations_running)", "{{node}} running"),
                    Query("sum by (node) (nomad_client_allocations_pending)", "{{node}} pending"),
                    Query("sum by (node) (nomad_client_allocations_blocked)", "{{node}} blocked"),
                ),
                "none",
            ),
            timeseries_panel(
                "Nomad jobs",
                "Allocations per job as the scheduler counts them: failed or lost ones are being replaced, queued "
                "ones have nowhere to run.",
                (
                    Query("sum by (job) (nomad_nomad_job_summary_running)", "{{job}} running"),
                    Query("sum by (job) (nomad_nomad_job_summary_queued)", "{{job}} queued"),
                    Query("sum by (job) (nomad_nomad_job_summary_failed)", "{{job}} failed"),
                    Query("sum by (job) (nomad_nomad_job_summary_lost)", "{{job}} lost"),
                ),
                "none",
            ),
            stat_panel(
                "Nomad blocked evaluations",
                "Evaluations waiting for resources the cluster does not have (or quota); above 0 some job cannot "
                "be placed.",
                (Query("max(nomad_nomad_blocked_evals_total_blocked)"),),
                "none",
                above(1),
                width=8,
            ),
            stat_panel(
                "Nomad clients heartbeating",
                "Nomad clients with a live heartbeat on the leader: fewer than you run means lost nodes.",
                (Query("max(nomad_nomad_heartbeat_active)"),),
                "none",
                below(1),
                width=8,
            ),
            stat_panel(
                "Vault active servers",
                "Vault servers that are active (the rest stand by); exactly one is healthy.",
                (Query("sum(vault_core_active)"),),
                "none",
                below(1),
                width=8,
            ),
            timeseries_panel(
                "Nomad client hosts",
                "CPU, memory and disk use of each Nomad client host, as the Nomad client reports them.",
                (
                    Query("avg by (node) (nomad_client_host_cpu_total_percent) / 100", "{{node}} cpu"),
                    Query(
                        "max by (node) (nomad_client_host_memory_used)"
                        " / max by (node) (nomad_client_host_memory_total)",
                        "{{node}} memory",
                    ),
                    Query("max by (node) (nomad_client_host_disk_used_percent) / 100", "{{node}} disk"),
                ),
                "percentunit",
                thresholds=above(0.9, warning=0.8),
            ),
            timeseries_panel(
                "Server RPC errors",
                "RPC requests to the Nomad servers that failed, and Consul client agents' failed RPCs to their "
                "servers.",
                (
                    Query(f"sum(rate(nomad_nomad_rpc_request_error{RATE}))", "nomad errors"),
                    Query(f"sum(rate(nomad_nomad_rpc_request{RATE}))", "nomad requests"),
                    Query(f"sum(rate(consul_client_rpc_failed{RATE}))", "consul client failed"),
                    Query(f"sum(rate(consul_client_rpc{RATE}))", "consul client"),
                ),
                "ops",
            ),
            timeseries_panel(
                "Vault requests (p99) and leases",
                "Time Vault takes to handle a request (p99, ms) and the leases it tracks for expiry.",
                (
                    Query('max(vault_core_handle_request{quantile="0.99"})', "request p99 (ms)"),
                    Query("max(vault_expire_num_leases)", "leases"),
                ),
                "none",
                thresholds=informational(),
            ),
            timeseries_panel(
                "Consul commit time and memory",
                "Time Consul's leader takes to commit a Raft entry (p99, ms) and the memory Consul has from the OS.",
                (
                    Query('max(consul_raft_commitTime{quantile="0.99"})', "commit p99 (ms)"),
                    Query("max(consul_runtime_sys_bytes) / 2^20", "memory (MiB)"),
                ),
                "none",
            ),
        ),
        links=[
            to_dashboard(OVERVIEW_UID, "Services overview"),
            to_dashboard(PLATFORM_UID, "Platform"),
            to_dashboard(ALERTING_UID, "Alerting pipeline"),
        ],
        service_filter=False,
        live=False,
    )
