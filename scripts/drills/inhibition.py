"""What Alertmanager did with the alerts Prometheus fired: notified them, or held them back.

An inhibited alert still fires in Prometheus (its rule state does not know about Alertmanager);
Alertmanager's API lists it as ``suppressed`` with the source alerts in ``inhibitedBy``, and sends
no notification for it. A drill that expects a symptom to be inhibited watches this state: the
symptom passes as inhibited when Alertmanager never held it as ``active`` (notifying).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from scripts.drills.catalogue import alert_label, matches

ALERTS_PATH = "/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true"


def alertmanager_states(base_url: str, timeout_s: float = 3.0) -> dict[str, str]:
    """alert label (``Name{service=x}``) -> ``active`` or ``suppressed``, for the alerts Alertmanager holds."""
    with urllib.request.urlopen(base_url.rstrip("/") + ALERTS_PATH, timeout=timeout_s) as answer:  # noqa: S310
        listed: list[dict[str, Any]] = json.load(answer)
    states: dict[str, str] = {}
    for alert in listed:
        labels = alert.get("labels", {})
        label = alert_label(str(labels.get("alertname", "?")), str(labels.get("service", "?")))
        state = str(alert.get("status", {}).get("state", "unprocessed"))
        # One label can stand for several alerts (instances): any active one notifies.
        if states.get(label) != "active":
            states[label] = state
    return states


def remember(notes: dict[str, Any], states: dict[str, str], now: float) -> None:
    """Keep the first time each alert was seen notifying (active) or held back (suppressed)."""
    for label, state in states.items():
        if state in ("active", "suppressed"):
            notes.setdefault(f"alertmanager_{state}", {}).setdefault(label, now)


def split_inhibited(
    fired: set[tuple[str, str]], inhibited_patterns: list[str], notes: dict[str, Any]
) -> tuple[set[tuple[str, str]], list[str]]:
    """Take out of ``fired`` the alerts the drill expects inhibited and Alertmanager never notified.

    One that Alertmanager did hold as active stays in ``fired``: unless expected or tolerated, it
    is a false alert, because it paged or posted while it should have been inhibited.
    """
    notified = set(notes.get("alertmanager_active", {}))
    kept, inhibited = set(), []
    for alertname, service in fired:
        label = alert_label(alertname, service)
        if any(matches(label, pattern) for pattern in inhibited_patterns) and label not in notified:
            inhibited.append(label)
        else:
            kept.add((alertname, service))
    return kept, sorted(inhibited)
