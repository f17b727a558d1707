"""Deploy the jobs in jobs/ to the Nomad cluster at NOMAD_ADDR and follow each deployment.

For every job, in dependency order: parse the HCL through the Nomad API with the deployment's
variables, register it, then follow the deployment group by group until it succeeds, promoting
healthy canaries unless ``--no-promote`` leaves that to the canary analysis. A failed deployment
(Nomad reverts it when ``auto_revert`` is on) stops the run with the unhealthy allocations and
their last task events, and a non-zero exit.

The variables are ``jobspec.variables_for``: for the monitoring job that includes alertmanager.yml
as ``jobspec.cluster_alertmanager`` adapts it, the incidents webhook already on mutual TLS with the
client certificate the job renders for the ``alertmanager`` identity (no unverified TLS anywhere).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import nomad

from scripts.cluster.client import ClusterError, make_client, nomad_call
from scripts.cluster.jobspec import (
    JOBS_DIR,
    REPO,
    JobFile,
    JobSpecError,
    encode_var_file,
    job_files,
    ordered,
    read_job,
    variables_for,
)

TERMINAL_OK = {"successful"}
TERMINAL_BAD = {"failed", "cancelled"}


class DeployError(Exception):
    """A job could not be deployed; the message is meant for the operator."""


@dataclass
class Progress:
    """Prints a line whenever a group's counts change, not on every poll."""

    out: TextIO
    last: dict[str, str] = field(default_factory=dict)

    def group(self, job: str, name: str, state: dict[str, Any]) -> None:
        line = (
            f"  {job}/{name}: placed {state.get('PlacedAllocs', 0)}/{state.get('DesiredTotal', 0)}, "
            f"healthy {state.get('HealthyAllocs', 0)}, unhealthy {state.get('UnhealthyAllocs', 0)}"
        )
        if state.get("DesiredCanaries"):
            promoted = "promoted" if state.get("Promoted") else "not promoted"
            line += f", canaries {len(state.get('PlacedCanaries') or [])}/{state['DesiredCanaries']} ({promoted})"
        key = f"{job}/{name}"
        if self.last.get(key) != line:
            self.last[key] = line
            print(line, file=self.out, flush=True)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def parse_job(client: nomad.Nomad, job: JobFile, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The job as Nomad's JSON, parsed by the cluster with the variables applied."""
    payload = {
        "JobHCL": job.path.read_text(encoding="utf-8"),
        "Canonicalize": True,
        "Variables": encode_var_file(variables),
    }
    answer = nomad_call(
        f"parsing {job.path.name}", client.jobs.request, "parse", json=payload, method="post", allow_redirects=True
    )
    parsed: dict[str, Any] = answer.json()
    return parsed


def register(client: nomad.Nomad, spec: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = nomad_call(
        f"registering job {spec['ID']}", client.job.register_job, spec["ID"], {"Job": spec}
    )
    return result


def unhealthy_report(client: nomad.Nomad, job_id: str, deployment_id: str) -> str:
    """The allocations of a deployment that are not healthy, each with its last task events."""
    allocs = nomad_call("listing allocations", client.deployment.get_deployment_allocations, deployment_id)
    lines = []
    for alloc in allocs:
        health = (alloc.get("DeploymentStatus") or {}).get("Healthy")
        if health is True:
            continue
        lines.append(
            f"  alloc {alloc['ID'][:8]} group {alloc.get('TaskGroup')} "
            f"on {alloc.get('NodeName') or alloc.get('NodeID', '')[:8]}: "
            f"{alloc.get('ClientStatus')} (healthy={health})"
        )
        for task, state in sorted((alloc.get("TaskStates") or {}).items()):
            events = state.get("Events") or []
            for event in events[-3:]:
                detail = event.get("DisplayMessage") or event.get("Type", "")
                lines.append(f"    {task}: {detail}")
    if not lines:
        return f"  (no unhealthy allocations listed; see `nomad job status {job_id}`)"
    return "\n".join(lines)


def needs_promotion(deployment: dict[str, Any]) -> bool:
    groups = (deployment.get("TaskGroups") or {}).values()
    waiting = [g for g in groups if g.get("DesiredCanaries") and not g.get("Promoted")]
    return bool(waiting) and all(g.get("HealthyAllocs", 0) >= g["DesiredCanaries"] for g in waiting)


def follow(
    client: nomad.Nomad,
    job_id: str,
    version: int,
    *,
    progress: Progress,
    promote: bool,
    timeout_s: float,
    poll_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Wait for the deployment of ``version`` of ``job_id``; return its final status or raise."""
    deadline = clock() + timeout_s
    promoted = False
    announced = False
    while True:
        deployment = nomad_call(f"reading the deployment of {job_id}", client.job.get_deployment, job_id)
        if deployment and deployment.get("JobVersion") == version:
            if not announced:
                progress.say(f"  deployment {deployment['ID'][:8]} for version {version}")
                announced = True
            for name, state in sorted((deployment.get("TaskGroups") or {}).items()):
                progress.group(job_id, name, state)
            status = str(deployment.get("Status", ""))
            if status in TERMINAL_OK:
                return status
            if status in TERMINAL_BAD:
                raise DeployError(
                    f"deployment of {job_id} v{version} {status}: {deployment.get('StatusDescription', '')}\n"
                    + unhealthy_report(client, job_id, deployment["ID"])
                )
            if needs_promotion(deployment) and not promoted:
                if promote:
                    progress.say(f"  canaries of {job_id} healthy: promoting")
                    nomad_call("promoting", client.deployment.promote_deployment_all, deployment["ID"])
                    promoted = True
                else:
                    progress.say(f"  canaries of {job_id} healthy: waiting for promotion (--no-promote)")
                    return "awaiting-promotion"
        elif deployment is None or not deployment:
            # Jobs whose first version placed nothing yet, or with no update stanza, have no deployment.
            summary = nomad_call(f"reading the summary of {job_id}", client.job.get_summary, job_id)
            groups = summary.get("Summary") or {}
            if groups and all(g.get("Running", 0) and not g.get("Queued", 0) for g in groups.values()):
                return "running"
        if clock() > deadline:
            raise DeployError(
                f"deployment of {job_id} v{version} did not finish within {timeout_s:.0f} s; "
                f"inspect it with `python -m scripts.cluster.status --job {job_id}`"
            )
        sleep(poll_s)


@dataclass(frozen=True, slots=True)
class Options:
    jobs: list[str]
    jobs_dir: Path
    profile: str
    image: str | None
    overrides: dict[str, str]
    promote: bool
    follow: bool
    timeout_s: float
    poll_s: float
    repo: Path = REPO


def deploy(client: nomad.Nomad, options: Options, out: TextIO = sys.stdout) -> list[tuple[str, str]]:
    files = job_files(options.jobs_dir)
    unknown = [j for j in options.jobs if j not in files]
    if unknown:
        raise DeployError(f"no job file for {', '.join(unknown)}; known: {', '.join(files)}")
    names = ordered(options.jobs or list(files))
    progress = Progress(out)
    results = []
    for name in names:
        job = read_job(files[name])
        variables = variables_for(
            job, profile=options.profile, image=options.image, overrides=options.overrides, repo=options.repo
        )
        progress.say(f"==> {name}: parsing {job.path.name} ({len(variables)} variables)")
        spec = parse_job(client, job, variables)
        answer = register(client, spec)
        current = nomad_call(f"reading job {spec['ID']}", client.job.get_job, spec["ID"])
        version = int(current.get("Version", 0))
        progress.say(f"==> {name}: registered version {version} (evaluation {str(answer.get('EvalID', ''))[:8]})")
        if not options.follow:
            results.append((name, "registered"))
            continue
        status = follow(
            client,
            spec["ID"],
            version,
            progress=progress,
            promote=options.promote,
            timeout_s=options.timeout_s,
            poll_s=options.poll_s,
        )
        progress.say(f"==> {name}: {status}")
        results.append((name, status))
    return results


def write_var_files(options: Options, target: Path, out: TextIO) -> None:
    """Variables files for `nomad job run -var-file=...`, for operators who prefer the CLI."""
    target.mkdir(parents=True, exist_ok=True)
    for name, path in job_files(options.jobs_dir).items():
        if options.jobs and name not in options.jobs:
            continue
        job = read_job(path)
        variables = variables_for(
            job, profile=options.profile, image=options.image, overrides=options.overrides, repo=options.repo
        )
        dest = target / f"{name}.vars.hcl"
        dest.write_text(encode_var_file(variables), encoding="utf-8")
        print(
            f"nomad job run -var-file={dest} {path.relative_to(REPO) if path.is_relative_to(REPO) else path}", file=out
        )


def _var(raw: str) -> tuple[str, str]:
    if "=" not in raw:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {raw!r}")
    key, value = raw.split("=", 1)
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.cluster.deploy",
        description="Parse, register and follow the Nomad jobs of jobs/ on the cluster at NOMAD_ADDR "
        "(NOMAD_TOKEN, NOMAD_CACERT are honoured). Prints each group's progress; exits 1 with the "
        "unhealthy allocations when a deployment fails.",
    )
    parser.add_argument("--job", action="append", default=[], help="deploy only this job (repeatable)")
    parser.add_argument("--jobs-dir", type=Path, default=JOBS_DIR, help="directory of *.nomad.hcl files")
    parser.add_argument("--profile", choices=("drill", "production"), default="production")
    parser.add_argument("--image", help="services image with its version tag (default: the job files' default)")
    parser.add_argument(
        "--var", action="append", type=_var, default=[], help="job variable KEY=VALUE (lists/maps as JSON)"
    )
    parser.add_argument("--no-promote", action="store_true", help="leave healthy canaries for the canary analysis")
    parser.add_argument("--no-follow", action="store_true", help="register and return without waiting")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for each deployment")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between deployment polls")
    parser.add_argument("--write-var-files", type=Path, metavar="DIR", help="write -var-file inputs and exit")
    return parser


def main(argv: Sequence[str] | None = None, *, client: nomad.Nomad | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = Options(
        jobs=list(args.job),
        jobs_dir=args.jobs_dir,
        profile=args.profile,
        image=args.image,
        overrides=dict(args.var),
        promote=not args.no_promote,
        follow=not args.no_follow,
        timeout_s=args.timeout,
        poll_s=args.poll,
    )
    try:
        if args.write_var_files:
            write_var_files(options, args.write_var_files, sys.stdout)
            return 0
        results = deploy(client or make_client(), options)
    except (ClusterError, DeployError, JobSpecError) as exc:
        print(f"deploy failed: {exc}", file=sys.stderr)
        return 1
    print("deployed: " + ", ".join(f"{name} ({status})" for name, status in results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
