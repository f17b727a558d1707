"""The Go programs get their runtime memory settings from one table, locally and on a cluster."""

from __future__ import annotations

from pathlib import Path

from scripts.cluster.jobgen import infra_jobs
from scripts.cluster.jobgen.hcl import Attr, Block, Value
from scripts.local.memory_limits import (
    CLUSTER_LIMIT_SHARE,
    LOCAL_GO_PROGRAMS,
    cluster_environment,
    with_memory_settings,
)
from scripts.local.programs import ProgramSpec
from scripts.local.stack import LocalPlatform
from scripts.local.supervisor import render_config
from services.common import catalog
from services.common.profiles import DRILL


def test_every_go_program_of_the_local_platform_gets_its_settings_and_nothing_else_does(tmp_path: Path) -> None:
    platform = LocalPlatform(tmp_path, DRILL)
    programs = {program.name: program for program in platform.programs()}
    assert set(LOCAL_GO_PROGRAMS) <= set(programs), "a table entry names no program (renamed?)"
    for name, program in programs.items():
        if name in LOCAL_GO_PROGRAMS:
            settings = LOCAL_GO_PROGRAMS[name]
            assert program.env["GOGC"] == str(settings.gc_percent)
            assert program.env["GOMEMLIMIT"] == f"{settings.soft_limit_mib}MiB"
        else:
            assert not {"GOGC", "GOMEMLIMIT"} & set(program.env), name
    config = render_config(platform.state, programs.values(), DRILL)
    assert f'GOMEMLIMIT="{LOCAL_GO_PROGRAMS["prometheus"].soft_limit_mib}MiB"' in config


def test_the_settings_are_added_to_a_programs_own_environment() -> None:
    program = ProgramSpec("alertmanager", ("/bin/true",), (), None, env={"KEEP": "1"})
    changed = with_memory_settings(program)
    assert changed.env["KEEP"] == "1"
    assert changed.env["GOGC"] == str(LOCAL_GO_PROGRAMS["alertmanager"].gc_percent)
    assert program.env == {"KEEP": "1"}
    other = ProgramSpec("hello", ("/bin/true",), (), None, env={"KEEP": "1"})
    assert with_memory_settings(other) == other


def _task(group: Block) -> Block:
    return next(item for item in group.items if isinstance(item, Block) and item.kind == "task")


def _child(block: Block, kind: str) -> Block:
    return next(item for item in block.items if isinstance(item, Block) and item.kind == kind)


def _attrs(block: Block) -> dict[str, Value]:
    return {item.name: item.value for item in block.items if isinstance(item, Attr)}


def test_cluster_go_tasks_keep_their_heap_under_a_share_of_their_nomad_memory() -> None:
    for group in (infra_jobs.prometheus_group(), infra_jobs.alertmanager_group()):
        task = _task(group)
        memory = _attrs(_child(task, "resources"))["memory"]
        assert isinstance(memory, int)
        env = _attrs(_child(task, "env"))
        assert env == cluster_environment(memory)
        limit_mib = int(str(env["GOMEMLIMIT"]).removesuffix("MiB"))
        assert memory * 0.5 < limit_mib == int(memory * CLUSTER_LIMIT_SHARE) < memory


def test_local_limits_leave_room_above_the_go_memory_measured_at_idle() -> None:
    # bench.footprint before any setting: the anonymous (non-binary) memory of each Go program at
    # idle was about 31 MB (OpenBao), 35 MB (Prometheus) and 16 MB (Alertmanager). A limit at or
    # below that would keep the collector running without pause; a fifth above is the least room.
    assert {"openbao", "prometheus", "alertmanager"} <= {spec.name for spec in catalog.INFRA}
    for name, idle_mib in {"openbao": 31, "prometheus": 35, "alertmanager": 16}.items():
        assert LOCAL_GO_PROGRAMS[name].soft_limit_mib > idle_mib * 1.2, name
