"""Rollouts on the local platform: the new version as an extra supervised program beside stable.

The new version runs as ``<service>-canary`` on ports of its own (``scripts.local.versions``);
the share of calls each version gets is a traffic split in the file registry, which callers follow
(``services.common.discovery.weights``). Promotion restarts the stable program at the new version
while the canary takes every call, then stops the canary; a rollback sends every call to stable,
reads what the canary served from its own counters, and stops it.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from scripts.canary.driver import Exposure
from scripts.canary.strategies import Plan, Step, plan_for
from scripts.deploy_target.interface import PlatformError
from scripts.local.programs import local_url
from scripts.local.stack import LocalPlatform, Progress
from scripts.local.versions import Canary, DeployedVersions, canary_program_name, check_version
from scripts.ports import free_port
from scripts.processes import http_ok
from services.common import catalog
from services.common.config import package_version
from services.common.discovery.base import Instance
from services.common.discovery.local import LocalRegistry, write_traffic_split
from services.common.waiting import TimedOut, wait_until

HEALTHY_TIMEOUT_S = 60.0
TARGET_SETTLE_TIMEOUT_S = 15.0
# gRPC codes that say the server failed (a caller's own mistake, e.g. INVALID_ARGUMENT, is no failure).
SERVER_FAILURE_CODES = frozenset({"UNKNOWN", "INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED", "DATA_LOSS"})
NOT_USER_CALLS = frozenset({"/health", "/metrics"})  # health checks and scrapes are not users


def _quiet(_: str) -> None:
    return None


def exposure_from_metrics(text: str) -> Exposure:
    """Calls a service answered, and how many failed, from its own /metrics text (HTTP or gRPC).

    HTTP 5xx and gRPC codes that mean the server failed count as failed; health checks are left out.
    """
    served = failed = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "http_requests_total" and sample.labels.get("path") not in NOT_USER_CALLS:
                served += sample.value
                if sample.labels.get("status", "").startswith("5"):
                    failed += sample.value
            elif sample.name == "grpc_server_handled_total":
                served += sample.value
                if sample.labels.get("grpc_code") in SERVER_FAILURE_CODES:
                    failed += sample.value
    return Exposure(served=int(served), failed=int(failed))


class LocalTarget:
    name = "local"

    def __init__(self, platform: LocalPlatform, progress: Progress = _quiet) -> None:
        self.platform = platform
        self.versions = DeployedVersions(platform.state)
        self._progress = progress

    # -- what runs ---------------------------------------------------------------------------

    def stable_version(self, service: str) -> str:
        catalog.service(service)  # unknown names fail here, with the catalog's message
        return self.versions.stable().get(service) or package_version()

    def _instances(self, service: str) -> list[Instance]:
        registry = LocalRegistry(self.platform.state.registry, self.platform.timing.heartbeat_ttl_s)
        return registry.healthy_instances_now(service)

    def _registered(self, service: str, version: str, port: int) -> bool:
        return any(i.port == port and i.meta.get("version") == version for i in self._instances(service))

    def stable_problem(self, service: str) -> str | None:
        if not self.platform.supervisor.running():
            return f"the local platform is not running in {self.platform.state.root} (make up)"
        if service in self.versions.canaries():
            return (
                f"a new version of {service} is already running beside stable (a rollout in progress, or one "
                f"killed hard): python -m scripts.canary --abort --service {service}"
            )
        spec = catalog.service(service)
        info = self.platform.supervisor.process(service)
        if info["statename"] != "RUNNING":
            return f"its program is {info['statename']}"
        health = local_url(catalog.port(spec.scrape_port), spec.health_path)
        if not http_ok(health):
            return f"{health} does not answer 200"
        version = self.stable_version(service)
        if not self._registered(service, version, catalog.port(spec.port)):
            return f"no healthy instance of version {version} in the registry"
        return None

    def plan(self, service: str, strategy: str) -> Plan:
        # The local platform runs one stable instance per service.
        return plan_for(strategy, stable_instances=1)

    # -- the rollout -------------------------------------------------------------------------

    def _split(self, service: str, split: dict[str, float] | None) -> None:
        write_traffic_split(self.platform.state.registry, service, split)

    def _wait_serving(self, program: str, health_url: str, service: str, version: str, port: int) -> None:
        def serving() -> bool:
            info = self.platform.supervisor.process(program)
            if info["statename"] in {"FATAL", "EXITED", "BACKOFF"}:
                raise PlatformError(
                    f"{program} ({version}) failed to start ({info['statename']}); last log lines:\n"
                    + self.platform.log_tail(program, 15)
                )
            return bool(
                info["statename"] == "RUNNING" and http_ok(health_url) and self._registered(service, version, port)
            )

        try:
            wait_until(serving, timeout_s=HEALTHY_TIMEOUT_S, interval_s=0.2, what=f"{program} {version} serving")
        except TimedOut:
            raise PlatformError(
                f"{program} {version} not healthy and registered after {HEALTHY_TIMEOUT_S:.0f}s "
                f"(log: {self.platform.log_file(program)})"
            ) from None

    def start_new(self, service: str, version: str, plan: Plan) -> None:
        check_version(service, version)
        spec = catalog.service(service)
        stable = self.stable_version(service)
        # Every call stays on stable until the first step gives the new version its share.
        self._split(service, {stable: 100.0})
        canary = Canary(
            service=service,
            version=version,
            port=free_port(),
            metrics_port=free_port(),
            http_port=free_port() if spec.http_port is not None else None,
        )
        self.versions.set_canary(service, canary)
        changed = self.platform.apply_programs()
        unexpected = sorted(set(changed) - {canary.program})
        if unexpected:
            self._progress(f"  note: the platform's config also changed for {', '.join(unexpected)} (restarted)")
        spec_health = local_url(canary.metrics_port, spec.health_path)
        self._wait_serving(canary.program, spec_health, service, version, canary.port)
        self._progress(f"  {canary.program} {version} healthy on port {canary.port}")

    def apply_step(self, service: str, stable: str, new: str, step: Step, index: int) -> None:
        self._split(service, {stable: float(100 - step.weight_percent), new: float(step.weight_percent)})

    def wait_stable_serving(self, service: str) -> None:
        """Until the stable program runs, answers its health check, is registered at its version and
        Prometheus scrapes it up again (after a restart)."""
        spec = catalog.service(service)
        health = local_url(catalog.port(spec.scrape_port), spec.health_path)
        port = catalog.port(spec.port)
        version = self.stable_version(service)
        self._wait_serving(service, health, service, version, port)
        self._wait_prometheus(f"{service}-127.0.0.1-{port}", listed=True, version=version)

    def promote(self, service: str, stable: str, new: str) -> None:
        self._split(service, {new: 100.0})
        # The stable program restarts at the new version while the canary takes every call.
        self.versions.set_stable(service, new)
        self.platform.apply_programs()
        self.wait_stable_serving(service)
        canary = self.versions.canaries().get(service)
        if canary is not None:
            self._stop_canary(canary)
        self._split(service, None)
        self._progress(f"  {service} runs {new}; {canary_program_name(service)} stopped")

    def _exposure(self, canary: Canary) -> Exposure | None:
        try:
            with urllib.request.urlopen(local_url(canary.metrics_port, "/metrics"), timeout=3) as answer:  # noqa: S310
                return exposure_from_metrics(answer.read().decode())
        except (urllib.error.URLError, OSError, ValueError):
            return None  # it crashed or never started: its counters are gone

    def _stop_canary(self, canary: Canary) -> None:
        self.versions.set_canary(canary.service, None)
        self.platform.apply_programs()
        # The registry keeps a stopped service's scrape target (a supervised service that is down must
        # show as up == 0); a canary that was stopped on purpose is gone, not down.
        instance_id = f"{canary.service}-127.0.0.1-{canary.port}"
        (self.platform.state.root / "prometheus" / "targets" / f"{instance_id}.json").unlink(missing_ok=True)
        self._wait_prometheus(instance_id, listed=False)

    def _wait_prometheus(self, instance_id: str, *, listed: bool, version: str | None = None) -> None:
        """Until Prometheus has dropped the target (``listed`` False) or scraped it up at ``version``
        (True; a new version is a new target, unknown until its first scrape): a drill's steady state
        checked right after the rollout must not see a target down."""
        from scripts.promql import Prometheus, PrometheusError

        prometheus = Prometheus(self.platform.endpoints().prometheus)

        def settled() -> bool:
            try:
                mine = [t for t in prometheus.targets() if t["labels"].get("instance_id") == instance_id]
            except PrometheusError:
                return True  # Prometheus is not running: nothing scrapes the target anyway
            if not listed:
                return not mine
            return bool(mine) and all(t.get("health") == "up" and t["labels"].get("version") == version for t in mine)

        what = f"{instance_id} {'scraped up' if listed else 'unscraped'}"
        try:
            wait_until(settled, timeout_s=TARGET_SETTLE_TIMEOUT_S, interval_s=0.2, what=what)
        except TimedOut:
            self._progress(f"  note: Prometheus has not seen {what} after {TARGET_SETTLE_TIMEOUT_S:.0f}s")

    def rollback(self, service: str, stable: str, new: str) -> Exposure | None:
        self._split(service, {stable: 100.0})
        canary = self.versions.canaries().get(service)
        exposure = self._exposure(canary) if canary is not None else None
        if canary is not None:
            self._stop_canary(canary)
        self._split(service, None)
        return exposure
