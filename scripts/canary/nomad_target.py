"""Rollouts on a Nomad cluster: the group's ``update`` block and the deployments API.

The new version is registered as a new version of the job (its image tag, ``FIREDRILL_VERSION``
and the service meta ``version`` changed) with an ``update`` block chosen by the strategy;
Nomad places it, the driver follows the deployment (``GET /v1/job/<id>/deployment``), promotes
it (``POST /v1/deployment/promote/<id>``) once the analysis passed, or fails it
(``POST /v1/deployment/fail/<id>``), which with ``auto_revert`` sends the job back to its last
stable version. A rolling update is paused (``POST /v1/deployment/pause/<id>``) after each new
instance while the analysis judges it, and resumed for the next. A deployment that already
succeeded is rolled back by reverting the job (``POST /v1/job/<id>/revert``).

Traffic weights on Nomad are not set by the driver: canaries register in Consul like any
instance, and callers spread calls evenly over healthy instances, so the canary's share is
canaries / (group count + canaries). The plans below say so in their step descriptions.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from typing import Any

import nomad

from scripts.canary.driver import Exposure
from scripts.canary.strategies import Plan, Step
from scripts.cluster.client import ClusterError, make_client, nomad_call
from scripts.cluster.jobspec import PLACEMENT
from scripts.deploy_target.interface import PlatformError
from scripts.local.versions import VersionError, built_in_fault
from services.common import catalog
from services.common.config import VERSION_PATTERN
from services.common.waiting import TimedOut, wait_until

Progress = Callable[[str], None]
ACTIVE_DEPLOYMENT = {"running", "paused", "pending", "blocked", "unblocking", "initializing"}
IMAGE_TAG = re.compile(r"^(?P<repo>[^@]+?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]*))?$")


def _quiet(_: str) -> None:
    return None


def image_with_tag(image: str, version: str) -> str:
    """``registry/x/services:1.2`` at ``version``: ``registry/x/services:<version>`` (digests refused)."""
    if "@" in image:
        raise PlatformError(f"the job pins its image by digest ({image}); deploy a version tag instead")
    match = IMAGE_TAG.match(image)
    if match is None:
        raise PlatformError(f"cannot read the image reference {image!r}")
    repo = match.group("repo")
    # A registry port (host:5000/x) is part of the repository, not a tag.
    if match.group("tag") is None and ":" in repo.rsplit("/", 1)[-1]:
        raise PlatformError(f"cannot read the image reference {image!r}")
    return f"{repo}:{version}"


class NomadTarget:
    name = "nomad"

    def __init__(
        self,
        client: nomad.Nomad,
        *,
        prometheus_url: str = "",
        progress: Progress = _quiet,
        timeout_s: float = 600.0,
        poll_s: float = 2.0,
    ) -> None:
        self._client = client
        self.prometheus_url = prometheus_url
        self._progress = progress
        self._timeout_s = timeout_s
        self._poll_s = poll_s
        self._registered_version: dict[str, int] = {}  # service -> the job version we registered
        self._deployment_ids: dict[str, str] = {}  # service -> the ID of that version's deployment

    @classmethod
    def from_env(cls, progress: Progress = _quiet) -> NomadTarget:
        from scripts.deploy_target.nomad import NomadPlatform

        try:
            client = make_client()
        except ClusterError as exc:
            raise PlatformError(str(exc)) from exc
        prometheus = NomadPlatform(client).endpoints().prometheus
        return cls(client, prometheus_url=prometheus, progress=progress)

    # -- reading the job -------------------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return nomad_call(what, fn, *args, **kwargs)
        except ClusterError as exc:
            raise PlatformError(str(exc)) from exc

    @staticmethod
    def _placement(service: str) -> tuple[str, str]:
        catalog.service(service)
        return PLACEMENT[service]

    def _job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._call(f"reading job {job_id}", self._client.job.get_job, job_id)
        return job

    @staticmethod
    def _group(job: dict[str, Any], group: str) -> dict[str, Any]:
        for tg in job.get("TaskGroups") or []:
            if tg.get("Name") == group:
                return dict(tg)
        raise PlatformError(f"job {job.get('ID')} has no group {group!r}")

    @staticmethod
    def _task(group: dict[str, Any], name: str) -> dict[str, Any]:
        tasks = group.get("Tasks") or []
        for task in tasks:
            if task.get("Name") == name:
                return dict(task)
        if len(tasks) == 1:
            return dict(tasks[0])
        raise PlatformError(f"group {group.get('Name')} has no task {name!r}")

    def _deployment(self, job_id: str) -> dict[str, Any] | None:
        found = self._call(f"reading the deployment of {job_id}", self._client.job.get_deployment, job_id)
        return found or None

    def stable_version(self, service: str) -> str:
        job_id, group_name = self._placement(service)
        task = self._task(self._group(self._job(job_id), group_name), service)
        version = (task.get("Env") or {}).get("FIREDRILL_VERSION")
        if version:
            return str(version)
        match = IMAGE_TAG.match(str((task.get("Config") or {}).get("image", "")))
        return (match.group("tag") or "unknown") if match else "unknown"

    def stable_problem(self, service: str) -> str | None:
        job_id, group_name = self._placement(service)
        job = self._job(job_id)
        if job.get("Stop"):
            return f"job {job_id} is stopped"
        deployment = self._deployment(job_id)
        if deployment and deployment.get("Status") in ACTIVE_DEPLOYMENT:
            return f"deployment {str(deployment.get('ID'))[:8]} of {job_id} is still {deployment.get('Status')}"
        count = int(self._group(job, group_name).get("Count", 0))
        summary = self._call(f"summary of {job_id}", self._client.job.get_summary, job_id).get("Summary") or {}
        running = int((summary.get(group_name) or {}).get("Running", 0))
        if count == 0 or running < count:
            return f"{running} of {count} allocations of {job_id}/{group_name} running"
        allocs = self._call(f"allocations of {job_id}", self._client.job.get_allocations, job_id)
        unhealthy = [
            a["ID"][:8]
            for a in allocs
            if a.get("TaskGroup") == group_name
            and a.get("ClientStatus") == "running"
            and (a.get("DeploymentStatus") or {}).get("Healthy") is False
        ]
        if unhealthy:
            return f"allocations {', '.join(unhealthy)} of {job_id}/{group_name} are unhealthy"
        return None

    def plan(self, service: str, strategy: str) -> Plan:
        job_id, group_name = self._placement(service)
        count = int(self._group(self._job(job_id), group_name).get("Count", 1))
        return nomad_plan(strategy, count)

    # -- the rollout -----------------------------------------------------------------------------

    def _new_job(self, service: str, version: str, canaries: int) -> dict[str, Any]:
        job_id, group_name = self._placement(service)
        job = copy.deepcopy(self._job(job_id))
        for tg in job.get("TaskGroups") or []:
            if tg.get("Name") != group_name:
                continue
            tg["Update"] = {
                **(tg.get("Update") or {}),
                "Canary": canaries,
                "MaxParallel": 1,
                "AutoPromote": False,
                "AutoRevert": True,
            }
            for svc in tg.get("Services") or []:
                svc["Meta"] = {**(svc.get("Meta") or {}), "version": version}
            for task in tg.get("Tasks") or []:
                if task.get("Name") != service and len(tg.get("Tasks") or []) > 1:
                    continue
                config = task.setdefault("Config", {})
                if "image" in config:
                    config["image"] = image_with_tag(str(config["image"]), version)
                task["Env"] = {**(task.get("Env") or {}), "FIREDRILL_VERSION": version}
                for svc in task.get("Services") or []:
                    svc["Meta"] = {**(svc.get("Meta") or {}), "version": version}
        return job

    def _wait(self, what: str, done: Callable[[], bool]) -> None:
        try:
            wait_until(done, timeout_s=self._timeout_s, interval_s=self._poll_s, what=what)
        except TimedOut:
            raise PlatformError(f"{what}: not done after {self._timeout_s:.0f}s") from None

    def _our_deployment(self, service: str) -> dict[str, Any]:
        job_id, _ = self._placement(service)
        deployment = self._deployment(job_id)
        wanted = self._registered_version.get(service)
        if not deployment or deployment.get("JobVersion") != wanted:
            raise PlatformError(f"no deployment of {job_id} version {wanted} yet")
        self._deployment_ids[service] = str(deployment["ID"])
        return deployment

    def _group_state(self, service: str) -> tuple[str, dict[str, Any]]:
        _, group_name = self._placement(service)
        deployment = self._our_deployment(service)
        status = str(deployment.get("Status", ""))
        if status in {"failed", "cancelled"}:
            raise PlatformError(f"deployment {status}: {deployment.get('StatusDescription', '')}")
        return status, (deployment.get("TaskGroups") or {}).get(group_name) or {}

    def start_new(self, service: str, version: str, plan: Plan) -> None:
        if not VERSION_PATTERN.fullmatch(version) or built_in_fault(version):
            raise VersionError(f"version {version!r}: an image tag (built-in faults are for the local platform only)")
        job_id, _ = self._placement(service)
        count = int(self._group(self._job(job_id), self._placement(service)[1]).get("Count", 1))
        canaries = canaries_for(plan.strategy, count)
        job = self._new_job(service, version, canaries)
        answer = self._call(f"registering {job_id} at {version}", self._client.job.register_job, job_id, {"Job": job})
        self._progress(f"  registered {job_id} at {version} with {canaries} canaries (eval {answer.get('EvalID')})")
        # The job version Nomad gave our registration: the one after the current.
        self._registered_version[service] = int(job.get("Version", -1)) + 1

        def first_new_healthy() -> bool:
            try:
                _status, state = self._group_state(service)
            except PlatformError as exc:
                if str(exc).startswith("no deployment"):
                    return False
                raise
            wanted = canaries if canaries else 1
            return int(state.get("HealthyAllocs", 0)) >= wanted

        if canaries == 0:
            # Rolling: Nomad would replace the next instance as soon as this one is healthy. The
            # deployment and its first placement come in one plan, so pausing it as soon as it shows
            # holds the rollout at one new instance while the analysis judges it.
            self._wait(f"{service} {version}: its deployment", lambda: self._has_our_deployment(service))
            self._pause(service, True)
        self._wait(f"{service} {version}: the first new allocations healthy", first_new_healthy)

    def _has_our_deployment(self, service: str) -> bool:
        try:
            self._our_deployment(service)
        except PlatformError as exc:
            if str(exc).startswith("no deployment"):
                return False
            raise
        return True

    def _pause(self, service: str, pause: bool) -> None:
        """``POST /v1/deployment/pause/<id>``: a paused deployment places nothing new (Nomad's
        reconciler) but keeps following the health of what it placed."""
        # The ID as last read: no extra read between seeing a placement and pausing after it.
        deployment_id = self._deployment_ids.get(service) or str(self._our_deployment(service)["ID"])
        short = deployment_id[:8]
        self._call(
            f"{'pausing' if pause else 'resuming'} deployment {short}",
            self._client.deployment.pause_deployment,
            deployment_id,
            pause,
        )
        self._progress(f"  {'paused' if pause else 'resumed'} deployment {short}")

    def apply_step(self, service: str, stable: str, new: str, step: Step, index: int) -> None:
        if step.weight_percent < 100:
            if index == 0:
                return  # start_new waited for the canaries (or the first rolled instance)
            wanted = step.new_instances

            def placed() -> bool:
                return int(self._group_state(service)[1].get("PlacedAllocs", 0)) >= wanted

            def replaced() -> bool:
                return int(self._group_state(service)[1].get("HealthyAllocs", 0)) >= wanted

            if not placed():
                self._pause(service, False)
                self._wait(f"{service}: Nomad placing instance {wanted} at {new}", placed)
                self._pause(service, True)
            self._wait(f"{service}: {wanted} instances at {new}", replaced)
            return
        if self._group_state(service)[0] == "paused":
            self._pause(service, False)
        deployment = self._our_deployment(service)
        state = (deployment.get("TaskGroups") or {}).get(self._placement(service)[1]) or {}
        if int(state.get("DesiredCanaries", 0)) and not state.get("Promoted"):
            self._call(
                f"promoting deployment {deployment['ID'][:8]}",
                self._client.deployment.promote_deployment_all,
                deployment["ID"],
            )
            self._progress(f"  promoted deployment {deployment['ID'][:8]}: Nomad replaces the remaining instances")
        self._wait(f"{service}: deployment of {new} successful", lambda: self._group_state(service)[0] == "successful")

    def promote(self, service: str, stable: str, new: str) -> None:
        status, _ = self._group_state(service)
        if status != "successful":
            raise PlatformError(f"deployment of {new} is {status}, not successful")

    def rollback(self, service: str, stable: str, new: str) -> Exposure | None:
        job_id, _ = self._placement(service)
        deployment = self._deployment(job_id)
        wanted = self._registered_version.get(service)
        if not deployment or wanted is None or deployment.get("JobVersion") != wanted:
            self._progress(f"  no deployment of ours to roll back for {job_id}")
            return None
        status = deployment.get("Status")
        if status in ACTIVE_DEPLOYMENT:
            self._call(
                f"failing deployment {deployment['ID'][:8]}",
                self._client.deployment.fail_deployment,
                deployment["ID"],
            )
            self._progress(f"  failed deployment {deployment['ID'][:8]}: Nomad reverts {job_id} (auto_revert)")
        elif status == "successful":
            self._call(
                f"reverting {job_id} to version {wanted - 1}",
                self._client.job.revert_job,
                job_id,
                wanted - 1,
                wanted,
            )
            self._progress(f"  reverted {job_id} to job version {wanted - 1}")
        self._wait_reverted(job_id, service, stable)
        return None  # the analysis reads what canaries served from Prometheus (by version label)

    def _wait_reverted(self, job_id: str, service: str, stable: str) -> None:
        def back_on_stable() -> bool:
            try:
                return self.stable_version(service) == stable
            except PlatformError:
                return False

        started = time.monotonic()
        self._wait(f"{job_id} back at {stable}", back_on_stable)
        self._progress(f"  {job_id} runs {stable} again after {time.monotonic() - started:.1f}s")


def canaries_for(strategy: str, count: int) -> int:
    if strategy == "canary":
        return 1
    if strategy == "blue-green":
        return count  # a full second set beside the first
    return 0  # rolling: no canaries, one instance at a time (max_parallel = 1)


def nomad_plan(strategy: str, count: int) -> Plan:
    """The steps Nomad can take: a canary's share is canaries / (count + canaries) of the calls."""
    if count < 1:
        raise PlatformError("the group runs no instance: nothing to compare a new version against")
    if strategy == "canary":
        share = round(100 / (count + 1))
        return Plan(
            "canary",
            (
                Step(share, True, f"1 canary beside {count} stable instances (calls spread evenly)"),
                Step(100, True, "canary promoted: Nomad replaces every stable instance"),
            ),
        )
    if strategy == "blue-green":
        return Plan(
            "blue-green",
            (
                Step(50, True, f"green: {count} canaries beside {count} blue instances, half the calls"),
                Step(100, True, "green promoted: the blue instances stop"),
            ),
        )
    if strategy == "rolling":
        steps = [
            Step(round(100 * k / count), True, f"{k} of {count} instances replaced, the deployment paused", k)
            for k in range(1, count)
        ]
        return Plan("rolling", (*steps, Step(100, True, f"{count} of {count} instances replaced")))
    raise PlatformError(f"unknown strategy {strategy!r}")
