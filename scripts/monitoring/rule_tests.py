"""promtool unit tests generated from each alert's own scenarios.

For every alert and profile:

* each end-to-end scenario (raw service metrics through the recording rules): silent while healthy,
  silent one evaluation before ``for`` has passed since the fault began, firing with the exact
  labels and annotations once it has, and resolved after the fault is gone;
* the blip scenario (the series the expression reads): a fault seen by exactly ``for``/interval
  evaluations stays silent; one evaluation more fires.
"""

from __future__ import annotations

import re
from typing import Any

from services.common.profiles import TimingProfile, duration

from .alerts import alerts
from .model import Alert, Scenario, Series, SignalKind
from .rules import RULE_FILES, evaluation_interval_s
from .settings import LINKS, THRESHOLDS, Links, Thresholds

_TEMPLATE = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")


def _number(value: float) -> str:
    rounded = round(value, 6)
    return str(int(rounded)) if rounded == int(rounded) else repr(rounded)


def values(series: Series, counts: tuple[int, ...], interval_s: int) -> str:
    """promtool's expanding notation for a series across its phases (one sample per interval)."""
    tokens: list[str] = []
    current = 0.0
    has_data = False
    for index, n in enumerate(counts):
        if n <= 0:
            continue
        signal = series.phase(index)
        if signal.kind is SignalKind.MISSING:
            if has_data:
                tokens.append("stale")
                if n > 1:
                    tokens.append(f"_x{n - 1}")
            else:
                tokens.append(f"_x{n}")
            has_data = False
            continue
        if signal.kind is SignalKind.GAUGE:
            current = signal.value
            tokens.append(_number(current) if n == 1 else f"{_number(current)}x{n - 1}")
        else:
            step = signal.value * interval_s
            first = current + step
            tokens.append(_number(first) if n == 1 else f"{_number(first)}+{_number(step)}x{n - 1}")
            current += step * n
        has_data = True
    return " ".join(tokens)


def render_annotation(template: str, labels: dict[str, str]) -> str:
    rendered = _TEMPLATE.sub(lambda m: labels[m.group(1)], template)
    if "{{" in rendered:
        raise ValueError(f"annotation uses templating the test generator cannot predict: {template!r}")
    return rendered


def expected(alert: Alert, scenario: Scenario) -> list[dict[str, Any]]:
    labels = {**scenario.labels, **alert.all_labels()}
    return [
        {
            "exp_labels": labels,
            "exp_annotations": {k: render_annotation(v, labels) for k, v in alert.annotations().items()},
        }
    ]


def _steps(seconds: int, interval: int) -> int:
    return -(-seconds // interval)


def _group(i: int, scenario: Scenario, counts: tuple[int, ...], checks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": scenario.name,
        "interval": duration(i),
        "input_series": [{"series": s.selector, "values": values(s, counts, i)} for s in scenario.series],
        "alert_rule_test": checks,
    }


def _check(alert: Alert, at_s: int, firing: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"eval_time": duration(at_s), "alertname": alert.name, "exp_alerts": firing or []}


def fire_and_resolve(profile: TimingProfile, alert: Alert, scenario: Scenario) -> dict[str, Any]:
    i = evaluation_interval_s(profile, alert)
    warmup = _steps(scenario.warmup_s or max(2 * profile.rate_window_s, 3 * i), i)
    fault = _steps(scenario.detect_s + alert.for_s, i) + 3
    recover = _steps(scenario.clear_s, i) + 3
    start, end = warmup * i, (warmup + fault) * i
    checks = [
        _check(alert, start - i),  # healthy
        _check(alert, start + alert.for_s - i),  # faulty, but not for `for` yet
        _check(alert, start + _steps(scenario.detect_s + alert.for_s, i) * i + i, expected(alert, scenario)),
        _check(alert, end + _steps(scenario.clear_s, i) * i),  # resolved
    ]
    named = Scenario(
        f"{alert.name}: {scenario.name} fires and resolves",
        scenario.series,
        scenario.labels,
        scenario.detect_s,
        scenario.clear_s,
    )
    return _group(i, named, (warmup, fault, recover), checks)


def blips(profile: TimingProfile, alert: Alert) -> list[dict[str, Any]]:
    i = evaluation_interval_s(profile, alert)
    blip = alert.blip
    warmup = 3
    longest_silent = alert.for_s // i  # evaluations the condition holds while still pending
    start = warmup * i
    silent = Scenario(
        f"{alert.name}: blip of {duration(alert.for_s)} stays silent",
        blip.series,
        blip.labels,
        blip.detect_s,
        blip.clear_s,
    )
    silent_checks = [_check(alert, start + k * i) for k in range(longest_silent - 1, longest_silent + 3)]
    longer = Scenario(
        f"{alert.name}: one evaluation longer fires", blip.series, blip.labels, blip.detect_s, blip.clear_s
    )
    longer_checks = [
        _check(alert, start + longest_silent * i, expected(alert, blip)),
        _check(alert, start + (longest_silent + 3) * i),
    ]
    after = longest_silent + 5
    return [
        _group(i, silent, (warmup, longest_silent, after), silent_checks),
        _group(i, longer, (warmup, longest_silent + 1, after), longer_checks),
    ]


def promtool_test_documents(
    profile: TimingProfile, rules_dir: str = "../rules", thresholds: Thresholds = THRESHOLDS, links: Links = LINKS
) -> dict[str, dict[str, Any]]:
    """File name -> promtool test document, one per alert name."""
    if profile.evaluation_interval_s != profile.scrape_interval_s:
        raise ValueError("the generated tests assume evaluation and scrape intervals are equal")
    by_name: dict[str, list[dict[str, Any]]] = {}
    # promtool evaluates every group at the test file's evaluation_interval, whatever the group's own
    # interval: a file tests its alert at the pace the alert's group runs at in Prometheus.
    interval_of: dict[str, int] = {}
    for alert in alerts(profile, thresholds, links):
        groups = by_name.setdefault(alert.name, [])
        interval_of[alert.name] = evaluation_interval_s(profile, alert)
        groups.extend(fire_and_resolve(profile, alert, s) for s in alert.scenarios)
        groups.extend(blips(profile, alert))
    return {
        f"{name}.test.yml": {
            "rule_files": [f"{rules_dir}/{f}" for f in RULE_FILES],
            "evaluation_interval": duration(interval_of[name]),
            "tests": groups,
        }
        for name, groups in by_name.items()
    }
