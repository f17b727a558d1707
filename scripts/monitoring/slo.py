"""Multi-window, multi-burn-rate SLO alerts for the user-facing (edge) services.

Production windows follow the usual pairs for a 30-day budget: page when 2% of the budget burns
in an hour (14.4x over 1h and 5m) or 5% in six hours (6x over 6h and 30m); open a ticket when 10%
burns in a day (3x over 1d and 2h) or at 1x over 3d and 6h. A profile's ``slo_window_divisor``
divides every window and the budget period (the drill uses 60: an hour becomes a minute), while
the rule names keep the production window names so dashboards read the same series everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common import catalog
from services.common.catalog import Protocol, Tier
from services.common.profiles import TimingProfile, duration

from .model import RecordingRule, Severity
from .recording import GRPC_ERRORS, HTTP_ERRORS, SERVICES, error_ratio

HOUR = 3600
DAY = 24 * HOUR
BUDGET_PERIOD_S = 30 * DAY
DEFAULT_OBJECTIVE = 0.999


@dataclass(frozen=True, slots=True)
class BurnWindow:
    long_s: int
    short_s: int
    factor: float


@dataclass(frozen=True, slots=True)
class BurnAlert:
    name: str
    severity: Severity
    windows: tuple[BurnWindow, ...]


PAGE = BurnAlert(
    "ErrorBudgetBurnPage",
    Severity.CRITICAL,
    (BurnWindow(HOUR, 5 * 60, 14.4), BurnWindow(6 * HOUR, 30 * 60, 6.0)),
)
TICKET = BurnAlert(
    "ErrorBudgetBurnTicket",
    Severity.WARNING,
    (BurnWindow(DAY, 2 * HOUR, 3.0), BurnWindow(3 * DAY, 6 * HOUR, 1.0)),
)
BURN_ALERTS = (PAGE, TICKET)


@dataclass(frozen=True, slots=True)
class Slo:
    service: str
    protocol: Protocol
    objective: float = DEFAULT_OBJECTIVE
    name: str = "availability"

    @property
    def budget(self) -> float:
        return round(1 - self.objective, 10)

    def matchers(self) -> str:
        return f'service="{self.service}",slo="{self.name}"'

    def error_ratio_expr(self, window: str) -> str:
        selector = f'{SERVICES},service="{self.service}"'
        if self.protocol is Protocol.HTTP:
            return error_ratio("http_requests_total", HTTP_ERRORS, f'{selector},path!="/health"', window)
        return error_ratio("grpc_server_handled_total", GRPC_ERRORS, selector, window)


def slos() -> tuple[Slo, ...]:
    """One availability SLO per edge service of the catalog (hello, movie)."""
    return tuple(Slo(s.name, s.protocol) for s in catalog.SERVICES if s.tier is Tier.EDGE)


def scaled(profile: TimingProfile, production_s: int) -> int:
    if production_s % profile.slo_window_divisor:
        raise ValueError(f"{production_s}s does not divide by {profile.slo_window_divisor}")
    return production_s // profile.slo_window_divisor


def window_names() -> tuple[int, ...]:
    """Every production window a rule needs, shortest first, plus the budget period."""
    found = {w for alert in BURN_ALERTS for pair in alert.windows for w in (pair.long_s, pair.short_s)}
    return (*sorted(found), BUDGET_PERIOD_S)


def ratio_record(production_s: int) -> str:
    return f"slo:sli_error:ratio_rate{duration(production_s)}"


OBJECTIVE_RECORD = "slo:objective:ratio"
BUDGET_REMAINING_RECORD = "slo:error_budget:remaining_ratio"


def slo_recording_rules(profile: TimingProfile) -> tuple[RecordingRule, ...]:
    rules: list[RecordingRule] = []
    for slo in slos():
        labels = {"service": slo.service, "slo": slo.name}
        for production_s in window_names():
            window = duration(scaled(profile, production_s))
            rules.append(RecordingRule(ratio_record(production_s), slo.error_ratio_expr(window), labels))
        rules.append(
            RecordingRule(OBJECTIVE_RECORD, f"vector({slo.objective})", {"service": slo.service, "slo": slo.name})
        )
        rules.append(
            RecordingRule(
                BUDGET_REMAINING_RECORD,
                f"1 - {ratio_record(BUDGET_PERIOD_S)}{{{slo.matchers()}}} / {slo.budget}",
                {"service": slo.service, "slo": slo.name},
            )
        )
    return tuple(rules)


def threshold(slo: Slo, factor: float) -> float:
    return round(factor * slo.budget, 10)


def burn_expr(slo: Slo, alert: BurnAlert) -> str:
    clauses = []
    for pair in alert.windows:
        limit = threshold(slo, pair.factor)
        clauses.append(
            f"(\n  {ratio_record(pair.long_s)}{{{slo.matchers()}}} > {limit}\n"
            f"and\n  {ratio_record(pair.short_s)}{{{slo.matchers()}}} > {limit}\n)"
        )
    return "\nor\n".join(clauses)


def slowest_short_window_s(profile: TimingProfile, alert: BurnAlert) -> int:
    return max(scaled(profile, pair.short_s) for pair in alert.windows)
