"""Every step and decision of a rollout, with the numbers behind it, kept as one JSON file.

``<state>/deployments/<UTC time>-<service>-<version>.json``, beside the drill reports
(``<state>/drills/``). The file is rewritten after every event, so a rollout that dies half-way
still leaves what it decided so far.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scripts.canary.contract import StepContext, Verdict
from scripts.canary.driver import Exposure


def records_dir(state_root: Path) -> Path:
    return state_root / "deployments" / "records"


def _verdict(verdict: Verdict) -> dict[str, Any]:
    return {
        "decision": verdict.decision.value,
        "reason": verdict.reason,
        "results": [asdict(result) for result in verdict.results],
    }


def _step(context: StepContext) -> dict[str, Any]:
    return {"step": context.step, "weight_percent": context.weight_percent, "failures_so_far": context.failures_so_far}


class RolloutRecord:
    """A RolloutObserver that writes the JSON record."""

    def __init__(
        self, folder: Path, *, service: str, version: str, strategy: str, target: str, plan: list[str]
    ) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.path = folder / f"{stamp}-{service}-{version}.json"
        self.data: dict[str, Any] = {
            "service": service,
            "new_version": version,
            "stable_version": None,
            "strategy": strategy,
            "target": target,
            "plan": plan,
            "started_at": time.time(),
            "finished_at": None,
            "outcome": None,
            "reason": None,
            "exposure": None,
            "events": [],
        }

    def _event(self, kind: str, context: StepContext, **extra: Any) -> None:
        self.data["stable_version"] = context.stable_version
        self.data["events"].append({"at": time.time(), "event": kind, **_step(context), **extra})
        self.write()

    def step_started(self, context: StepContext) -> None:
        self._event("step_started", context)

    def step_decided(self, context: StepContext, verdict: Verdict) -> None:
        self._event("step_decided", context, verdict=_verdict(verdict))

    def finished(self, context: StepContext, outcome: str, reason: str) -> None:
        self.data.update(finished_at=time.time(), outcome=outcome, reason=reason)
        self._event("finished", context, outcome=outcome, reason=reason)

    def set_exposure(self, exposure: Exposure | None) -> None:
        self.data["exposure"] = asdict(exposure) if exposure is not None else None
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle, indent=2)
        os.replace(tmp, self.path)


def read_record(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a rollout record")
    return data
