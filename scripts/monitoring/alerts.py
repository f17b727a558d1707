"""Every alerting rule, built from the catalog, a timing profile, thresholds and link bases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.common import catalog
from services.common.catalog import Protocol
from services.common.profiles import TimingProfile, duration

from . import scenarios as sc
from . import slo as slo_mod
from .model import Alert, Scenario, Series, Severity, counter, gauge, missing
from .recording import (
    CPU_RATE,
    ERROR_LOG_RATE,
    GRPC_ERROR_RATIO,
    GRPC_P95,
    GRPC_P95_REQUESTS,
    HEALTH,
    HTTP_ERROR_RATIO,
    HTTP_P95,
    HTTP_P95_REQUESTS,
    MEMORY_PREDICTED,
    SERVICES,
    memory_horizon_s,
    memory_window_s,
)
from .settings import LINKS, THRESHOLDS, Links, Thresholds

# Dashboards the alerts link to (uids of the generated Grafana dashboards).
OVERVIEW_UID = "firedrill-overview"
SLO_UID = "firedrill-slo"
PLATFORM_UID = "firedrill-platform"
ALERTING_UID = "firedrill-alerting"
SERVICE_VAR = "var-service={{ $labels.service }}"

# The `service` label of the alerts about a shared dependency as a whole.
VAULT_SERVICE = "vault"
REGISTRY_SERVICE = "registry"
REGISTRY_REACHABLE = "discovery_registry_reachable"  # services.common.discovery.observed.REACHABLE
# Every reporter reads 0: the dependency itself is down, not one client's path to it.
_ALL_VAULT_DOWN = "max(vault_reachable) == 0"
# On a cluster nothing exports vault_reachable (Nomad's template runner renders the secrets): Vault
# is down when no Vault server answers Prometheus' scrape of /v1/sys/metrics (the `vault` job; a
# sealed Vault answers 503 there). The local platform has no `vault` job, so this arm is empty there.
_VAULT_SERVERS_DOWN = 'max(up{job="vault"}) == 0'
_ALL_REGISTRY_DOWN = f"max({REGISTRY_REACHABLE}{{{SERVICES}}}) == 0"

# Symptoms a broken dependency causes in its callers (Alertmanager inhibits these).
DEPENDENT_SYMPTOMS = ("HighErrorRatio", "HighLatencyP95", slo_mod.PAGE.name, slo_mod.TICKET.name)


def _recorded(record: str, service: str, healthy: float, faulty: float) -> Series:
    return Series(f'{record}{{service="{service}"}}', gauge(healthy), gauge(faulty))


class AlertBuilder:
    def __init__(self, profile: TimingProfile, thresholds: Thresholds, links: Links) -> None:
        self.p = profile
        self.t = thresholds
        self.links = links
        self.i = profile.scrape_interval_s
        self.h = profile.health_scrape_interval_s  # the pace of the "down" alerts
        self.w = profile.rate_window_s

    def alert(self, name: str, *, dashboard: str, **fields: Any) -> Alert:
        return Alert(
            name=name,
            runbook_url=self.links.runbook(name),
            dashboard_url=self.links.dashboard(dashboard, SERVICE_VAR),
            **fields,
        )

    def service_down(self) -> Alert:
        absent = "\nor\n".join(
            f'max by (service) (absent(up{{{HEALTH},service="{name}"}}))' for name in catalog.service_names()
        )
        victim = sc.first_service(Protocol.HTTP)
        others = sc.all_up_except(victim)
        return self.alert(
            "ServiceDown",
            dashboard=OVERVIEW_UID,
            expr=f"max by (service) (up{{{HEALTH}}}) == 0\nor\n{absent}",
            for_s=self.p.for_service_down_s,
            severity=Severity.CRITICAL,
            summary="{{ $labels.service }} is down",
            description=(
                "No instance of {{ $labels.service }} answers Prometheus' health scrapes, or the service has no "
                f"registered instance at all, for more than {duration(self.p.for_service_down_s)} "
                f"({self.p.down_after_failed_scrapes} failed scrapes in a row, one every {duration(self.h)})."
            ),
            scenarios=(
                Scenario(
                    "stopped",
                    (sc.up(victim, gauge(1), gauge(0)), *others),
                    {"service": victim},
                    detect_s=self.h,
                    clear_s=self.h,
                ),
                Scenario(
                    "deregistered",
                    (sc.up(victim, gauge(1), missing()), *others),
                    {"service": victim},
                    detect_s=self.h,
                    clear_s=self.h,
                ),
            ),
            blip=Scenario(
                "blip",
                (sc.up(victim, gauge(1), gauge(0)), *others),
                {"service": victim},
                detect_s=self.h,
                clear_s=self.h,
            ),
        )

    def high_error_ratio(self) -> Alert:
        limit = self.t.error_ratio
        http, grpc = sc.first_service(Protocol.HTTP), sc.first_service(Protocol.GRPC)
        return self.alert(
            "HighErrorRatio",
            dashboard=OVERVIEW_UID,
            expr=f"{HTTP_ERROR_RATIO} > {limit}\nor\n{GRPC_ERROR_RATIO} > {limit}",
            for_s=self.p.for_symptom_s,
            severity=Severity.WARNING,
            summary="{{ $labels.service }} fails more than " + f"{limit:.0%} of its requests",
            description=(
                "More than " + f"{limit:.0%}" + " of the requests {{ $labels.service }} served over the last "
                f"{duration(self.w)} failed (HTTP 5xx or gRPC server-side codes), for more than "
                f"{duration(self.p.for_symptom_s)}."
            ),
            scenarios=(
                Scenario(
                    "http-5xx",
                    sc.http_requests(http, 10, 0.5),
                    {"service": http},
                    detect_s=self.w // 2,
                    clear_s=self.w + 2 * self.i,
                ),
                Scenario(
                    "grpc-unavailable",
                    sc.grpc_requests(grpc, 10, 0.5),
                    {"service": grpc},
                    detect_s=self.w // 2,
                    clear_s=self.w + 2 * self.i,
                ),
            ),
            blip=Scenario(
                "blip", (_recorded(HTTP_ERROR_RATIO, http, 0, 0.5),), {"service": http}, detect_s=self.i, clear_s=self.i
            ),
        )

    def high_latency(self) -> Alert:
        limit, enough = self.t.latency_p95_s, self.t.latency_min_requests
        http, grpc = sc.first_service(Protocol.HTTP), sc.first_service(Protocol.GRPC)
        return self.alert(
            "HighLatencyP95",
            dashboard=OVERVIEW_UID,
            # `and` binds tighter than `or`: each protocol's p95 counts only over enough requests.
            expr=(
                f"{HTTP_P95} > {limit} and {HTTP_P95_REQUESTS} >= {enough}\n"
                f"or\n{GRPC_P95} > {limit} and {GRPC_P95_REQUESTS} >= {enough}"
            ),
            for_s=self.p.for_symptom_s,
            severity=Severity.WARNING,
            summary="{{ $labels.service }} p95 latency is above " + f"{limit}s",
            description=(
                "The 95th percentile of {{ $labels.service }}'s request duration over the last "
                f"{duration(self.w)} has been above {limit}s for more than {duration(self.p.for_symptom_s)} "
                f"(judged only over at least {enough} requests)."
            ),
            scenarios=(
                Scenario(
                    "http-slow",
                    sc.http_latency(http, 10, 0.02, 2.0),
                    {"service": http},
                    detect_s=self.w // 2,
                    clear_s=self.w + 2 * self.i,
                ),
                Scenario(
                    "grpc-slow",
                    sc.grpc_latency(grpc, 10, 0.02, 2.0),
                    {"service": grpc},
                    detect_s=self.w // 2,
                    clear_s=self.w + 2 * self.i,
                ),
            ),
            blip=Scenario(
                "blip",
                (_recorded(HTTP_P95, http, 0.02, 2.0), _recorded(HTTP_P95_REQUESTS, http, 10 * self.w, 10 * self.w)),
                {"service": http},
                detect_s=self.i,
                clear_s=self.i,
            ),
        )

    def memory_growth(self) -> Alert:
        limit = self.t.memory_limit_bytes
        victim = sc.first_service(Protocol.HTTP)
        window = memory_window_s(self.p)
        horizon = memory_horizon_s(self.p)
        base = 100 * 1024 * 1024
        growth = Series(
            sc.selector("process_resident_memory_bytes", service=victim, instance=sc.instance(victim)),
            gauge(base),
            counter(2 * limit / horizon),  # reaches the limit well within the horizon
            gauge(base),  # restarted
        )
        return self.alert(
            "MemoryGrowth",
            dashboard=OVERVIEW_UID,
            expr=f"{MEMORY_PREDICTED} > {limit}",
            for_s=self.p.for_capacity_s,
            severity=Severity.WARNING,
            summary="{{ $labels.service }} memory is on course to pass " + f"{limit // 2**20} MiB",
            description=(
                "predict_linear over the last " + duration(window) + " says {{ $labels.service }}'s resident "
                f"memory will pass {limit // 2**20} MiB within {duration(horizon)} (a leak, or load it cannot hold)."
            ),
            scenarios=(Scenario("leak", (growth,), {"service": victim}, detect_s=window, clear_s=window + 2 * self.i),),
            blip=Scenario(
                "blip",
                (_recorded(MEMORY_PREDICTED, victim, base, 2 * limit),),
                {"service": victim},
                detect_s=self.i,
                clear_s=self.i,
            ),
        )

    def cpu_saturation(self) -> Alert:
        limit = self.t.cpu_cores
        victim = sc.first_service(Protocol.HTTP)
        burn = Series(
            sc.selector("process_cpu_seconds_total", service=victim, instance=sc.instance(victim)),
            counter(0.1),
            counter(1.0),
        )
        return self.alert(
            "CpuSaturation",
            dashboard=OVERVIEW_UID,
            expr=f"{CPU_RATE} > {limit}",
            for_s=self.p.for_capacity_s,
            severity=Severity.WARNING,
            summary="{{ $labels.service }} is using a full CPU core",
            description=(
                "A {{ $labels.service }} process has used more than " + f"{limit}" + " CPU seconds per second over "
                f"the last {duration(self.w)} for more than {duration(self.p.for_capacity_s)}; a Python process "
                "is bound to one core, so it is saturated and requests queue."
            ),
            scenarios=(
                Scenario("busy", (burn,), {"service": victim}, detect_s=self.w + self.i, clear_s=self.w + 2 * self.i),
            ),
            blip=Scenario(
                "blip", (_recorded(CPU_RATE, victim, 0.1, 1.0),), {"service": victim}, detect_s=self.i, clear_s=self.i
            ),
        )

    def error_log_storm(self) -> Alert:
        limit = self.t.error_log_lines_per_s
        victim = sc.first_service(Protocol.HTTP)
        storm = Series(
            sc.selector("log_records_total", service=victim, instance=sc.instance(victim), level="error"),
            counter(0),
            counter(5 * limit),
        )
        return self.alert(
            "ErrorLogStorm",
            dashboard=OVERVIEW_UID,
            expr=f"{ERROR_LOG_RATE} > {limit:g}",
            for_s=self.p.for_symptom_s,
            severity=Severity.WARNING,
            summary="{{ $labels.service }} is writing a storm of error log lines",
            description=(
                "{{ $labels.service }} has written more than " + f"{limit:g}" + " error log lines per second over "
                f"the last {duration(self.w)} for more than {duration(self.p.for_symptom_s)}: something fails "
                "over and over, or a client makes it log; the logs say what."
            ),
            scenarios=(
                Scenario("storm", (storm,), {"service": victim}, detect_s=self.w // 2, clear_s=self.w + 2 * self.i),
            ),
            blip=Scenario(
                "blip",
                (_recorded(ERROR_LOG_RATE, victim, 0, 5 * limit),),
                {"service": victim},
                detect_s=self.i,
                clear_s=self.i,
            ),
        )

    def incident_receiver(self) -> Alert:
        name = "incidents"
        others = sc.all_up_except(name)
        failures = Series(
            'alertmanager_notifications_failed_total{job="alertmanager",instance="127.0.0.1:9093",'
            'integration="webhook"}',
            counter(0),
            counter(0.5),
        )
        w = duration(self.w)
        return self.alert(
            "IncidentReceiverUnreachable",
            dashboard=ALERTING_UID,
            expr=(
                f'max by (service) (up{{{HEALTH},service="{name}"}}) == 0\n'
                f'or\nmax by (service) (absent(up{{{HEALTH},service="{name}"}}))\n'
                "or\nlabel_replace(\n"
                f'  sum(increase(alertmanager_notifications_failed_total{{integration="webhook"}}[{w}])) > 0,\n'
                f'  "service", "{name}", "", ""\n)'
            ),
            for_s=self.p.for_service_down_s,
            severity=Severity.CRITICAL,
            summary="Alertmanager cannot deliver alerts to the incident receiver",
            description=(
                "The incident receiver is not scraped as up, or Alertmanager's webhook notifications failed "
                f"within the last {w}: alerts are not being recorded as incidents; only the pager sees them."
            ),
            scenarios=(
                Scenario(
                    "receiver-down",
                    (sc.up(name, gauge(1), gauge(0)), *others),
                    {"service": name},
                    detect_s=self.h,
                    clear_s=self.h,
                ),
                Scenario(
                    "webhook-failing",
                    (sc.up(name, gauge(1), gauge(1)), *others, failures),
                    {"service": name},
                    detect_s=2 * self.i,
                    clear_s=self.w + 2 * self.i,
                ),
            ),
            blip=Scenario(
                "blip", (sc.up(name, gauge(1), gauge(0)), *others), {"service": name}, detect_s=self.h, clear_s=self.h
            ),
        )

    def vault_unreachable(self) -> Alert:
        victim, other = sc.first_service(Protocol.GRPC), sc.first_service(Protocol.HTTP)
        series = sc.gauge_series("vault_reachable", victim, 1, 0, instance=sc.instance(victim))
        fine = sc.gauge_series("vault_reachable", other, 1, 1, instance=sc.instance(other))
        return self.alert(
            "VaultUnreachable",
            dashboard=PLATFORM_UID,
            # vault_reachable comes from whatever renders secrets (the local Vault agent), not the services.
            # When no identity reaches Vault, VaultDown says so once instead of this alert once per identity.
            expr=f"(min by (service) (vault_reachable) == 0)\nunless on ()\n({_ALL_VAULT_DOWN})",
            for_s=self.p.for_symptom_s,
            severity=Severity.WARNING,
            summary="{{ $labels.service }} cannot reach Vault",
            description=(
                "The last contact of {{ $labels.service }} with Vault failed, for more than "
                f"{duration(self.p.for_symptom_s)}; it runs on cached secrets and cannot renew certificates "
                "or fetch new signing keys."
            ),
            scenarios=(Scenario("vault-down", (series, fine), {"service": victim}, detect_s=self.i, clear_s=self.i),),
            blip=Scenario("blip", (series, fine), {"service": victim}, detect_s=self.i, clear_s=self.i),
        )

    def vault_down(self) -> Alert:
        identities = (sc.first_service(Protocol.GRPC), sc.first_service(Protocol.HTTP))
        series = tuple(sc.gauge_series("vault_reachable", n, 1, 0, instance=sc.instance(n)) for n in identities)
        # A cluster: three Vault servers scraped, all of them gone.
        servers = tuple(
            Series(sc.selector("up", job="vault", instance=f"10.0.1.{n}:8200"), gauge(1), gauge(0)) for n in (1, 2, 3)
        )
        return self.alert(
            "VaultDown",
            dashboard=PLATFORM_UID,
            expr=(
                f"label_replace(\n  ({_ALL_VAULT_DOWN})\n  or\n  ({_VAULT_SERVERS_DOWN}),\n"
                f'  "service", "{VAULT_SERVICE}", "", ""\n)'
            ),
            for_s=self.p.for_symptom_s,
            severity=Severity.WARNING,
            summary="No identity of the platform can reach Vault",
            description=(
                "Every identity's last contact with Vault failed, for more than "
                f"{duration(self.p.for_symptom_s)}: Vault itself is down or cut off. Services keep serving with "
                "the certificates and keys they hold; nothing renews until Vault answers "
                "(CertificateExpiringSoon is the deadline)."
            ),
            labels={"service": VAULT_SERVICE},
            scenarios=(
                Scenario("vault-down", series, {"service": VAULT_SERVICE}, detect_s=self.i, clear_s=self.i),
                Scenario("vault-servers-down", servers, {"service": VAULT_SERVICE}, detect_s=self.i, clear_s=self.i),
            ),
            blip=Scenario("blip", series, {"service": VAULT_SERVICE}, detect_s=self.i, clear_s=self.i),
        )

    def registry_unreachable(self) -> Alert:
        victim, other = sc.first_service(Protocol.GRPC), sc.first_service(Protocol.HTTP)
        series = sc.gauge_series(REGISTRY_REACHABLE, victim, 1, 0, instance=sc.instance(victim))
        fine = sc.gauge_series(REGISTRY_REACHABLE, other, 1, 1, instance=sc.instance(other))
        return self.alert(
            "RegistryUnreachable",
            dashboard=PLATFORM_UID,
            expr=f"(min by (service) ({REGISTRY_REACHABLE}{{{SERVICES}}}) == 0)\nunless on ()\n({_ALL_REGISTRY_DOWN})",
            for_s=self.p.for_symptom_s,
            severity=Severity.WARNING,
            summary="{{ $labels.service }} cannot reach the service registry",
            description=(
                "The last call of {{ $labels.service }} to the service registry (Consul, or the local file "
                f"registry) failed, for more than {duration(self.p.for_symptom_s)}; it calls the upstream "
                "instances it last knew and cannot renew its own registration."
            ),
            scenarios=(
                Scenario("registry-failing", (series, fine), {"service": victim}, detect_s=self.i, clear_s=self.i),
            ),
            blip=Scenario("blip", (series, fine), {"service": victim}, detect_s=self.i, clear_s=self.i),
        )

    def registry_down(self) -> Alert:
        names = (sc.first_service(Protocol.GRPC), sc.first_service(Protocol.HTTP))
        series = tuple(sc.gauge_series(REGISTRY_REACHABLE, n, 1, 0, instance=sc.instance(n)) for n in names)
        return self.alert(
            "RegistryDown",
            dashboard=PLATFORM_UID,
            expr=f'label_replace(\n  {_ALL_REGISTRY_DOWN},\n  "service", "{REGISTRY_SERVICE}", "", ""\n)',
            for_s=self.p.for_symptom_s,
            severity=Severity.WARNING,
            summary="No service can reach the service registry",
            description=(
                "Every service's last call to the service registry (Consul, or the local file registry) failed, "
                f"for more than {duration(self.p.for_symptom_s)}. Callers keep calling the instances they last "
                "knew, so users are served, but no instance can be added, moved or removed until it returns."
            ),
            labels={"service": REGISTRY_SERVICE},
            scenarios=(
                Scenario("registry-down", series, {"service": REGISTRY_SERVICE}, detect_s=self.i, clear_s=self.i),
            ),
            blip=Scenario("blip", series, {"service": REGISTRY_SERVICE}, detect_s=self.i, clear_s=self.i),
        )

    def certificate_expiring(self) -> Alert:
        victim = sc.first_service(Protocol.GRPC)
        limit = certificate_expiry_limit_s(self.p)
        series = sc.gauge_series(
            "tls_cert_expiry_seconds", victim, self.p.cert_ttl_s, limit // 2, instance=sc.instance(victim)
        )
        return self.alert(
            "CertificateExpiringSoon",
            dashboard=PLATFORM_UID,
            expr=f"min by (service) (tls_cert_expiry_seconds{{{SERVICES}}}) < {limit}",
            for_s=self.p.for_symptom_s,
            severity=Severity.WARNING,
            summary="{{ $labels.service }}'s TLS certificate expires in less than " + duration(limit),
            description=(
                "The certificate {{ $labels.service }} serves expires in less than " + duration(limit) + "; it "
                f"should have been renewed at {self.p.cert_renew_fraction:.0%} of its {duration(self.p.cert_ttl_s)} "
                "lifetime, so renewal from Vault is failing."
            ),
            scenarios=(Scenario("not-renewed", (series,), {"service": victim}, detect_s=self.i, clear_s=self.i),),
            blip=Scenario("blip", (series,), {"service": victim}, detect_s=self.i, clear_s=self.i),
        )

    def crash_looping(self) -> Alert:
        """One alert for a restart storm, from the local restarter's counts or Nomad's own telemetry.

        Locally ``firedrill_restarts_total{service}`` (``scripts.local.restart_metrics``); on a
        cluster Nomad's ``nomad.client.allocs.restart`` counter (client telemetry with
        ``publish_allocation_metrics``), whose ``task`` is the service and whose own ``job`` label
        Prometheus keeps as ``exported_job``. Restarts are counted as the counter's growth over the
        window, where a series younger than the window counts from zero: Nomad creates an
        allocation's series at its first restart, which ``increase()`` would not see. The window
        outlasts the longest back-off between two starts, so a storm at its slowest still fires
        once and stays firing instead of flapping.
        """
        limit = self.t.crash_loop_restarts
        window = crash_loop_window_s(self.p)
        victim = sc.first_service(Protocol.HTTP)
        tasks = "|".join(catalog.service_names())

        def growth(selector: str) -> str:
            return f"clamp_min(\n    {selector}\n    - ({selector} offset {duration(window)} or {selector} * 0), 0)"

        local = 'firedrill_restarts_total{job="restarter"}'
        nomad = f'nomad_client_allocs_restart{{job="nomad-client",task=~"{tasks}"}}'
        local_series = Series(
            f'firedrill_restarts_total{{job="restarter",instance="127.0.0.1:8211",service="{victim}"}}',
            counter(0),
            counter(1 / self.i),  # one failed start per scrape
        )
        nomad_series = Series(
            f'nomad_client_allocs_restart{{job="nomad-client",instance="client-1:4646",node="client-1",'
            f'exported_job="{victim}",task_group="{victim}",task="{victim}",alloc_id="a1",namespace="default"}}',
            counter(0),
            counter(1 / self.i),
        )
        blip = Series(local_series.selector, gauge(0), gauge(limit))
        return self.alert(
            "CrashLooping",
            dashboard=PLATFORM_UID,
            expr=(
                f"(\n  sum by (service) ({growth(local)})\n"
                f'  or\n  sum by (service) (label_replace({growth(nomad)}, "service", "$1", "task", "(.+)"))\n'
                f") >= {limit}"
            ),
            for_s=self.p.for_urgent_s,
            severity=Severity.WARNING,
            summary="{{ $labels.service }} is crash-looping",
            description=(
                "{{ $labels.service }} failed and was started again at least "
                f"{limit} times within {duration(window)} (the local restarter's firedrill_restarts_total, or "
                "Nomad's nomad_client_allocs_restart): it dies at start-up or soon after. One alert for the "
                "whole storm; ServiceDown fires beside it when no other instance serves."
            ),
            scenarios=(
                Scenario(
                    "local-restarter",
                    (local_series,),
                    {"service": victim},
                    detect_s=3 * self.i,
                    clear_s=window + self.i,
                ),
                Scenario(
                    "nomad-task-restarts",
                    (nomad_series,),
                    {"service": victim},
                    detect_s=3 * self.i,
                    clear_s=window + self.i,
                ),
            ),
            blip=Scenario("blip", (blip,), {"service": victim}, detect_s=self.i, clear_s=self.i),
        )

    def burn_alerts(self) -> list[Alert]:
        out = []
        for objective in slo_mod.slos():
            for burn in slo_mod.BURN_ALERTS:
                out.append(self._burn(objective, burn))
        return out

    def _burn(self, objective: slo_mod.Slo, burn: slo_mod.BurnAlert) -> Alert:
        service = objective.service
        labels = {"service": service, "slo": objective.name}
        raw = (
            sc.http_requests(service, 10, 1.0)
            if objective.protocol is Protocol.HTTP
            else sc.grpc_requests(service, 10, 1.0)
        )
        direct = tuple(
            Series(f"{slo_mod.ratio_record(w)}{{{objective.matchers()}}}", gauge(0), gauge(1))
            for pair in burn.windows
            for w in (pair.long_s, pair.short_s)
        )
        page = burn is slo_mod.PAGE
        for_s = self.p.for_urgent_s if page else self.p.for_symptom_s
        windows = ", ".join(
            f"{pair.factor}x over {duration(slo_mod.scaled(self.p, pair.long_s))} and "
            f"{duration(slo_mod.scaled(self.p, pair.short_s))}"
            for pair in burn.windows
        )
        clear = slo_mod.slowest_short_window_s(self.p, burn) + 3 * self.i
        return self.alert(
            burn.name,
            dashboard=SLO_UID,
            expr=slo_mod.burn_expr(objective, burn),
            for_s=for_s,
            severity=burn.severity,
            summary=(
                "{{ $labels.service }} is burning its "
                + f"{objective.objective:.1%} "
                + ("error budget fast" if page else "error budget steadily")
            ),
            description=(
                "{{ $labels.service }} is spending the error budget of its " + f"{objective.objective:.1%} "
                f"{objective.name} SLO faster than it can afford (burn rate {windows}; budget period "
                f"{duration(slo_mod.scaled(self.p, slo_mod.BUDGET_PERIOD_S))})."
            ),
            labels=labels,
            scenarios=(Scenario("errors", raw, labels, detect_s=3 * self.i, clear_s=clear, warmup_s=2 * self.w),),
            blip=Scenario("blip", direct, labels, detect_s=self.i, clear_s=self.i),
        )


def crash_loop_window_s(profile: TimingProfile) -> int:
    """How far back CrashLooping counts restarts: the longest back-off between two starts, plus a rate window."""
    return profile.restart_max_delay_s + profile.rate_window_s


def certificate_expiry_limit_s(profile: TimingProfile) -> int:
    """Renewal is due at cert_renew_fraction of the lifetime; CertificateExpiringSoon fires when half
    the time left after that point has gone too, i.e. renewal has been failing for a while."""
    return int(profile.cert_ttl_s * (1 - profile.cert_renew_fraction) / 2)


def alerts(profile: TimingProfile, thresholds: Thresholds = THRESHOLDS, links: Links = LINKS) -> tuple[Alert, ...]:
    b = AlertBuilder(profile, thresholds, links)
    makers: tuple[Callable[[], Alert], ...] = (
        b.service_down,
        b.high_error_ratio,
        b.high_latency,
        b.memory_growth,
        b.cpu_saturation,
        b.error_log_storm,
        b.incident_receiver,
        b.vault_unreachable,
        b.vault_down,
        b.certificate_expiring,
        b.crash_looping,
        b.registry_unreachable,
        b.registry_down,
    )
    return (*(make() for make in makers), *b.burn_alerts())


def alert_names(profile: TimingProfile) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.name for a in alerts(profile)))
