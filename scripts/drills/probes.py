"""Chaos Toolkit probes of the Firedrill extension: Prometheus, Alertmanager and the incidents API.

Not chaostoolkit-prometheus (0.6.0, installable beside chaostoolkit-lib 1.44): its ``query``
returns Prometheus' raw JSON from a fixed ``prometheus_base_url``, while these probes need the URL
of the platform the drill runs on (a reserved port offset, or Nomad), a ratio that is 0 when there
was no traffic (an empty vector a JSON-path tolerance cannot express), live alert and target
state, and bounded waits; for one GET it would add maya, pendulum and dateparser.
"""

from __future__ import annotations

import calendar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from scripts.drills import timing
from scripts.drills.recorder import RECORDER
from scripts.promql import Prometheus
from services.common.profiles import TimingProfile
from services.common.waiting import TimedOut, wait_until

POLL_S = 0.2


def _prometheus() -> Prometheus:
    _, endpoints = RECORDER.require()
    return Prometheus(endpoints.prometheus)


def _profile() -> TimingProfile:
    platform, _ = RECORDER.require()
    return timing.platform_profile(platform)


def incidents(service: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
    _, endpoints = RECORDER.require()
    query = {key: value for key, value in (("service", service), ("status", status)) if value}
    url = f"{endpoints.incidents}/incidents?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=3, context=endpoints.client_ssl()) as answer:  # noqa: S310
        body = json.load(answer)
    return list(body["incidents"] if isinstance(body, dict) else body)


def targets_up(job: str = "services") -> bool:
    """Every scrape target of the job is up."""
    targets = [t for t in _prometheus().targets() if t["labels"].get("job") == job]
    return bool(targets) and all(t["health"] == "up" for t in targets)


def error_ratio(service: str = "hello", window_s: int = 15) -> float:
    """Share of 5xx answers of a service over the last window (0 when it served nothing)."""
    expr = (
        f'sum(rate(http_requests_total{{service="{service}",status=~"5.."}}[{window_s}s]))'
        f' / sum(rate(http_requests_total{{service="{service}"}}[{window_s}s]))'
    )
    return _prometheus().value(expr) or 0.0


def firing_alerts() -> list[dict[str, str]]:
    """Alerts firing right now (Prometheus' live rule state), remembered by the recorder."""
    firing = _prometheus().firing_alerts()
    RECORDER.saw_alerts(firing)
    return firing


def firing_alert_count(ignore: list[str] | None = None) -> int:
    """Firing alerts, leaving out the names in ``ignore``.

    The slow-burn SLO ticket outlives any outage by its long window (that is its job: the
    budget was spent), so drills that come back to steady state leave it out.
    """
    skipped = set(ignore or ())
    return sum(1 for labels in firing_alerts() if labels.get("alertname") not in skipped)


def _is_firing(alertname: str, service: str) -> bool:
    return any(a.get("alertname") == alertname and a.get("service") == service for a in firing_alerts())


class NotWaited(RuntimeError):
    """A wait the drill skips because what it waits for follows an expectation that already failed
    (no incident, no resolution of an alert that never fired): a failed drill ends without sitting
    out every remaining timeout. The drill has failed already; this keeps the report saying why."""


def wait_for_alert(alertname: str, service: str, timeout_s: float | None = None) -> float:
    """Seconds from the fault (a stop, or a fault switched on) until Prometheus shows the alert firing.

    Without ``timeout_s`` the wait is derived from the platform's timing profile (scripts.drills.timing).
    """
    if timeout_s is None:
        timeout_s = timing.alert_timeout_s(_profile(), alertname)
    try:
        wait_until(
            lambda: _is_firing(alertname, service),
            timeout_s=timeout_s,
            interval_s=POLL_S,
            what=f"{alertname} firing for {service}",
        )
    except TimedOut:
        RECORDER.notes.setdefault("missed_alerts", []).append(f"{alertname}{{service={service}}}")
        raise
    now = time.time()
    RECORDER.mark("alert_firing", now)
    detected = now - (RECORDER.fault_started() or now)
    RECORDER.notes.setdefault("detected_s", {})[f"{alertname}{{service={service}}}"] = round(detected, 2)
    return detected


def _epoch_s(rfc3339: str) -> float:
    """The receiver's times (``2026-12-02T10:22:13.668Z``, any number of fraction digits) in epoch seconds."""
    whole, _, fraction = rfc3339.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")


def _recorded_since_the_fault(service: str, alertname: str | None = None) -> list[dict[str, Any]]:
    """Firing incidents for the service created after the drill broke something: one left firing by
    anything else (an alert that never resolved, a hand-posted test alert) is not this drill's."""
    since = RECORDER.fault_started() or 0.0
    return [
        i
        for i in incidents(service=service, status="firing")
        if _epoch_s(i["created_at"]) >= since - 1 and alertname in (None, i.get("alertname"))
    ]


def wait_for_incident(service: str, timeout_s: float | None = None, alertname: str | None = None) -> dict[str, Any]:
    """The incident recorded for the service (firing) since the fault, and when it appeared.

    ``alertname``: the incident of that alert only, when the fault also fires symptoms of its own
    for the same service (the crash loop's ServiceDown beside CrashLooping). Without ``timeout_s``
    the wait is derived from the platform's timing profile: from the alert firing (wait for it
    first), or from the fault when ``alertname`` is given.
    """
    missed = RECORDER.notes.get("missed_alerts")
    if alertname is None and missed and "alert_firing" not in RECORDER.moments:
        raise NotWaited(f"no incident to wait for: {', '.join(missed)} never fired")
    if timeout_s is None:
        timeout_s = timing.incident_timeout_s(_profile(), alertname)
    found = wait_until(
        lambda: _recorded_since_the_fault(service, alertname),
        timeout_s=timeout_s,
        interval_s=POLL_S,
        what=f"a firing {alertname or ''} incident for {service}".replace("  ", " "),
    )
    RECORDER.mark("incident_recorded")
    RECORDER.notes["incident_id"] = found[0]["id"]
    return found[0]


def wait_for_resolution(alertname: str, service: str, timeout_s: float | None = None) -> float:
    """Seconds from the repair (restart, fault off) until the alert stopped and the incident was resolved."""
    if f"{alertname}{{service={service}}}" in RECORDER.notes.get("missed_alerts", []) and not _is_firing(
        alertname, service
    ):
        raise NotWaited(f"nothing to resolve: {alertname} for {service} never fired")
    if timeout_s is None:
        timeout_s = timing.resolution_timeout_s(_profile(), alertname)
    wait_until(
        lambda: not _is_firing(alertname, service),
        timeout_s=timeout_s,
        interval_s=POLL_S,
        what=f"{alertname} for {service} no longer firing",
    )
    RECORDER.mark("alert_resolved")
    incident_id = RECORDER.notes.get("incident_id")
    wait_until(
        lambda: any(i["id"] == incident_id and i["status"] == "resolved" for i in incidents(service=service)),
        timeout_s=timeout_s,
        interval_s=POLL_S,
        what=f"incident {incident_id} resolved",
    )
    return RECORDER.mark("incident_resolved") - (RECORDER.fault_ended() or time.time())


def wait_for_steady_state(
    service: str = "hello", max_error_ratio: float = 0.01, timeout_s: float = 90, ignore: list[str] | None = None
) -> float:
    """Seconds until the error ratio is low again and no alert fires (the hypothesis will hold)."""
    wait_until(
        lambda: error_ratio(service) <= max_error_ratio and firing_alert_count(ignore) == 0,
        timeout_s=timeout_s,
        interval_s=0.5,
        what="steady state again (low error ratio, no alert firing)",
    )
    return RECORDER.mark("steady_again") - (RECORDER.fault_ended() or time.time())


def movie_answer(movie_id: str, as_user: str = "demo") -> dict[str, Any]:
    """One call to movie's HTTP front as a user: the status and, on 200, whether ratings were included."""
    from scripts.drills.actions import user_token

    _, endpoints = RECORDER.require()
    request = urllib.request.Request(  # noqa: S310 (the platform's own URL)
        f"{endpoints.services['movie']}/movies/{urllib.parse.quote(movie_id)}",
        headers={"Authorization": f"Bearer {user_token(as_user)}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            body = json.load(answer)
            return {"status": answer.status, "rating_available": body.get("rating_available")}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "rating_available": None}


def wait_for_movie_answer(movie_id: str, rating_available: bool, timeout_s: float = 30) -> dict[str, Any]:
    """Wait until movie answers 200 with ``rating_available`` as given (degraded, or whole again)."""

    def answered() -> dict[str, Any] | None:
        answer = movie_answer(movie_id)
        return answer if answer["status"] == 200 and answer["rating_available"] is rating_available else None

    found = wait_until(
        answered,
        timeout_s=timeout_s,
        interval_s=0.5,
        what=f"movie answering 200 with rating_available {rating_available}",
    )
    RECORDER.mark("movie_degraded" if not rating_available else "movie_whole")
    return found


def page_burn_settled() -> bool:
    """No edge SLO burns its budget above a page threshold over that page's short window right now.

    A drill that made users fail leaves its errors in the burn-rate windows for a while; the next
    drill waits for this so that a page the previous one earned is not counted as its false alert.
    """
    from scripts.monitoring.slo import PAGE, ratio_record, slos, threshold

    prometheus = _prometheus()
    for slo in slos():
        for pair in PAGE.windows:
            ratio = prometheus.value(f"max({ratio_record(pair.short_s)}{{{slo.matchers()}}})")
            if ratio is not None and ratio > threshold(slo, pair.factor):
                return False
    return True


def partition_possible(caller: str = "hello", callee: str = "response") -> str:
    """``yes``, or why this platform cannot cut the caller off from the callee (the drill then refuses)."""
    platform, _ = RECORDER.require()
    return platform.partition_refusal(caller, callee) or "yes"


def _timed_get(url: str, timeout_s: float) -> tuple[int, float, str]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310 (the platform's own URL)
            status, body = answer.status, answer.read(2048)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(2048)
    return status, time.monotonic() - started, body.decode(errors="replace")


def caller_fails_within_deadline(
    service: str = "hello",
    path: str = "/hello",
    deadline_s: float = 2.0,
    slack_s: float = 1.0,
    samples: int = 3,
    cut_within_s: float = 30.0,
) -> dict[str, Any]:
    """While the caller's upstream is cut off, each call must end in a 5xx within the caller's deadline.

    Timeouts and retries hold the deadline: the caller answers 503/504 with a message naming the
    upstream instead of hanging until the user gives up. Raises (the drill fails) otherwise.
    """
    _, endpoints = RECORDER.require()
    url = endpoints.services[service] + path
    timeout_s = deadline_s + 10 * slack_s
    # The caller's discovery cache may hold the old address for a heartbeat interval or so: wait
    # (bounded) for the first failure, then judge the calls that follow.
    wait_until(
        lambda: _timed_get(url, timeout_s)[0] >= 500,
        timeout_s=cut_within_s,
        interval_s=0.2,
        what=f"{service}'s calls to fail once its upstream is cut off",
    )
    answers = [_timed_get(url, timeout_s) for _ in range(samples)]
    seen = {
        "statuses": [status for status, _, _ in answers],
        "slowest_s": round(max(elapsed for _, elapsed, _ in answers), 3),
        "deadline_s": deadline_s,
        "example": answers[-1][2][:300],
    }
    RECORDER.notes["deadline"] = seen
    late = [round(elapsed, 2) for _, elapsed, _ in answers if elapsed > deadline_s + slack_s]
    wrong = [status for status, _, _ in answers if status not in (503, 504)]
    if late or wrong:
        raise AssertionError(
            f"{service} did not fail cleanly within its {deadline_s:g}s deadline: statuses {seen['statuses']}, "
            f"answers slower than {deadline_s + slack_s:g}s: {late}"
        )
    return seen
