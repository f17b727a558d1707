"""The Go runtime's memory settings for the platform's Go programs, in one table (issue 16).

OpenBao, Prometheus and Alertmanager are Go programs. Two environment variables steer their
garbage collector (Go ≥ 1.19: Debian's Prometheus and Alertmanager are built with 1.19, the
OpenBao binary with a newer Go):

- ``GOGC``: the heap may grow this many percent over what the last collection found live before
  the next one starts (default 100, so up to twice the live heap); the runtime also gives idle
  heap pages back to the kernel down to about that goal. Lower means a smaller heap and more
  collections (CPU).
- ``GOMEMLIMIT``: a *soft* limit on all the memory the Go runtime manages (heap, stacks, its own
  structures; not the mapped binary). Near it the collector runs more often and returns memory
  sooner; it never fails an allocation, and caps its own CPU share at about half when the live
  heap alone exceeds the limit, so a limit set too low costs CPU, never a crash.

Locally the programs serve a tiny platform, so each gets a lower ``GOGC`` and a limit with room
above the live heap measured at idle and during drills (``python -m bench.footprint``, the
numbers in BENCHMARKS.md). On a cluster a task's memory is its Nomad ``resources.memory``,
reserved for it whether used or not, so trimming an idle heap there buys nothing and ``GOGC``
keeps its default; the limit is a share of the task's memory (``cluster_environment``), so the
collector works harder before the kernel's OOM killer would end the task. (OpenBao is not a
Nomad job: the cluster's Vault runs on its own hosts.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from scripts.local.programs import ProgramSpec


@dataclass(frozen=True, slots=True)
class GoMemory:
    gc_percent: int
    # GOMEMLIMIT on the local platform, MiB.
    soft_limit_mib: int

    def environment(self) -> dict[str, str]:
        return {"GOGC": str(self.gc_percent), "GOMEMLIMIT": f"{self.soft_limit_mib}MiB"}


# By supervisord program name (the OpenBao wrapper passes its environment on to `bao`).
LOCAL_GO_PROGRAMS: dict[str, GoMemory] = {
    "openbao": GoMemory(gc_percent=50, soft_limit_mib=40),
    "prometheus": GoMemory(gc_percent=50, soft_limit_mib=56),
    "alertmanager": GoMemory(gc_percent=50, soft_limit_mib=32),
}

# On a cluster: the share of the task's Nomad memory the Go runtime aims to stay under.
CLUSTER_LIMIT_SHARE = 0.9


def with_memory_settings(program: ProgramSpec) -> ProgramSpec:
    """``program`` with its Go runtime settings from the table (unchanged when it has none)."""
    settings = LOCAL_GO_PROGRAMS.get(program.name)
    if settings is None:
        return program
    return replace(program, env={**program.env, **settings.environment()})


def cluster_environment(task_memory_mib: int) -> dict[str, str]:
    """The Go runtime setting of a Go program in a Nomad task with ``task_memory_mib`` of memory."""
    return {"GOMEMLIMIT": f"{int(task_memory_mib * CLUSTER_LIMIT_SHARE)}MiB"}
