"""The drill's moments as events a chart marks: what happened, when, and how it is drawn."""

from __future__ import annotations

from dataclasses import dataclass

# Moment name -> (label, colour). Colours from the Okabe-Ito palette, told apart also with
# colour-vision deficiencies; the label is printed next to each mark, so none relies on colour.
STYLES: dict[str, tuple[str, str]] = {
    "traffic_started": ("traffic starts", "#555555"),
    "stopped": ("{service} stopped", "#D55E00"),
    "fault_on": ("{service} fault on", "#D55E00"),
    "trace_finding": ("traces name the culprit", "#E69F00"),
    "alert_firing": ("alert firing", "#B8860B"),
    "incident_recorded": ("incident recorded", "#CC79A7"),
    "restarted": ("{service} restarted", "#009E73"),
    "fault_off": ("{service} fault off", "#009E73"),
    "alert_resolved": ("alert resolved", "#56B4E9"),
    "incident_resolved": ("incident resolved", "#0072B2"),
    "steady_again": ("steady again", "#444444"),
    "traffic_stopped": ("traffic stops", "#555555"),
}


@dataclass(frozen=True, slots=True)
class Event:
    key: str
    label: str
    colour: str
    when: float


def drill_events(moments: dict[str, float], service: str) -> list[Event]:
    """The recorded moments that have a style, in time order; later ones say how long after the fault."""
    stopped = moments.get("stopped", moments.get("fault_on"))
    events = []
    for key, (label, colour) in STYLES.items():
        if key not in moments:
            continue
        text = label.format(service=service)
        if (
            stopped is not None
            and key not in ("stopped", "fault_on")
            and not key.startswith("traffic")
            and moments[key] >= stopped
        ):
            text += f" +{moments[key] - stopped:.1f} s"
        events.append(Event(key, text, colour, moments[key]))
    return sorted(events, key=lambda e: e.when)


def outage_span(moments: dict[str, float]) -> tuple[float, float] | None:
    """From the stop (or fault on) to the restart (or fault off); None when the drill broke nothing."""
    start = moments.get("stopped", moments.get("fault_on"))
    if start is None:
        return None
    return start, moments.get("restarted", moments.get("fault_off", start))
