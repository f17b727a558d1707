"""The Nomad, Consul and Vault metrics the cluster dashboard reads, as their documentation names them.

The local platform runs none of these agents, so the cluster dashboard's queries cannot be checked
against a live Prometheus; instead every metric name they use must be in this list (a static test),
and every entry here was read in the product's own telemetry reference:

- Nomad 1.8.4 (the version terraform installs): ``website/content/docs/operations/metrics-reference.mdx``
  at tag v1.8.4;
- Consul 1.19.2: ``website/content/docs/agent/telemetry.mdx`` (key metrics and the metrics reference);
- Vault 1.17.6: ``website/content/partials/telemetry-metrics/vault/`` (one page per metric, included by
  ``docs/internals/telemetry/metrics/*.mdx``).

The agents publish go-metrics names: Prometheus sees the dotted name with dots as underscores
(``nomad.client.allocations.running`` is ``nomad_client_allocations_running``); a timer becomes a
summary in milliseconds (quantile series plus ``_sum`` and ``_count``); counters keep their name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"
    TIMER = "timer"  # a summary in milliseconds


@dataclass(frozen=True, slots=True)
class Documented:
    name: str  # as the product documents it, dotted
    kind: Kind

    def prometheus_names(self) -> tuple[str, ...]:
        base = self.name.replace(".", "_")
        if self.kind is Kind.TIMER:
            return (base, f"{base}_sum", f"{base}_count")
        return (base,)


NOMAD = (
    Documented("nomad.client.allocations.running", Kind.GAUGE),
    Documented("nomad.client.allocations.pending", Kind.GAUGE),
    Documented("nomad.client.allocations.blocked", Kind.GAUGE),
    Documented("nomad.client.host.cpu.total_percent", Kind.GAUGE),
    Documented("nomad.client.host.memory.used", Kind.GAUGE),
    Documented("nomad.client.host.memory.total", Kind.GAUGE),
    Documented("nomad.client.host.disk.used_percent", Kind.GAUGE),
    Documented("nomad.nomad.job_summary.running", Kind.GAUGE),
    Documented("nomad.nomad.job_summary.queued", Kind.GAUGE),
    Documented("nomad.nomad.job_summary.failed", Kind.GAUGE),
    Documented("nomad.nomad.job_summary.lost", Kind.GAUGE),
    Documented("nomad.nomad.blocked_evals.total_blocked", Kind.GAUGE),
    Documented("nomad.nomad.broker.total_ready", Kind.GAUGE),
    Documented("nomad.nomad.heartbeat.active", Kind.GAUGE),
    Documented("nomad.nomad.rpc.request", Kind.COUNTER),
    Documented("nomad.nomad.rpc.request_error", Kind.COUNTER),
    Documented("nomad.raft.leader.lastContact", Kind.TIMER),
)

CONSUL = (
    Documented("consul.autopilot.healthy", Kind.GAUGE),
    Documented("consul.autopilot.failure_tolerance", Kind.GAUGE),
    Documented("consul.raft.leader.lastContact", Kind.TIMER),
    Documented("consul.raft.commitTime", Kind.TIMER),
    Documented("consul.raft.state.leader", Kind.COUNTER),
    Documented("consul.raft.state.candidate", Kind.COUNTER),
    Documented("consul.client.rpc", Kind.COUNTER),
    Documented("consul.client.rpc.failed", Kind.COUNTER),
    Documented("consul.runtime.sys_bytes", Kind.GAUGE),
)

VAULT = (
    Documented("vault.core.unsealed", Kind.GAUGE),
    Documented("vault.core.active", Kind.GAUGE),
    Documented("vault.autopilot.healthy", Kind.GAUGE),
    Documented("vault.raft.leader.lastContact", Kind.TIMER),
    Documented("vault.core.handle_request", Kind.TIMER),
    Documented("vault.expire.num_leases", Kind.GAUGE),
)

# Prometheus' own per-target series, present for every scrape job.
SCRAPE_SERIES = ("up",)


def documented_names() -> frozenset[str]:
    """Every metric name a cluster dashboard query may select."""
    return frozenset(n for metric in (*NOMAD, *CONSUL, *VAULT) for n in metric.prometheus_names()) | frozenset(
        SCRAPE_SERIES
    )
