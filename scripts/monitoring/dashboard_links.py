"""Links from dashboards to the runbooks of the alerts they explain (one runbook per alert)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import DashboardLink

from services.common.profiles import PRODUCTION

from .alerts import alerts
from .grafana_kit import link
from .settings import LINKS


def runbooks(*names: str) -> list[DashboardLink]:
    """Links to the runbooks of the named alerts (a name that is not an alert raises KeyError)."""
    urls = {a.name: a.runbook_url for a in alerts(PRODUCTION, links=LINKS)}
    return [link(f"Runbook: {name}", urls[name], new_tab=True) for name in names]


def alerts_for(uid: str) -> tuple[str, ...]:
    """The alerts whose dashboard_url opens this dashboard."""
    return tuple(
        dict.fromkeys(a.name for a in alerts(PRODUCTION) if a.dashboard_url.split("?")[0].endswith(f"/d/{uid}"))
    )


def header_runbooks(uid: str) -> list[DashboardLink]:
    """The dashboard header links to the runbook of every alert that sends people to it."""
    return runbooks(*alerts_for(uid))
