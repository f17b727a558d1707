"""Jobs, groups, latest deployments and allocations on the Nomad cluster at NOMAD_ADDR."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import nomad

from scripts.cluster.client import ClusterError, make_client, nomad_call
from scripts.cluster.jobspec import job_files


def collect(client: nomad.Nomad, jobs: list[str]) -> list[dict[str, Any]]:
    """One record per job: status, per-group counts, latest deployment, allocations."""
    records: list[dict[str, Any]] = []
    for job_id in jobs:
        try:
            job = client.job.get_job(job_id)
        except Exception:
            records.append({"job": job_id, "status": "not registered"})
            continue
        summary = nomad_call(f"summary of {job_id}", client.job.get_summary, job_id).get("Summary") or {}
        deployment = nomad_call(f"deployment of {job_id}", client.job.get_deployment, job_id) or {}
        allocs = nomad_call(f"allocations of {job_id}", client.job.get_allocations, job_id)
        records.append(
            {
                "job": job_id,
                "status": "stopped" if job.get("Stop") else job.get("Status", "?"),
                "version": job.get("Version"),
                "groups": {
                    name: {k: counts.get(k, 0) for k in ("Queued", "Starting", "Running", "Failed", "Lost")}
                    for name, counts in sorted(summary.items())
                },
                "deployment": {
                    "id": deployment.get("ID", "")[:8],
                    "status": deployment.get("Status"),
                    "description": deployment.get("StatusDescription"),
                    "version": deployment.get("JobVersion"),
                }
                if deployment
                else None,
                "allocations": [
                    {
                        "id": a["ID"][:8],
                        "group": a.get("TaskGroup"),
                        "node": a.get("NodeName") or a.get("NodeID", "")[:8],
                        "status": a.get("ClientStatus"),
                        "desired": a.get("DesiredStatus"),
                        "healthy": (a.get("DeploymentStatus") or {}).get("Healthy"),
                        "version": a.get("JobVersion"),
                    }
                    for a in allocs
                    if a.get("DesiredStatus") == "run" or a.get("ClientStatus") in {"running", "pending"}
                ],
            }
        )
    return records


def render(records: list[dict[str, Any]], out: TextIO) -> None:
    for record in records:
        print(f"{record['job']}: {record['status']}  (version {record.get('version', '-')})", file=out)
        for group, counts in (record.get("groups") or {}).items():
            text = ", ".join(f"{k.lower()} {v}" for k, v in counts.items() if v)
            print(f"  group {group}: {text or 'nothing placed'}", file=out)
        deployment = record.get("deployment")
        if deployment:
            print(
                f"  deployment {deployment['id']} v{deployment['version']}: {deployment['status']}"
                f" - {deployment['description']}",
                file=out,
            )
        for alloc in record.get("allocations") or []:
            healthy = {True: "healthy", False: "UNHEALTHY", None: "health unknown"}[alloc["healthy"]]
            print(
                f"    alloc {alloc['id']} {alloc['group']} v{alloc['version']} on {alloc['node']}: "
                f"{alloc['status']}, {healthy}",
                file=out,
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.cluster.status",
        description="Show the Firedrill jobs on the Nomad cluster at NOMAD_ADDR: status, group counts, "
        "latest deployment and running allocations with their health.",
    )
    parser.add_argument("--job", action="append", default=[], help="only this job (repeatable)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Sequence[str] | None = None, *, client: nomad.Nomad | None = None) -> int:
    args = build_parser().parse_args(argv)
    jobs = args.job or list(job_files())
    try:
        records = collect(client or make_client(), jobs)
    except ClusterError as exc:
        print(f"status failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(records, sys.stdout, indent=2)
        print()
    else:
        render(records, sys.stdout)
    unhealthy = any(a["healthy"] is False for r in records for a in r.get("allocations") or [])
    return 3 if unhealthy else 0


if __name__ == "__main__":
    raise SystemExit(main())
