"""The canary drills' actions: deploy a version for real through the rollout driver, and put back what ran.

``deploy_version`` runs ``scripts.canary`` in the drill's process while the drill's traffic flows:
the moment it starts is the drill's "fault on", the moment the rollout ends its "fault off". What
the rollout decided, how long it took and how many user calls the new version served (its own
counters, read before it stopped) go to the drill's notes, the report and the scorecard.
The drill's rollbacks stop a new version left running and restore the version that ran before.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from scripts.canary.driver import RolloutRequest, RolloutTarget, run_rollout, settings_for
from scripts.deploy_target.interface import Platform, PlatformError
from scripts.drills.recorder import RECORDER
from services.common.profiles import profile

ANALYSIS_VARIABLE = "FIREDRILL_CANARY_ANALYSIS"  # module:function; the tests set a small analysis


def _target(platform: Platform) -> RolloutTarget:
    from scripts.local.stack import LocalPlatform

    if isinstance(platform, LocalPlatform):
        from scripts.canary.local_target import LocalTarget

        return LocalTarget(platform, progress=print)
    from scripts.canary.nomad_target import NomadTarget

    return NomadTarget.from_env(progress=print)


def _records_folder(platform: Platform) -> Path:
    from scripts.canary.record import records_dir
    from scripts.local.stack import LocalPlatform
    from services.common.config import state_dir

    return records_dir(platform.state.root if isinstance(platform, LocalPlatform) else state_dir())


def deploy_version(
    service: str = "response", version: str = "2", strategy: str = "canary", interval_s: float = 0.0
) -> dict[str, Any]:
    """Deploy ``version`` by ``strategy``; returns what the rollout decided (also kept in the notes)."""
    from scripts.canary.__main__ import DEFAULT_ANALYSIS, DEFAULT_TEMPLATES_DIR, build_analysis
    from scripts.canary.record import RolloutRecord

    platform, endpoints = RECORDER.require()
    target = _target(platform)
    analysis = build_analysis(
        endpoints.prometheus, DEFAULT_TEMPLATES_DIR, os.environ.get(ANALYSIS_VARIABLE) or DEFAULT_ANALYSIS
    )
    settings = settings_for(profile().name)
    if float(interval_s) > 0:
        settings = replace(settings, interval_s=float(interval_s))
    stable_before = target.stable_version(service)
    RECORDER.notes["rollout"] = {"service": service, "stable_before": stable_before, "new_version": version}
    record = RolloutRecord(
        _records_folder(platform),
        service=service,
        version=version,
        strategy=strategy,
        target=target.name,
        plan=target.plan(service, strategy).describe(),
    )
    RECORDER.mark("fault_on")
    outcome = run_rollout(
        RolloutRequest(service, version, strategy, settings), target, analysis, [record], threading.Event(), print
    )
    RECORDER.mark("fault_off")
    record.set_exposure(outcome.exposure)
    summary = {
        "service": service,
        "stable_before": stable_before,
        "new_version": version,
        "strategy": strategy,
        "outcome": outcome.result,
        "reason": outcome.reason,
        "duration_s": round(outcome.duration_s, 2),
        "last_weight_percent": outcome.last_weight_percent,
        "calls_served_by_new_version": outcome.exposure.served if outcome.exposure else None,
        "calls_failed_by_new_version": outcome.exposure.failed if outcome.exposure else None,
        "record": str(record.path),
    }
    RECORDER.notes["rollout"] = summary
    return summary


def restore_version() -> str:
    """Stop a new version the drill left running, and put back the stable version that ran before it."""
    platform, _ = RECORDER.require()
    rollout = RECORDER.notes.get("rollout")
    if not rollout:
        return "nothing deployed"
    from scripts.local.stack import LocalPlatform

    if not isinstance(platform, LocalPlatform):
        return "on Nomad the rollback of the deployment (fail or revert) already restored the job"
    from scripts.canary.local_target import LocalTarget
    from scripts.local.versions import DeployedVersions
    from services.common.config import package_version

    service, before = str(rollout["service"]), str(rollout["stable_before"])
    target = LocalTarget(platform, progress=print)
    target.rollback(service, target.stable_version(service), str(rollout["new_version"]))
    if target.stable_version(service) == before:
        return f"{service} runs {before}"
    DeployedVersions(platform.state).set_stable(service, None if before == package_version() else before)
    platform.apply_programs()
    try:
        target.wait_stable_serving(service)
    except PlatformError as exc:
        return f"{service} restarted at {before} but not serving yet: {exc}"
    return f"{service} back at {before}"


def rollout_facts(notes: dict[str, Any]) -> list[tuple[str, str]]:
    """The rollout's lines for a drill's report (empty for drills that deploy nothing)."""
    rollout = notes.get("rollout")
    if not rollout or "outcome" not in rollout:
        return []
    served = rollout.get("calls_served_by_new_version")
    failed = rollout.get("calls_failed_by_new_version")
    exposure = "unknown" if served is None else f"{served} ({failed} failed by it)"
    return [
        (
            "rollout",
            f"{rollout['strategy']} {rollout['stable_before']} -> {rollout['new_version']}: "
            f"{rollout['outcome'].replace('_', ' ')} after {rollout['duration_s']:.1f} s "
            f"at {rollout['last_weight_percent']} %",
        ),
        ("why", str(rollout["reason"])),
        (f"user calls that reached {rollout['new_version']}", exposure),
        ("decision record", str(rollout["record"])),
    ]
