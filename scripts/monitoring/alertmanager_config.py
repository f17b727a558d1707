"""alertmanager.yml: severity routing, grouping, dependency inhibition and receiver slots.

Secrets never enter the rendered file: the Slack and PagerDuty receivers read them from files
(``api_url_file``, ``routing_key_file``, both accepted by Alertmanager 0.25). A slot without a
file is an empty receiver: routed to, but it notifies nobody.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common import catalog
from services.common.config import TlsFiles
from services.common.profiles import TimingProfile, duration
from services.incidents.validation import MAX_ALERTS

from .alerts import DEPENDENT_SYMPTOMS

INCIDENTS = "incidents"
PAGER = "pager"
CHAT = "chat"

SLACK_URL_ENV = "FIREDRILL_SLACK_WEBHOOK_URL"
SLACK_URL_FILE_ENV = "FIREDRILL_SLACK_WEBHOOK_URL_FILE"
SLACK_CHANNEL_ENV = "FIREDRILL_SLACK_CHANNEL"
PAGERDUTY_KEY_ENV = "FIREDRILL_PAGERDUTY_ROUTING_KEY"
PAGERDUTY_KEY_FILE_ENV = "FIREDRILL_PAGERDUTY_ROUTING_KEY_FILE"


@dataclass(frozen=True, slots=True)
class ReceiverSecrets:
    """Files holding the notification secrets (None: the slot stays disabled)."""

    slack_webhook_url_file: str | None = None
    slack_channel: str | None = None
    pagerduty_routing_key_file: str | None = None

    @classmethod
    def from_env(cls, secrets_dir: Path, env: dict[str, str] | None = None) -> ReceiverSecrets:
        """Use *_FILE variables as they are; write plain-value variables to 0600 files in secrets_dir."""
        source = dict(os.environ if env is None else env)
        return cls(
            slack_webhook_url_file=_file_for(source, SLACK_URL_FILE_ENV, SLACK_URL_ENV, secrets_dir / "slack_url"),
            slack_channel=source.get(SLACK_CHANNEL_ENV) or None,
            pagerduty_routing_key_file=_file_for(
                source, PAGERDUTY_KEY_FILE_ENV, PAGERDUTY_KEY_ENV, secrets_dir / "pagerduty_routing_key"
            ),
        )


def _file_for(env: dict[str, str], file_var: str, value_var: str, target: Path) -> str | None:
    if env.get(file_var):
        return env[file_var]
    value = env.get(value_var)
    if not value:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value.strip())
    return str(target)


def dependents() -> dict[str, tuple[str, ...]]:
    """dependency -> every service that depends on it, directly or through others."""
    direct: dict[str, set[str]] = {name: set() for name in catalog.service_names()}
    for spec in catalog.SERVICES:
        for dependency in spec.depends_on:
            direct[dependency].add(spec.name)
    closure: dict[str, tuple[str, ...]] = {}
    for name in direct:
        seen: set[str] = set()
        todo = list(direct[name])
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(direct[current])
        closure[name] = tuple(sorted(seen))
    return {k: v for k, v in closure.items() if v}


# A dependency's own symptoms that explain the same symptoms in its callers (a failing or slow
# response makes hello fail or slow). Only alerts of the same (warning) severity: a symptom never
# silences its callers' SLO burn-rate page, which stays the users' page whatever the cause.
CAUSING_SYMPTOMS = ("HighErrorRatio", "HighLatencyP95")


def inhibit_rules() -> list[dict[str, Any]]:
    """Inhibit the callers' symptom alerts while a dependency is down (every symptom, the burn-rate
    alerts too: ServiceDown is the page) or shows a symptom itself (the same kind of symptoms)."""
    symptoms = "|".join(DEPENDENT_SYMPTOMS)
    causing = "|".join(CAUSING_SYMPTOMS)
    rules: list[dict[str, Any]] = []
    for dependency, callers in dependents().items():
        targets = f'service=~"{"|".join(callers)}"'
        rules.append(
            {
                "source_matchers": ["alertname=ServiceDown", f"service={dependency}"],
                "target_matchers": [f'alertname=~"{symptoms}"', targets],
            }
        )
        rules.append(
            {
                "source_matchers": [f'alertname=~"{causing}"', f"service={dependency}"],
                "target_matchers": [f'alertname=~"{causing}"', targets],
            }
        )
    return rules


def _webhook(url: str, tls: TlsFiles | None) -> dict[str, Any]:
    # Never more alerts than the receiver's body limit is sized for: a bigger group arrives as its
    # first MAX_ALERTS alerts with truncatedAlerts counting the rest (a 413 would be dropped, not retried).
    webhook: dict[str, Any] = {"url": url, "send_resolved": True, "max_alerts": MAX_ALERTS}
    if tls is not None:
        # The receiver only answers callers with a certificate from the platform CA.
        webhook["http_config"] = {
            "tls_config": {"ca_file": str(tls.ca), "cert_file": str(tls.cert), "key_file": str(tls.key)}
        }
    return webhook


def _receivers(
    incidents_webhook_url: str, secrets: ReceiverSecrets, webhook_tls: TlsFiles | None = None
) -> list[dict[str, Any]]:
    pager: dict[str, Any] = {"name": PAGER}
    if secrets.pagerduty_routing_key_file:
        pager["pagerduty_configs"] = [
            {
                "routing_key_file": secrets.pagerduty_routing_key_file,
                "send_resolved": True,
                "severity": "{{ .CommonLabels.severity }}",
                "description": '{{ template "firedrill.title" . }}',
            }
        ]
    chat: dict[str, Any] = {"name": CHAT}
    if secrets.slack_webhook_url_file:
        slack: dict[str, Any] = {
            "api_url_file": secrets.slack_webhook_url_file,
            "send_resolved": True,
            "title": '{{ template "firedrill.title" . }}',
            "text": '{{ template "firedrill.text" . }}',
        }
        if secrets.slack_channel:
            slack["channel"] = secrets.slack_channel
        chat["slack_configs"] = [slack]
    return [
        {
            "name": INCIDENTS,
            "webhook_configs": [_webhook(incidents_webhook_url, webhook_tls)],
        },
        pager,
        chat,
    ]


def page_timers(profile: TimingProfile) -> dict[str, str]:
    """group_wait/group_interval of the routes that carry pages (severity critical)."""
    return {
        "group_wait": duration(profile.page_group_wait_s),
        "group_interval": duration(profile.page_group_interval_s),
    }


def notification_timers_s(profile: TimingProfile, severity: str) -> tuple[int, int]:
    """(group_wait, group_interval) in seconds for an alert of this severity, as routed below."""
    if severity == "critical":
        return profile.page_group_wait_s, profile.page_group_interval_s
    return profile.group_wait_s, profile.group_interval_s


def _routes(profile: TimingProfile) -> list[dict[str, Any]]:
    """Severity routing; pages on quick timers, warnings and tickets on the root's calm ones.

    Every alert that matters becomes an incident (``continue`` lets it reach the next route too);
    pages also go to the pager, the rest to chat.
    """
    return [
        {"receiver": INCIDENTS, "matchers": ["severity=critical"], "continue": True, **page_timers(profile)},
        {"receiver": INCIDENTS, "matchers": ["severity=warning"], "continue": True},
        {"receiver": PAGER, "matchers": ["severity=critical"], **page_timers(profile)},
        {"receiver": CHAT, "matchers": ['severity=~"warning|info"']},
    ]


def render_alertmanager_config(
    profile: TimingProfile,
    incidents_webhook_url: str,
    *,
    secrets: ReceiverSecrets | None = None,
    templates_dir: str = "templates",
    webhook_tls: TlsFiles | None = None,
) -> dict[str, Any]:
    secrets = secrets or ReceiverSecrets()
    return {
        "global": {"resolve_timeout": duration(profile.resolve_timeout_s)},
        "templates": [f"{templates_dir}/*.tmpl"],
        "route": {
            "receiver": INCIDENTS,
            "group_by": ["alertname", "service"],
            "group_wait": duration(profile.group_wait_s),
            "group_interval": duration(profile.group_interval_s),
            "repeat_interval": duration(profile.repeat_interval_s),
            "routes": _routes(profile),
        },
        "inhibit_rules": inhibit_rules(),
        "receivers": _receivers(incidents_webhook_url, secrets, webhook_tls),
    }
