"""Every step and decision of a rollout as lines a person reads, with the numbers behind them."""

from __future__ import annotations

import logging
from collections.abc import Callable

from scripts.canary.contract import Decision, StepContext, Verdict

log = logging.getLogger("firedrill.canary")


def _where(context: StepContext) -> str:
    return (
        f"{context.service} {context.canary_version} ({context.strategy}) step {context.step} "
        f"at {context.weight_percent} %"
    )


def verdict_lines(context: StepContext, verdict: Verdict) -> list[str]:
    """The decision with its reason, then one line per check with what it measured against what."""
    lines = [f"{_where(context)}: {verdict.decision.value.upper()} — {verdict.reason}"]
    for result in verdict.results:
        mark = {True: "pass", False: "FAIL", None: "no data"}[result.passed]
        lines.append(f"    [{mark}] {result.reason}")
    return lines


class LogObserver:
    """A contract.RolloutObserver writing to ``emit`` (the ``firedrill.canary`` logger by default).

    A rollback is logged at WARNING with the same numbers, so it stands out in a log stream.
    """

    def __init__(self, emit: Callable[[str], None] | None = None) -> None:
        self._emit = emit

    def _write(self, line: str, level: int = logging.INFO) -> None:
        if self._emit is not None:
            self._emit(line)
        else:
            log.log(level, line)

    def step_started(self, context: StepContext) -> None:
        self._write(
            f"{_where(context)}: started; analysis over {context.window_s}s against stable {context.stable_version}"
        )

    def step_decided(self, context: StepContext, verdict: Verdict) -> None:
        level = logging.WARNING if verdict.decision is Decision.ROLLBACK else logging.INFO
        for line in verdict_lines(context, verdict):
            self._write(line, level)

    def finished(self, context: StepContext, outcome: str, reason: str) -> None:
        self._write(f"{_where(context)}: finished, {outcome}: {reason}")
