"""The local platform: every Firedrill process supervised on this machine, one state directory.

``up`` is idempotent: a second run re-applies the configuration and starts whatever is not
running. ``down`` stops supervisord, which stops every program and its process group.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.deploy_target.admin_http import admin_request, check_port
from scripts.deploy_target.interface import AdminAnswer, Endpoints, PlatformError, UnitStatus
from scripts.deploy_target.startup_fault import require_service
from scripts.local import registry_hold
from scripts.local.binaries import find_binary
from scripts.local.memory_limits import with_memory_settings
from scripts.local.partition import LocalPartition
from scripts.local.partition import refusal as partition_refusal
from scripts.local.programs import ProgramSpec, StateLayout, local_url, service_program
from scripts.local.reasons import reason
from scripts.local.startup_fault import with_startup_fault
from scripts.local.supervisor import RESTARTER, Supervisor, render_config
from scripts.ports import port_is_free
from scripts.processes import http_ok
from services.common import catalog
from services.common.catalog import Protocol, ServiceSpec
from services.common.profiles import TimingProfile, profile
from services.common.waiting import TimedOut, wait_until

Progress = Callable[[str], None]

# Shared dependencies drills break by the name they have on a cluster too: Vault is the ``openbao``
# program here, and the registry is the file registry's folder (scripts.local.registry_hold).
PROGRAM_ALIASES = {"vault": "openbao"}
REGISTRY_UNIT = "registry"


def _quiet(_: str) -> None:
    return None


def service_scheme(spec: ServiceSpec) -> str:
    """Edge HTTP listeners are plain; other HTTP services require mTLS; gRPC is gRPC over mTLS."""
    if spec.serves_users_plain_http:
        return "http"
    return "https" if spec.protocol == Protocol.HTTP else "grpc"


class LocalPlatform:
    name = "local"

    def __init__(self, state_dir: Path, timing: TimingProfile | None = None) -> None:
        self.state = StateLayout(state_dir.resolve())
        self.timing = timing or profile()
        self.supervisor = Supervisor(self.state)
        self._partitions: LocalPartition | None = None

    # -- what runs -------------------------------------------------------------------------

    def programs(self, *, write_config: bool = False) -> list[ProgramSpec]:
        """What runs; with ``write_config`` the monitoring configs are (re)written for a start."""
        from scripts.local.extensions import extensions
        from scripts.local.versions import canary_programs, stable_environment

        extra = extensions(self.state, self.timing, write_config=write_config)
        services = [
            service_program(
                spec,
                self.state,
                self.timing.name,
                {**extra.service_env.get(spec.name, {}), **stable_environment(self.state, spec.name)},
            )
            for spec in catalog.SERVICES
        ]
        # New versions a rollout started beside their stable one (scripts.canary), kept across `make up`.
        canaries = canary_programs(self.state, self.timing.name, extra.service_env)
        return [with_memory_settings(program) for program in [*extra.programs, *services, *canaries]]

    def apply_programs(self) -> list[str]:
        """Re-render supervisord's config from ``programs()`` and apply it: added or changed programs
        (re)start, removed ones stop. Returns the names of the programs that changed."""
        self._require_running()
        self.state.supervisor_conf.write_text(render_config(self.state, self.programs(), self.timing))
        return self.supervisor.apply_config()

    def _prepare_state(self) -> None:
        for folder in (self.state.logs, self.state.registry, self.state.traces, self.state.secrets):
            folder.mkdir(parents=True, exist_ok=True)
        registry_hold.release(self.state.registry)  # a drill interrupted before its rollback
        os.chmod(self.state.secrets, 0o700)
        token_file = self.state.admin_token_file
        if not token_file.exists():
            token_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32))

    def _forget_previous_run(self) -> None:
        """Registrations and scrape targets of an earlier run would show as stale or down."""
        # Empty the folders but keep them: Prometheus watches the targets folder itself.
        for folder in (self.state.registry / "instances", self.state.root / "prometheus" / "targets"):
            for entry in folder.glob("*") if folder.exists() else ():
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    def _check_ports(self, programs: list[ProgramSpec]) -> None:
        running = set()
        if self.supervisor.running():
            running = {p["name"] for p in self.supervisor.processes() if p["statename"] in {"RUNNING", "STARTING"}}
        for program in programs:
            if program.name in running:
                continue
            for port in program.ports:
                if not port_is_free(port):
                    raise PlatformError(
                        f"port {port} ({program.name}) is already in use by another process: stop it, "
                        "or run with FIREDRILL_PORT_OFFSET=<n> to shift every Firedrill port"
                    )

    def up(self, progress: Progress = _quiet, wait_timeout_s: float = 90) -> Endpoints:
        self._prepare_state()
        programs = self.programs(write_config=True)
        self._check_ports(programs)
        self.state.supervisor_conf.write_text(render_config(self.state, programs, self.timing))
        if self.supervisor.running():
            changed = self.supervisor.apply_config()
            progress(f"supervisor already running; reloaded ({len(changed)} programs changed)")
            for program in programs:
                self.supervisor.start(program.name)
        else:
            self._forget_previous_run()
            progress(f"starting supervisord ({len(programs)} programs) in {self.state.root}")
            self.supervisor.start_daemon()
        self.wait_healthy(programs, progress, wait_timeout_s)
        for callee in self._partition().heal_orphans():
            progress(f"healed the partition in front of {callee} left by a drill that is gone")
        self.wait_scraped(progress, wait_timeout_s)
        self.seed_demo_data(progress)
        return self.endpoints()

    def wait_scraped(self, progress: Progress, timeout_s: float) -> None:
        """Until Prometheus has scraped every service successfully: drills start from a true baseline."""
        from scripts.promql import Prometheus, PrometheusError

        prometheus = Prometheus(self.endpoints().prometheus)
        wanted = set(catalog.service_names())
        started = time.monotonic()
        up: set[str] = set()

        def all_scraped() -> bool:
            nonlocal up
            try:
                up = {
                    t["labels"].get("service", "")
                    for t in prometheus.targets()
                    if t["labels"].get("job") == "services" and t.get("health") == "up"
                }
            except PrometheusError:
                up = set()
            return wanted <= up

        try:
            wait_until(all_scraped, timeout_s=timeout_s, interval_s=0.5, what="every service scraped")
        except TimedOut:
            missing = ", ".join(sorted(wanted - up))
            raise PlatformError(f"Prometheus does not scrape {missing} successfully after {timeout_s:.0f}s") from None
        progress(f"  prometheus     scraping all {len(wanted)} services after {time.monotonic() - started:4.1f}s")

    def seed_demo_data(self, progress: Progress) -> None:
        """Movies and ratings for the demo, through the real APIs (idempotent)."""
        env = {**os.environ, "FIREDRILL_STATE_DIR": str(self.state.root)}
        done = subprocess.run(
            [sys.executable, "-m", "scripts.movie.seed"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise PlatformError(f"seeding the movie demo data failed: {(done.stderr or done.stdout).strip()}")
        progress(f"  {done.stdout.strip()}")

    def wait_healthy(self, programs: list[ProgramSpec], progress: Progress, timeout_s: float) -> None:
        started = time.monotonic()
        pending = {p.name: p for p in programs}

        def none_pending() -> bool:
            for name, program in list(pending.items()):
                info = self.supervisor.process(name)
                if info["statename"] in {"FATAL", "EXITED", "BACKOFF"}:
                    log_tail = self.log_tail(name, 15)
                    raise PlatformError(f"{name} failed to start ({info['statename']}); last log lines:\n{log_tail}")
                if info["statename"] == "RUNNING" and (program.health_url is None or http_ok(program.health_url)):
                    progress(f"  {name:<14} healthy after {time.monotonic() - started:4.1f}s")
                    del pending[name]
            return not pending

        try:
            wait_until(none_pending, timeout_s=timeout_s, interval_s=0.2, what="every program healthy")
        except TimedOut:
            raise PlatformError(
                f"not healthy after {timeout_s:.0f}s: {', '.join(sorted(pending))} (logs in {self.state.logs})"
            ) from None

    def down(self, progress: Progress = _quiet) -> None:
        if not self.supervisor.running():
            progress("local platform is not running")
            return
        progress("stopping every program and supervisord")
        self.supervisor.shutdown()
        progress("stopped")

    # -- the Platform verbs used by drills ----------------------------------------------------

    def _require_running(self) -> None:
        if not self.supervisor.running():
            raise PlatformError(f"the local platform is not running in {self.state.root}: run `make up`")

    def refuses(self, unit: str) -> str | None:
        """Why this platform will not stop ``unit``, or None when it will (it runs everything itself)."""
        return None

    def start(self, unit: str) -> None:
        self._require_running()
        if unit == REGISTRY_UNIT:
            registry_hold.release(self.state.registry)
            return
        self.supervisor.start(PROGRAM_ALIASES.get(unit, unit))

    def stop(self, unit: str) -> None:
        """Stop a program; ``registry`` takes the file registry away from every service instead."""
        self._require_running()
        if unit == REGISTRY_UNIT:
            registry_hold.hold(self.state.registry)
            return
        self.supervisor.stop(PROGRAM_ALIASES.get(unit, unit))

    def restart(self, unit: str) -> None:
        self.stop(unit)
        self.start(unit)

    def kill(self, unit: str) -> None:
        self._require_running()
        self.supervisor.kill(unit)

    def scale(self, unit: str, count: int) -> None:
        if count == 0:
            self.stop(unit)
        elif count == 1:
            self.start(unit)
        else:
            raise PlatformError("the local platform runs one instance per service; scale on a Nomad cluster")

    def status(self) -> list[UnitStatus]:
        if not self.supervisor.running():
            return []
        health = {p.name: p.health_url for p in self.programs()}
        result = []
        for info in self.supervisor.processes():
            url = health.get(info["name"])
            healthy = http_ok(url) if url and info["statename"] == "RUNNING" else (False if url else None)
            detail = info.get("description", "")
            if healthy is False or info["statename"] in {"FATAL", "BACKOFF", "EXITED"}:
                detail = reason(info, self.log_file(info["name"]), self.log_file(RESTARTER))
            result.append(UnitStatus(info["name"], info["statename"], healthy, detail))
        return result

    def set_fault(self, service: str, *, latency_ms: int = 0, error_ratio: float = 0.0) -> None:
        if service != "response":
            raise PlatformError("fault injection is hosted by response; other services have no switch")
        token = self.state.admin_token_file.read_text().strip()
        body = json.dumps({"latency_ms": latency_ms, "error_ratio": error_ratio}).encode()
        request = urllib.request.Request(  # noqa: S310 (loopback URL we built)
            self.endpoints().services["response"] + "/admin/faults",
            data=body,
            method="PUT",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5, context=self.endpoints().client_ssl()) as answer:  # noqa: S310
            if answer.status != 200:
                raise PlatformError(f"response refused the fault switch: HTTP {answer.status}")

    def break_startup(self, unit: str) -> None:
        require_service(unit)
        self._set_startup_fault(unit, broken=True)

    def restore_startup(self, unit: str) -> None:
        require_service(unit)
        self._set_startup_fault(unit, broken=False)
        self.supervisor.start(unit)

    def _set_startup_fault(self, unit: str, *, broken: bool) -> None:
        """Rewrite the program's environment and reload: supervisord restarts that program alone."""
        self._require_running()
        config = self.state.supervisor_conf.read_text()
        changed = with_startup_fault(config, unit, broken)
        if changed != config:
            self.state.supervisor_conf.write_text(changed)
            self.supervisor.apply_config()

    def _partition(self) -> LocalPartition:
        if self._partitions is None:
            self._partitions = LocalPartition(
                self.state.registry, self.state.root / "faults", self.timing.heartbeat_ttl_s
            )
        return self._partitions

    def partition_refusal(self, caller: str, callee: str) -> str | None:
        return partition_refusal(caller, callee)

    def partition(self, caller: str, callee: str) -> None:
        self._require_running()
        self._partition().cut(caller, callee)

    def heal_partition(self, caller: str, callee: str) -> None:
        self._partition().heal(callee)

    def admin_call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        port: str = "api",
        body: dict[str, Any] | None = None,
        timeout_s: float = 10.0,
    ) -> list[AdminAnswer]:
        """One instance per service locally, with ``service``'s own admin token (the file the agent renders)."""
        check_port(port)
        spec = catalog.service(service)
        token = self._admin_token(service)
        if port == "ops":
            if spec.metrics_port is None:
                raise PlatformError(f"{service} has no ops port")
            base, context = local_url(catalog.port(spec.metrics_port)), None
        else:
            endpoints = self.endpoints()
            base, context = endpoints.services[service], endpoints.client_ssl()
        return [admin_request(base, method, path, token, body=body, timeout_s=timeout_s, ssl_context=context)]

    def _admin_token(self, service: str) -> str:
        path = self.state.admin_token(service)
        try:
            token = path.read_text().strip()
        except FileNotFoundError:
            message = f"{service}'s admin token is not rendered yet ({path}): is the vault agent up?"
            raise PlatformError(message) from None
        if not token:
            raise PlatformError(f"{service}'s admin token file {path} is empty")
        return token

    def endpoints(self) -> Endpoints:
        from scripts.vault.local import tls_files

        services = {}
        for spec in catalog.SERVICES:
            port = spec.http_port if spec.http_port is not None else spec.port
            services[spec.name] = f"{service_scheme(spec)}://127.0.0.1:{catalog.port(port)}"
        grafana = catalog.infra("grafana")
        jaeger = catalog.infra("jaeger")
        return Endpoints(
            services=services,
            prometheus=local_url(catalog.port(catalog.infra("prometheus").port)),
            alertmanager=local_url(catalog.port(catalog.infra("alertmanager").port)),
            incidents=services["incidents"],
            grafana=local_url(catalog.port(grafana.port)) if find_binary("grafana-server", "grafana") else None,
            jaeger=local_url(catalog.port(jaeger.port)) if find_binary("jaeger-all-in-one", "jaeger") else None,
            vault=local_url(catalog.port(catalog.infra("openbao").port)),
            operator_tls=tls_files(self.state.root, "operator"),
        )

    def log_file(self, unit: str) -> Path:
        return self.state.logs / f"{unit}.log"

    def log_tail(self, unit: str, lines: int = 20) -> str:
        path = self.log_file(unit)
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return f"(no log at {path})"
