"""The three strategies as plans: the traffic steps a new version goes through.

- canary: a new version beside stable gets 1, 5, 10, 25, 50 then 100 % of calls, analysed at
  every step;
- rolling: instances are replaced one at a time (one extra instance at a time, as Nomad's
  ``max_parallel = 1``): with n stable instances, after k replacements the new version serves k of
  the n + 1 instances running, so it gets 100·k/(n+1) %, then 100 % once the last old one goes;
- blue-green: a full second set (green) starts beside blue and takes no calls until it is
  healthy (0 %, not analysed: nothing to compare), then every call switches to it at once (100 %),
  analysed; a rollback switches back to blue, which kept running.
"""

from __future__ import annotations

from dataclasses import dataclass

STRATEGIES = ("canary", "rolling", "blue-green")
CANARY_WEIGHTS = (1, 5, 10, 25, 50, 100)


@dataclass(frozen=True, slots=True)
class Step:
    weight_percent: int
    analysed: bool
    what: str  # one line for the plan and the progress output
    new_instances: int = 0  # rolling: instances at the new version once the step is reached


@dataclass(frozen=True, slots=True)
class Plan:
    strategy: str
    steps: tuple[Step, ...]

    def describe(self) -> list[str]:
        return [
            f"step {index}: {step.weight_percent:>3} % to the new version — {step.what}"
            + ("" if step.analysed else " (not analysed)")
            for index, step in enumerate(self.steps)
        ]


def canary_plan(weights: tuple[int, ...] = CANARY_WEIGHTS) -> Plan:
    return Plan("canary", tuple(Step(w, True, f"{w} % of calls to the canary") for w in weights))


def rolling_plan(instances: int) -> Plan:
    if instances < 1:
        raise ValueError("a rolling update needs at least one stable instance")
    steps = [
        Step(round(100 * k / (instances + 1)), True, f"{k} of {instances} instances replaced, one old still up", k)
        for k in range(1, instances + 1)
    ]
    steps.append(Step(100, True, "every old instance retired"))
    return Plan("rolling", tuple(steps))


def blue_green_plan() -> Plan:
    return Plan(
        "blue-green",
        (
            Step(0, False, "green set started beside blue, healthy, no calls yet"),
            Step(100, True, "every call switched to green; blue kept for a switch back"),
        ),
    )


def plan_for(strategy: str, stable_instances: int) -> Plan:
    if strategy == "canary":
        return canary_plan()
    if strategy == "rolling":
        return rolling_plan(stable_instances)
    if strategy == "blue-green":
        return blue_green_plan()
    raise ValueError(f"unknown strategy {strategy!r}: one of {', '.join(STRATEGIES)}")
