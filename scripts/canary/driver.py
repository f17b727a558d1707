"""The rollout driver: move a new version through its plan's steps, ask the analysis, decide.

At every analysed step the driver waits one interval, then asks the analysis for a verdict:
PROMOTE moves to the next step, HOLD waits another interval (at most ``max_holds`` times in a
step, then it rolls back: a step that can never be judged is not a healthy one), ROLLBACK sends
every call back to stable and stops the new version. After the last step the new version becomes
the stable one.

The rollback always runs once the new version was started: on a ROLLBACK verdict, on an error of
the target or the analysis, and on Ctrl-C or SIGTERM (``stop`` is set by the signal handler in
``__main__``; the driver checks it at every wait).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from scripts.canary.contract import Analysis, Decision, RolloutObserver, StepContext, Verdict
from scripts.canary.judge import next_failures
from scripts.canary.strategies import STRATEGIES, Plan, Step

Progress = Callable[[str], None]

PROMOTED = "promoted"
ROLLED_BACK = "rolled_back"
ROLLBACK_FAILED = "rollback_failed"


class Refused(Exception):
    """The rollout did not start; the message says why and what to do."""


class Interrupted(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Exposure:
    """What the new version served while it ran (its own request counters, read before it stopped)."""

    served: int
    failed: int


class RolloutTarget(Protocol):
    """Where the versions run: the local platform (``local_target``) or Nomad (``nomad_target``)."""

    name: str

    def stable_version(self, service: str) -> str: ...

    def stable_problem(self, service: str) -> str | None:
        """Why stable is not healthy enough to compare a new version against (None: it is)."""
        ...

    def plan(self, service: str, strategy: str) -> Plan: ...

    def start_new(self, service: str, version: str, plan: Plan) -> None:
        """Start the new version beside stable, without calls yet; returns once it is healthy."""
        ...

    def apply_step(self, service: str, stable: str, new: str, step: Step, index: int) -> None: ...

    def promote(self, service: str, stable: str, new: str) -> None:
        """The new version becomes stable; the old one stops."""
        ...

    def rollback(self, service: str, stable: str, new: str) -> Exposure | None:
        """Every call back to stable, the new version stopped; what it served, when known."""
        ...


@dataclass(frozen=True, slots=True)
class RolloutSettings:
    interval_s: float  # wait between a step's start (or a HOLD) and asking the analysis
    window_s: int  # how far back the analysis looks
    max_holds: int  # HOLD verdicts in one step before the driver gives up and rolls back


# The drill profile decides within seconds on the local platform; production waits minutes.
DRILL_SETTINGS = RolloutSettings(interval_s=4.0, window_s=15, max_holds=8)
PRODUCTION_SETTINGS = RolloutSettings(interval_s=60.0, window_s=300, max_holds=5)


def settings_for(profile_name: str) -> RolloutSettings:
    return DRILL_SETTINGS if profile_name == "drill" else PRODUCTION_SETTINGS


@dataclass(frozen=True, slots=True)
class RolloutRequest:
    service: str
    version: str
    strategy: str
    settings: RolloutSettings


@dataclass(frozen=True, slots=True)
class Outcome:
    result: str  # promoted | rolled_back | rollback_failed
    reason: str
    stable_version: str
    new_version: str
    started_at: float
    finished_at: float
    steps_reached: int
    last_weight_percent: int
    exposure: Exposure | None = None
    verdicts: tuple[Verdict, ...] = field(default=())

    @property
    def duration_s(self) -> float:
        return self.finished_at - self.started_at


class _Observers:
    def __init__(self, observers: Sequence[RolloutObserver]) -> None:
        self._observers = observers

    def step_started(self, context: StepContext) -> None:
        for observer in self._observers:
            observer.step_started(context)

    def step_decided(self, context: StepContext, verdict: Verdict) -> None:
        for observer in self._observers:
            observer.step_decided(context, verdict)

    def finished(self, context: StepContext, outcome: str, reason: str) -> None:
        for observer in self._observers:
            observer.finished(context, outcome, reason)


def _wait(stop: threading.Event, seconds: float) -> None:
    if stop.wait(seconds):
        raise Interrupted


def run_rollout(
    request: RolloutRequest,
    target: RolloutTarget,
    analysis: Analysis,
    observers: Sequence[RolloutObserver],
    stop: threading.Event,
    progress: Progress,
) -> Outcome:
    """Deploy ``request.version`` of ``request.service`` by its strategy; raises Refused before starting."""
    if request.strategy not in STRATEGIES:
        raise Refused(f"unknown strategy {request.strategy!r}: one of {', '.join(STRATEGIES)}")
    stable = target.stable_version(request.service)
    if stable == request.version:
        raise Refused(f"{request.service} already runs version {stable}: nothing to deploy")
    problem = target.stable_problem(request.service)
    if problem is not None:
        raise Refused(f"stable {request.service} {stable} is not healthy, so nothing can be compared to it: {problem}")
    plan = target.plan(request.service, request.strategy)
    tell = _Observers(observers)
    context = StepContext(
        service=request.service,
        stable_version=stable,
        canary_version=request.version,
        strategy=request.strategy,
        step=0,
        weight_percent=0,
        window_s=request.settings.window_s,
    )
    started = time.time()
    verdicts: list[Verdict] = []
    progress(f"{request.strategy}: {request.service} {stable} -> {request.version} on {target.name}")
    outcome, reason = ROLLED_BACK, ""
    exposure: Exposure | None = None
    try:
        progress(f"starting {request.service} {request.version} beside {stable}")
        target.start_new(request.service, request.version, plan)
        outcome, reason, context = _walk(request, target, analysis, tell, stop, progress, plan, context, verdicts)
    except Interrupted:
        reason = "interrupted (Ctrl-C or SIGTERM): rolling back"
        progress(reason)
    except Exception as exc:  # the target or the analysis failed: stable must get every call back
        reason = f"{exc.__class__.__name__}: {exc}"
        progress(f"error during the rollout, rolling back: {reason}")
    finally:
        if outcome != PROMOTED:
            outcome = ROLLED_BACK
            progress(f"rolling back to {stable}")
            try:
                exposure = target.rollback(request.service, stable, request.version)
            except Exception as exc:  # said loudly and recorded: an operator must finish it (--abort)
                outcome = ROLLBACK_FAILED
                reason = f"{reason}; THE ROLLBACK FAILED: {exc.__class__.__name__}: {exc}"
            if exposure is not None:
                progress(f"{request.version} served {exposure.served} calls, {exposure.failed} of them failed")
        tell.finished(context, outcome, reason)
    progress(f"{outcome.replace('_', ' ')}: {reason}")
    return Outcome(
        result=outcome,
        reason=reason,
        stable_version=stable,
        new_version=request.version,
        started_at=started,
        finished_at=time.time(),
        steps_reached=context.step + 1,
        last_weight_percent=context.weight_percent,
        exposure=exposure,
        verdicts=tuple(verdicts),
    )


def _walk(
    request: RolloutRequest,
    target: RolloutTarget,
    analysis: Analysis,
    tell: _Observers,
    stop: threading.Event,
    progress: Progress,
    plan: Plan,
    context: StepContext,
    verdicts: list[Verdict],
) -> tuple[str, str, StepContext]:
    """The steps; returns (outcome, reason, last context). Rollback is the caller's."""
    failures: dict[str, int] = {}
    new_version_since = time.monotonic()
    for index, step in enumerate(plan.steps):
        if stop.is_set():
            raise Interrupted
        context = replace(context, step=index, weight_percent=step.weight_percent, failures_so_far=dict(failures))
        target.apply_step(request.service, context.stable_version, request.version, step, index)
        tell.step_started(context)
        progress(f"step {index + 1}/{len(plan.steps)}: {step.weight_percent} % — {step.what}")
        if not step.analysed:
            continue
        holds = 0
        while True:
            _wait(stop, request.settings.interval_s)
            context = replace(context, window_s=analysis_window(request.settings, new_version_since))
            verdict = analysis.evaluate(context)
            verdicts.append(verdict)
            tell.step_decided(context, verdict)
            progress(_verdict_line(verdict))
            failures = next_failures(verdict, failures)
            context = replace(context, failures_so_far=dict(failures))
            if verdict.decision == Decision.ROLLBACK:
                return ROLLED_BACK, verdict.reason or "the analysis asked for a rollback", context
            if verdict.decision == Decision.PROMOTE:
                break
            holds += 1
            if holds >= request.settings.max_holds:
                return (
                    ROLLED_BACK,
                    f"step {index + 1} ({step.weight_percent} %) still undecided after {holds} holds: {verdict.reason}",
                    context,
                )
    progress(f"every step passed: {request.version} becomes the stable {request.service}")
    target.promote(request.service, context.stable_version, request.version)
    return PROMOTED, f"{request.version} passed all {len(plan.steps)} steps", context


MIN_WINDOW_S = 2


def analysis_window(settings: RolloutSettings, new_version_since: float) -> int:
    """The settings' window, but never further back than this rollout: series of the same version from an
    earlier attempt (a redeploy within the window) would otherwise be judged as this one's."""
    elapsed = math.ceil(time.monotonic() - new_version_since)
    return min(settings.window_s, max(MIN_WINDOW_S, elapsed))


def _verdict_line(verdict: Verdict) -> str:
    lines = [f"  verdict: {verdict.decision.value} — {verdict.reason}"]
    for result in verdict.results:
        mark = {True: "ok  ", False: "FAIL", None: "n/a "}[result.passed]
        lines.append(f"    {mark} {result.check}: {result.reason}")
    return "\n".join(lines)
