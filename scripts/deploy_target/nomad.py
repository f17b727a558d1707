"""The drills' Platform on a Nomad cluster (chosen when NOMAD_ADDR is set).

A *unit* is a job (``hello``, ``movie``, ``monitoring``) or a service/group placed by one
(``metadata`` is the group of the ``movie`` job; see ``scripts.cluster.jobspec.PLACEMENT``).
Stopping a whole job deregisters it (``nomad job stop``); stopping one group of a multi-group job
scales it to zero, and starting it again restores the count of the last version that ran it.
Endpoints come from Consul's healthy instances; the fault switch of response is called on every
healthy instance with the admin token read from Vault.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nomad
import requests

from scripts.cluster.client import ClusterError, make_client, nomad_call
from scripts.cluster.jobspec import PLACEMENT, job_files
from scripts.deploy_target import startup_fault
from scripts.deploy_target.admin_http import admin_request, check_port
from scripts.deploy_target.interface import AdminAnswer, Endpoints, PlatformError, UnitStatus
from scripts.deploy_target.operator_cert import issue_operator_tls
from services.common import catalog
from services.common.config import TlsFiles
from services.common.tls import TlsMaterial, service_dns_name

# Why the partition drill cannot run here (Platform.partition_refusal).
PARTITION_REFUSAL = (
    "a partition needs a fault proxy in the caller's path; on Nomad callers find instances through "
    "Consul, and the drill runs off the cluster, where it can place no proxy the caller could reach "
    "(network namespaces or Consul intentions on the clients would be the cluster's own way): run "
    "the partition drill on the local platform"
)
# Units drills name that Nomad does not run: stopping them is refused, saying why (starting them is a
# no-op, since Firedrill never stopped them).
OUTSIDE_NOMAD = {
    "vault": "Vault runs on the server nodes under systemd, not as a Nomad job: Firedrill cannot stop "
    "or start it through Nomad (stop it by hand on the servers to rehearse this; see docs/drills.md)",
    "registry": "the registry is Consul, which runs on every node under systemd, not as a Nomad job: "
    "Firedrill cannot stop or start it through Nomad, and stopping it takes Nomad's own service "
    "discovery down with it (see docs/drills.md)",
}


@dataclass(frozen=True, slots=True)
class Target:
    job: str
    group: str | None  # None: the whole job


class NomadPlatform:
    name = "nomad"

    def __init__(
        self,
        client: nomad.Nomad,
        *,
        jobs: tuple[str, ...] | None = None,
        consul_addr: str | None = None,
        vault_addr: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self._jobs = jobs if jobs is not None else tuple(job_files())
        self._env = dict(os.environ if environ is None else environ)
        self._consul_addr = consul_addr or self._env.get("CONSUL_HTTP_ADDR")
        self._vault_addr = vault_addr or self._env.get("VAULT_ADDR")
        self._operator_files: TlsFiles | None = None

    @classmethod
    def from_env(cls) -> NomadPlatform:
        try:
            return cls(make_client())
        except ClusterError as exc:
            raise PlatformError(str(exc)) from exc

    # --- helpers --------------------------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return nomad_call(what, fn, *args, **kwargs)
        except ClusterError as exc:
            raise PlatformError(str(exc)) from exc

    def target(self, unit: str) -> Target:
        if unit in PLACEMENT:
            job, group = PLACEMENT[unit]
            if job == unit:
                return Target(job, None)
            return Target(job, group)
        if "/" in unit:
            job, group = unit.split("/", 1)
            return Target(job, group)
        if unit in self._jobs:
            return Target(unit, None)
        known = sorted(set(PLACEMENT) | set(self._jobs))
        raise PlatformError(f"unknown unit {unit!r}; known: {', '.join(known)}")

    def _job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(f"reading job {job_id}", self._client.job.get_job, job_id)
        return result

    def _group_names(self, job: dict[str, Any]) -> list[str]:
        return [g["Name"] for g in job.get("TaskGroups") or []]

    def _scale(self, job_id: str, group: str, count: int, message: str) -> None:
        if count < 0:
            raise PlatformError(f"count must be >= 0, got {count}")
        payload = {"Count": count, "Target": {"Group": group}, "Message": message}
        self._call(
            f"scaling {job_id}/{group} to {count}",
            self._client.job.request,
            job_id,
            "scale",
            json=payload,
            method="post",
        )

    def _allocations(self, target: Target) -> list[dict[str, Any]]:
        allocs = self._call(f"allocations of {target.job}", self._client.job.get_allocations, target.job)
        return [
            a
            for a in allocs
            if a.get("ClientStatus") == "running" and (target.group is None or a.get("TaskGroup") == target.group)
        ]

    # --- Platform verbs -----------------------------------------------------------------------------

    def refuses(self, unit: str) -> str | None:
        """Why this platform will not stop ``unit``, or None when it will."""
        return OUTSIDE_NOMAD.get(unit)

    def stop(self, unit: str) -> None:
        if unit in OUTSIDE_NOMAD:
            raise PlatformError(f"cannot stop {unit}: {OUTSIDE_NOMAD[unit]}")
        target = self.target(unit)
        if target.group is None:
            self._call(f"stopping job {target.job}", self._client.job.deregister_job, target.job)
            return
        self._scale(target.job, target.group, 0, f"firedrill: stop {unit}")

    def start(self, unit: str) -> None:
        if unit in OUTSIDE_NOMAD:
            return
        target = self.target(unit)
        job = self._job(target.job)
        if target.group is None:
            if not job.get("Stop"):
                return
            job["Stop"] = False
            self._call(f"starting job {target.job}", self._client.job.register_job, target.job, {"Job": job})
            return
        count = self._last_count(target.job, target.group)
        self._scale(target.job, target.group, count, f"firedrill: start {unit}")

    def _last_count(self, job_id: str, group: str) -> int:
        """The count the group had in the newest version where it ran at all (1 if never)."""
        versions = self._call(f"versions of {job_id}", self._client.job.get_versions, job_id)
        for version in sorted(versions.get("Versions") or [], key=lambda v: -int(v.get("Version", 0))):
            for tg in version.get("TaskGroups") or []:
                if tg.get("Name") == group and int(tg.get("Count", 0)) > 0:
                    return int(tg["Count"])
        return 1

    def restart(self, unit: str) -> None:
        target = self.target(unit)
        allocs = self._allocations(target)
        if not allocs:
            raise PlatformError(f"{unit} has no running allocation to restart")
        for alloc in allocs:
            self._call(
                f"restarting allocation {alloc['ID'][:8]}",
                self._client.client.allocation.restart_allocation,
                alloc["ID"],
            )

    def signal(self, unit: str, signal: str = "SIGHUP", task: str | None = None) -> int:
        """Send ``signal`` to every running allocation of ``unit``; returns how many were signalled."""
        target = self.target(unit)
        allocs = self._allocations(target)
        for alloc in allocs:
            self._call(
                f"signalling allocation {alloc['ID'][:8]}",
                self._client.client.allocation.signal_allocation,
                alloc["ID"],
                signal,
                task,
            )
        return len(allocs)

    def scale(self, unit: str, count: int) -> None:
        target = self.target(unit)
        group = target.group
        if group is None:
            groups = self._group_names(self._job(target.job))
            if len(groups) != 1:
                raise PlatformError(f"{target.job} has groups {', '.join(groups)}: scale one of them")
            group = groups[0]
        self._scale(target.job, group, count, f"firedrill: scale {unit} to {count}")

    def status(self) -> list[UnitStatus]:
        units: list[UnitStatus] = []
        for job_id in self._jobs:
            try:
                job = nomad_call(f"reading job {job_id}", self._client.job.get_job, job_id)
            except ClusterError as exc:
                if "HTTP 404" in str(exc):
                    units.append(UnitStatus(job_id, "STOPPED", None, "not registered"))
                    continue
                raise PlatformError(str(exc)) from exc
            summary = self._call(f"summary of {job_id}", self._client.job.get_summary, job_id).get("Summary") or {}
            allocs = self._call(f"allocations of {job_id}", self._client.job.get_allocations, job_id)
            for tg in job.get("TaskGroups") or []:
                name = tg["Name"]
                counts = summary.get(name) or {}
                running = int(counts.get("Running", 0))
                health = [
                    (a.get("DeploymentStatus") or {}).get("Healthy")
                    for a in allocs
                    if a.get("TaskGroup") == name and a.get("ClientStatus") == "running"
                ]
                known = [h for h in health if h is not None]
                healthy = all(known) if known else None
                if job.get("Stop") or int(tg.get("Count", 0)) == 0:
                    state = "STOPPED"
                elif running >= int(tg.get("Count", 0)):
                    state = "RUNNING"
                elif int(counts.get("Starting", 0)) or int(counts.get("Queued", 0)):
                    state = "STARTING"
                elif int(counts.get("Failed", 0)) or int(counts.get("Lost", 0)):
                    state = "FAILED"
                else:
                    state = "STARTING"
                unit = name if PLACEMENT.get(name, (None, None))[0] == job_id else f"{job_id}/{name}"
                detail = f"{running}/{tg.get('Count', 0)} running, job v{job.get('Version')}"
                units.append(UnitStatus(unit, state, healthy if state == "RUNNING" else None, detail))
        return units

    # --- Consul and Vault side -------------------------------------------------------------------

    def _healthy(self, service: str) -> list[dict[str, Any]]:
        if not self._consul_addr:
            raise PlatformError("CONSUL_HTTP_ADDR is not set: export the lines `terraform output -raw env` prints")
        base = self._consul_addr if "://" in self._consul_addr else f"http://{self._consul_addr}"
        headers = {"X-Consul-Token": self._env["CONSUL_HTTP_TOKEN"]} if self._env.get("CONSUL_HTTP_TOKEN") else {}
        verify: bool | str = self._env.get("CONSUL_CACERT") or True
        try:
            answer = requests.get(
                f"{base.rstrip('/')}/v1/health/service/{service}",
                params={"passing": "1"},
                headers=headers,
                timeout=10,
                verify=verify,
            )
            answer.raise_for_status()
        except requests.RequestException as exc:
            raise PlatformError(f"asking Consul for {service} failed: {exc}") from exc
        entries: list[dict[str, Any]] = answer.json()
        return entries

    def _address(self, service: str, port_meta: str | None = None) -> str | None:
        entries = self._healthy(service)
        if not entries:
            return None
        svc = entries[0]["Service"]
        host = svc.get("Address") or entries[0].get("Node", {}).get("Address", "")
        port = (svc.get("Meta") or {}).get(port_meta, "") if port_meta else ""
        return f"{host}:{port or svc['Port']}"

    def endpoints(self) -> Endpoints:
        services: dict[str, str] = {}
        for spec in catalog.SERVICES:
            if spec.http_port is not None:
                addr = self._address(spec.name, "http_port")
                scheme = "https"
            else:
                addr = self._address(spec.name)
                scheme = "https" if spec.protocol == catalog.Protocol.HTTP else "grpc"
            if addr:
                services[spec.name] = f"{scheme}://{addr}"

        def url(name: str) -> str | None:
            addr = self._address(name)
            return f"http://{addr}" if addr else None

        prometheus, alertmanager = url("prometheus"), url("alertmanager")
        incidents = services.get("incidents")
        if prometheus is None or alertmanager is None or incidents is None:
            missing = [
                n
                for n, v in (("prometheus", prometheus), ("alertmanager", alertmanager), ("incidents", incidents))
                if v is None
            ]
            raise PlatformError(f"no healthy instance of {', '.join(missing)} in Consul: run `make deploy`")
        return Endpoints(
            services=services,
            prometheus=prometheus,
            alertmanager=alertmanager,
            incidents=incidents,
            grafana=url("grafana"),
            jaeger=url("jaeger"),
            vault=self._vault_addr,
            # Every API listener requires the platform's client certificate (drills' logins, tooling).
            operator_tls=self.operator_tls() if self._vault_addr else None,
        )

    def _vault_client(self, what: str) -> Any:
        """An hvac client with the operator's own token (VAULT_TOKEN, as the Vault CLI reads it)."""
        import hvac  # only the operator's calls need Vault

        if not self._vault_addr:
            raise PlatformError(f"VAULT_ADDR is not set: {what} comes from Vault")
        return hvac.Client(
            url=self._vault_addr, token=self._env.get("VAULT_TOKEN"), verify=self._env.get("VAULT_CACERT") or True
        )

    def operator_tls(self) -> TlsFiles:
        """The operator's client certificate, issued by Vault's pki_int once per platform object."""
        if self._operator_files is None:
            self._operator_files = issue_operator_tls(self._vault_client("the operator certificate"))
        return self._operator_files

    def _service_ssl(self, service: str) -> ssl.SSLContext:
        """Presents the operator certificate and verifies the service's against the platform CA and its
        Consul name: every API listener requires a client certificate from the platform PKI."""
        return TlsMaterial(self.operator_tls(), "operator").client_context(service_dns_name(service))

    def _admin_token(self, service: str) -> str:
        """``service``'s own admin token, read from Vault (KV v2 at secret/) with the operator's token."""
        from scripts.vault.vaultapi import admin_token_path

        path = admin_token_path(service)
        client = self._vault_client(f"{service}'s admin token")
        try:
            secret = client.secrets.kv.v2.read_secret_version(
                path=path, mount_point="secret", raise_on_deleted_version=True
            )
        except Exception as exc:  # hvac raises many kinds (Forbidden, InvalidPath, transport errors)
            raise PlatformError(f"reading secret/{path} from Vault failed: {exc}") from exc
        token = str(secret["data"]["data"].get("token", "")).strip()
        if not token:
            raise PlatformError(f"secret/{path} has no 'token' field")
        return token

    def set_fault(self, service: str, *, latency_ms: int = 0, error_ratio: float = 0.0) -> None:
        if service != "response":
            raise PlatformError("fault injection is hosted by response; other services have no switch")
        body = {"latency_ms": latency_ms, "error_ratio": error_ratio}
        for answer in self.admin_call("response", "PUT", "/admin/faults", body=body):
            if not answer.ok:
                raise PlatformError(
                    f"response {answer.instance} refused the fault switch: HTTP {answer.status} {answer.message()}"
                )

    # --- start-up fault (crash-loop drill) --------------------------------------------------------

    @staticmethod
    def _tasks_named(job: dict[str, Any], unit: str) -> list[dict[str, Any]]:
        groups = job.get("TaskGroups") or []
        return [task for tg in groups for task in tg.get("Tasks") or [] if task.get("Name") == unit]

    def _broken(self, job: dict[str, Any], unit: str) -> bool:
        return any(startup_fault.is_broken(task.get("Env")) for task in self._tasks_named(job, unit))

    def break_startup(self, unit: str) -> None:
        """Register a new job version whose task for ``unit`` gets the start-up fault.

        With the jobs' canary update the canary crash-loops (Nomad restarts it: the
        ``nomad.client.allocs.restart`` counter CrashLooping reads) while the previous version keeps
        serving; ``auto_revert`` reverts by itself once the deployment's healthy deadline passes.
        """
        startup_fault.require_service(unit)
        target = self.target(unit)
        job = self._job(target.job)
        tasks = self._tasks_named(job, unit)
        if not tasks:
            raise PlatformError(f"job {target.job} has no task named {unit}")
        if self._broken(job, unit):
            return
        for task in tasks:
            task["Env"] = {**(task.get("Env") or {}), startup_fault.VARIABLE: startup_fault.VALUE}
        self._call(
            f"registering {target.job} with {unit} broken at start-up",
            self._client.job.register_job,
            target.job,
            {"Job": job},
        )

    def restore_startup(self, unit: str) -> None:
        """Revert the job to its newest version without the start-up fault (Nomad's job revert)."""
        startup_fault.require_service(unit)
        target = self.target(unit)
        job = self._job(target.job)
        if not self._broken(job, unit):
            return  # never broken, already restored, or auto_revert was faster
        current = int(job.get("Version", 0))
        versions = self._call(f"versions of {target.job}", self._client.job.get_versions, target.job)
        good = [
            int(v.get("Version", 0))
            for v in versions.get("Versions") or []
            if int(v.get("Version", 0)) < current and not self._broken(v, unit)
        ]
        if not good:
            raise PlatformError(f"no version of {target.job} without the start-up fault of {unit} to revert to")
        self._call(
            f"reverting {target.job} from version {current} to {max(good)}",
            self._client.job.revert_job,
            target.job,
            max(good),
            current,
        )

    # --- partition (refused) -------------------------------------------------------------------------

    def partition_refusal(self, caller: str, callee: str) -> str | None:
        return PARTITION_REFUSAL

    def partition(self, caller: str, callee: str) -> None:
        raise PlatformError(f"cannot partition {caller} from {callee} on Nomad: {PARTITION_REFUSAL}")

    def heal_partition(self, caller: str, callee: str) -> None:
        return None  # partition() never cuts anything here

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
        """Every healthy instance Consul knows: its service port over mTLS (the operator certificate from
        Vault, the service's verified against the platform CA and its Consul name) or its ops port
        (``metrics_port`` in the service's meta) over plain HTTP, with that service's own admin token
        from Vault (``secret/firedrill/<service>/admin``)."""
        check_port(port)
        entries = self._healthy(service)
        if not entries:
            raise PlatformError(f"no healthy {service} instance in Consul")
        token = self._admin_token(service)
        answers = []
        for entry in entries:
            svc = entry["Service"]
            host = svc.get("Address") or entry.get("Node", {}).get("Address", "")
            if port == "ops":
                ops_port = (svc.get("Meta") or {}).get("metrics_port")
                if not ops_port:
                    raise PlatformError(f"{service} at {host}:{svc['Port']} registers no metrics_port in its meta")
                base, context = f"http://{host}:{ops_port}", None
            else:
                base, context = f"https://{host}:{svc['Port']}", self._service_ssl(service)
            answer = admin_request(base, method, path, token, body=body, timeout_s=timeout_s, ssl_context=context)
            answers.append(answer)
        return answers
