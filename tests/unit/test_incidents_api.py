"""The receiver through its HTTP API: the app factory on aiohttp's test server, a fresh registry each."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest

from services.common.waiting import wait_until_async
from services.incidents.app import create_app
from services.incidents.config import IncidentsConfig
from services.incidents.models import NS_PER_S
from services.incidents.payloads import AlertSpec, group_notification
from services.incidents.validation import ALERT_BUDGET_BYTES, MAX_ALERTS, MAX_BODY_BYTES, MAX_VALUE_CHARS

T0 = 1_714_564_800 * NS_PER_S  # 2024-05-01T12:00:00Z


class Api:
    def __init__(
        self, client: TestClient[web.Request, web.Application], registry: CollectorRegistry, data_dir: Path
    ) -> None:
        self.client = client
        self.registry = registry
        self.data_dir = data_dir

    async def post(self, body: Any) -> tuple[int, dict[str, Any]]:
        answer = await self.client.post("/alerts", json=body)
        return answer.status, await answer.json()

    async def get(self, path: str) -> tuple[int, Any]:
        answer = await self.client.get(path)
        return answer.status, await answer.json()

    async def incidents(self, query: str = "") -> list[dict[str, Any]]:
        status, body = await self.get(f"/incidents{query}")
        assert status == 200, body
        return list(body["incidents"])

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.registry.get_sample_value(name, labels or {}) or 0.0

    async def exported(self, timeout_s: float = 5.0) -> None:
        """Wait (bounded) until every incident's JSON file has caught up with the store."""

        async def caught_up() -> bool:
            _, health = await self.get("/health")
            return bool(health["checks"]["database"]["export_pending"] == 0)

        await wait_until_async(
            caught_up, timeout_s=timeout_s, interval_s=0.02, what="incident files caught up (export_pending 0)"
        )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    config = IncidentsConfig.from_env({"FIREDRILL_STATE_DIR": str(tmp_path), "FIREDRILL_DATA_DIR": str(tmp_path / "d")})
    registry = CollectorRegistry()
    async with TestClient(TestServer(create_app(config, metrics_registry=registry))) as client:
        yield Api(client, registry, config.data_dir)


def alert(name: str = "ServiceDown", service: str = "response", start: int = T0, **extra: Any) -> AlertSpec:
    labels = {"alertname": name, "service": service, "severity": extra.pop("severity", "critical")}
    labels.update(extra.pop("labels", {}))
    annotations = extra.pop(
        "annotations",
        {"summary": f"{service} down", "runbook_url": "https://runbooks/sd", "dashboard_url": "https://grafana/d/x"},
    )
    return AlertSpec(labels=labels, starts_at_ns=start, annotations=annotations, expr="up == 0", **extra)


def resolved(spec: AlertSpec, after_s: int = 300) -> AlertSpec:
    return AlertSpec(
        spec.labels, spec.starts_at_ns, spec.starts_at_ns + after_s * NS_PER_S, spec.annotations, spec.expr
    )


# -- storing -------------------------------------------------------------------------------------


async def test_a_firing_notification_opens_an_enriched_incident(api: Api) -> None:
    status, body = await api.post(group_notification([alert()]))
    assert status == 200
    assert body["incidents_created"] == [1]
    (incident,) = await api.incidents()
    assert incident["status"] == "firing"
    assert incident["service"] == "response"
    assert incident["severity"] == "critical"
    assert incident["runbook_url"] == "https://runbooks/sd"
    assert incident["dashboard_url"] == "https://grafana/d/x"
    assert incident["started_at"] == "2024-05-01T12:00:00Z"
    assert incident["resolved_at"] is None
    assert incident["enrichment"]["status"] == "skipped"  # no Prometheus configured
    assert api.metric("incidents_open") == 1
    assert api.metric("incidents_notifications_total", {"status": "firing"}) == 1


async def test_the_same_notification_three_times_is_one_incident_with_one_alert(api: Api) -> None:
    body = group_notification([alert()])
    for _ in range(3):
        assert (await api.post(body))[0] == 200
    (incident,) = await api.incidents()
    assert incident["alerts_total"] == 1
    _, detail = await api.get(f"/incidents/{incident['id']}")
    assert len(detail["alerts"]) == 1
    assert api.metric("incidents_alerts_deduplicated_total") == 2
    assert api.metric("incidents_notifications_total", {"status": "firing"}) == 3
    assert api.metric("incidents_alerts_stored_total") == 1


async def test_a_repeated_alert_inside_one_payload_is_stored_once(api: Api) -> None:
    body = group_notification([alert(), alert()])
    status, answer = await api.post(body)
    assert status == 200
    assert answer["alerts_new"] == 1
    assert answer["alerts_deduplicated"] == 1


async def test_alerts_of_one_group_firing_together_are_one_incident(api: Api) -> None:
    first = alert(labels={"instance": "a:1"})
    second = alert(labels={"instance": "b:1"}, start=T0 + NS_PER_S)
    await api.post(group_notification([first]))
    await api.post(group_notification([first, second]))
    (incident,) = await api.incidents()
    assert incident["alerts_total"] == 2
    assert incident["alerts_firing"] == 2


async def test_different_groups_are_different_incidents(api: Api) -> None:
    await api.post(group_notification([alert(service="response")]))
    await api.post(group_notification([alert(service="hello")]))
    await api.post(group_notification([alert(name="HighLatency", service="hello", severity="warning")]))
    assert len(await api.incidents()) == 3
    assert api.metric("incidents_open") == 3


async def test_firing_then_resolved_gives_a_duration(api: Api) -> None:
    a = alert(labels={"instance": "a:1"})
    b = alert(labels={"instance": "b:1"}, start=T0 + 10 * NS_PER_S)
    await api.post(group_notification([a, b]))
    await api.post(group_notification([resolved(a, 60), b]))
    (incident,) = await api.incidents()
    assert incident["status"] == "firing"  # one alert still fires
    assert incident["alerts_firing"] == 1
    await api.post(group_notification([resolved(a, 60), resolved(b, 290)]))
    (incident,) = await api.incidents()
    assert incident["status"] == "resolved"
    assert incident["resolved_at"] == "2024-05-01T12:05:00Z"
    assert incident["duration_seconds"] == 300.0
    assert api.metric("incidents_open") == 0
    assert api.metric("incidents_notifications_total", {"status": "resolved"}) == 1


async def test_a_late_firing_retry_does_not_reopen_a_resolved_alert(api: Api) -> None:
    a = alert()
    await api.post(group_notification([a]))
    await api.post(group_notification([resolved(a)]))
    status, answer = await api.post(group_notification([a]))
    assert status == 200
    assert answer["alerts_deduplicated"] == 1
    (incident,) = await api.incidents()
    assert incident["status"] == "resolved"


async def test_a_resolution_that_arrives_first_is_one_resolved_incident(api: Api) -> None:
    a = alert()
    await api.post(group_notification([resolved(a)]))
    await api.post(group_notification([a]))
    (incident,) = await api.incidents()
    assert incident["status"] == "resolved"
    assert incident["alerts_total"] == 1
    assert api.metric("incidents_open") == 0


async def test_after_resolution_the_group_firing_again_is_a_new_incident(api: Api) -> None:
    a = alert()
    await api.post(group_notification([a]))
    await api.post(group_notification([resolved(a)]))
    again = alert(start=T0 + 3600 * NS_PER_S)
    await api.post(group_notification([again]))
    incidents = await api.incidents()
    assert [i["status"] for i in incidents] == ["firing", "resolved"]  # newest first


async def test_a_notification_adding_and_resolving_alerts_stays_one_incident(api: Api) -> None:
    a, b = alert(labels={"instance": "a"}), alert(labels={"instance": "b"})
    await api.post(group_notification([a]))
    await api.post(group_notification([resolved(a), resolved(b)]))
    (incident,) = await api.incidents()
    assert incident["alerts_total"] == 2
    assert incident["status"] == "resolved"


def restarted(spec: AlertSpec, start: int, end: int | None = None) -> AlertSpec:
    """The same alert (same labels, so the same fingerprint) with another startsAt."""
    return AlertSpec(spec.labels, start, end, spec.annotations, spec.expr)


async def test_a_resolve_with_a_differently_rounded_start_closes_the_episode(api: Api) -> None:
    # Alertmanager stamped the firing alert with nanoseconds; the resolve it later sent for the
    # same fingerprint carries the start as amtool posted it (whole seconds, merged: the earliest).
    a = alert(start=T0 + 123_456_789)
    await api.post(group_notification([a]))
    status, answer = await api.post(group_notification([restarted(a, T0, T0 + 60 * NS_PER_S)]))
    assert status == 200
    assert (answer["alerts_new"], answer["alerts_resolved"]) == (0, 1)
    (incident,) = await api.incidents()
    assert incident["status"] == "resolved"
    assert incident["alerts_total"] == 1
    assert incident["started_at"] == "2024-05-01T12:00:00.123456789Z"  # the first word on the start stays
    assert incident["resolved_at"] == "2024-05-01T12:01:00Z"
    assert api.metric("incidents_open") == 0


async def test_a_firing_retry_with_another_start_precision_is_the_same_alert(api: Api) -> None:
    a = alert(start=T0 + 123_000_000)
    await api.post(group_notification([a]))
    status, answer = await api.post(group_notification([restarted(a, T0 + 123_456_789)]))
    assert status == 200
    assert answer["alerts_deduplicated"] == 1
    (incident,) = await api.incidents()
    assert incident["alerts_total"] == 1


async def test_a_late_firing_with_another_start_precision_does_not_reopen(api: Api) -> None:
    a = alert(start=T0 + 123_456_789)
    await api.post(group_notification([a]))
    await api.post(group_notification([resolved(a)]))
    status, answer = await api.post(group_notification([restarted(a, T0 + 123_000_000)]))
    assert (status, answer["alerts_deduplicated"]) == (200, 1)
    (incident,) = await api.incidents()
    assert (incident["status"], incident["alerts_total"]) == ("resolved", 1)


async def test_a_late_copy_of_an_earlier_resolve_leaves_the_new_episode_firing(api: Api) -> None:
    a = alert()
    await api.post(group_notification([a]))
    await api.post(group_notification([resolved(a, 60)]))
    again = restarted(a, T0 + 3600 * NS_PER_S)
    await api.post(group_notification([again]))
    status, answer = await api.post(group_notification([resolved(a, 60)]))  # e.g. from a slower HA peer
    assert (status, answer["alerts_deduplicated"]) == (200, 1)
    assert [i["status"] for i in await api.incidents()] == ["firing", "resolved"]


async def test_an_episode_that_starts_and_ends_in_one_notification_is_resolved(api: Api) -> None:
    a = alert(start=T0 + 5)
    status, answer = await api.post(group_notification([a, restarted(a, T0, T0 + 60 * NS_PER_S), a]))
    assert status == 200
    assert (answer["alerts_new"], answer["alerts_deduplicated"]) == (1, 2)
    (incident,) = await api.incidents()
    assert (incident["status"], incident["alerts_total"]) == ("resolved", 1)


async def test_repeating_every_notification_of_an_episode_changes_nothing(api: Api) -> None:
    a = alert(start=T0 + 123_456_789)
    episode = [group_notification([a]), group_notification([restarted(a, T0, T0 + 60 * NS_PER_S)])]
    for body in episode:
        await api.post(body)
    before = await api.incidents()
    for body in episode + episode[::-1]:
        status, answer = await api.post(body)
        assert (status, answer["alerts_new"], answer["alerts_resolved"]) == (200, 0, 0)
    assert await api.incidents() == before


async def test_severity_is_the_highest_among_the_alerts(api: Api) -> None:
    warn = alert(severity="warning", labels={"instance": "a"})
    crit = alert(severity="critical", labels={"instance": "b"})
    body = group_notification([warn])
    await api.post(body)
    body = group_notification([warn, crit])
    await api.post(body)
    (incident,) = await api.incidents()
    assert incident["severity"] == "critical"


async def test_a_thousand_alerts_in_one_payload(api: Api) -> None:
    alerts = [alert(labels={"instance": f"host-{i}:9100"}, start=T0 + i) for i in range(1000)]
    body = group_notification(alerts)
    status, answer = await api.post(body)
    assert status == 200
    assert answer["alerts_new"] == 1000
    status, answer = await api.post(body)
    assert answer["alerts_deduplicated"] == 1000
    (incident,) = await api.incidents()
    assert incident["alerts_total"] == 1000
    _, detail = await api.get(f"/incidents/{incident['id']}")
    assert len(detail["alerts"]) == 1000


async def test_unicode_labels_round_trip(api: Api) -> None:
    a = alert(service="réponse-服务", labels={"note": "🔥 Ünïcødé"}, annotations={"summary": "下がっています"})
    await api.post(group_notification([a]))
    (incident,) = await api.incidents("?service=réponse-服务")
    _, detail = await api.get(f"/incidents/{incident['id']}")
    assert detail["alerts"][0]["labels"]["note"] == "🔥 Ünïcødé"
    assert detail["summary"] == "下がっています"


async def test_huge_label_values_are_stored_truncated(api: Api) -> None:
    a = alert(labels={"description": "x" * 200_000})
    status, answer = await api.post(group_notification([a]))
    assert status == 200
    assert answer["truncated_values"] == 2  # the alert's label and the same common label
    _, detail = await api.get("/incidents/1")
    assert len(detail["alerts"][0]["labels"]["description"]) == MAX_VALUE_CHARS


async def test_a_byte_identical_resend_is_answered_from_memory_as_the_store_would(api: Api) -> None:
    body = group_notification([alert(labels={"description": "x" * 200_000})])
    first = await api.post(body)
    assert first[1]["alerts_new"] == 1
    (before,) = await api.incidents()
    repeat = await api.post(body)  # the same bytes: answered without parsing or writing
    assert api.metric("incidents_notifications_repeated_total") == 1
    # The same notification in other bytes goes through the store, which answers the same.
    answer = await api.client.post("/alerts", data=json.dumps(body, indent=1))
    from_store = answer.status, await answer.json()
    assert api.metric("incidents_notifications_repeated_total") == 1
    expected = {
        "status": "stored",
        "alerts_new": 0,
        "alerts_resolved": 0,
        "alerts_deduplicated": 1,
        "incidents_created": [],
        "incidents_changed": [],
        "truncated_values": 2,
    }
    assert repeat == from_store == (200, expected)
    assert await api.incidents() == [before]  # nothing changed, not even the update count
    assert api.metric("incidents_notifications_total", {"status": "firing"}) == 3
    assert api.metric("incidents_alerts_deduplicated_total") == 2


async def test_an_invalid_body_is_refused_every_time(api: Api) -> None:
    body = group_notification([alert()])
    body["status"] = "burning"
    for _ in range(2):
        assert (await api.post(body))[0] == 400
    assert api.metric("incidents_notifications_rejected_total") == 2
    assert api.metric("incidents_notifications_repeated_total") == 0


# -- refusing ------------------------------------------------------------------------------------


async def test_invalid_payloads_are_400_naming_the_field(api: Api) -> None:
    body = group_notification([alert()])
    del body["alerts"][0]["fingerprint"]
    status, answer = await api.post(body)
    assert status == 400
    assert answer["error"]["code"] == "invalid_payload"
    assert answer["error"]["details"]["field"] == "alerts[0].fingerprint"
    assert api.metric("incidents_notifications_rejected_total") == 1
    assert await api.incidents() == []


async def test_malformed_json_is_a_json_400(api: Api) -> None:
    answer = await api.client.post("/alerts", data=b"{", headers={"Content-Type": "application/json"})
    assert answer.status == 400
    assert (await answer.json())["error"]["details"]["field"] == "body"


async def test_the_largest_group_alertmanager_sends_is_stored(api: Api) -> None:
    # max_alerts alerts, each as large as the body limit budgets for (an 8 KiB annotation and the
    # rest of the alert): what the webhook config lets Alertmanager send must never be a 413.
    padding = "p" * (ALERT_BUDGET_BYTES - 512)
    alerts = [
        alert(labels={"instance": f"host-{i}:9100"}, start=T0 + i, annotations={"description": padding})
        for i in range(MAX_ALERTS)
    ]
    body = group_notification(alerts)
    body["truncatedAlerts"] = 500
    raw = json.dumps(body).encode()
    assert max(len(json.dumps(a)) for a in body["alerts"]) <= ALERT_BUDGET_BYTES
    assert len(raw) > 7 * 1024 * 1024  # the limit was 1 MiB
    answer = await api.client.post("/alerts", data=raw, headers={"Content-Type": "application/json"})
    assert answer.status == 200, await answer.text()
    (incident,) = await api.incidents()
    assert (incident["alerts_total"], incident["truncated_alerts"]) == (MAX_ALERTS, 500)


async def test_bodies_over_the_limit_are_413_json_naming_it(api: Api) -> None:
    body = group_notification([alert()])
    body["commonAnnotations"]["padding"] = "p" * MAX_BODY_BYTES
    answer = await api.client.post("/alerts", data=json.dumps(body).encode())
    assert answer.status == 413
    error = (await answer.json())["error"]
    assert error["code"] == "payload_too_large"
    assert f"over {MAX_BODY_BYTES} bytes" in error["message"]
    assert await api.incidents() == []


async def test_truncated_alerts_keeps_the_most_alertmanager_left_out(api: Api) -> None:
    a = alert()
    for truncated, resend in ((3, a), (7, a), (2, resolved(a))):
        body = group_notification([resend])
        body["truncatedAlerts"] = truncated
        assert (await api.post(body))[0] == 200
    (incident,) = await api.incidents()
    assert (incident["status"], incident["truncated_alerts"]) == ("resolved", 7)


async def test_only_post_is_accepted_on_alerts(api: Api) -> None:
    answer = await api.client.get("/alerts")
    assert answer.status == 405


# -- reading -------------------------------------------------------------------------------------


async def _three_incidents(api: Api) -> None:
    a = alert(service="response", start=T0)
    await api.post(group_notification([a]))
    await api.post(group_notification([resolved(a)]))
    await api.post(group_notification([alert(service="hello", start=T0 + NS_PER_S)]))
    await api.post(group_notification([alert(name="HighLatency", service="response", start=T0 + 2 * NS_PER_S)]))


async def test_filters_by_status_and_service(api: Api) -> None:
    await _three_incidents(api)
    assert [i["id"] for i in await api.incidents("?status=firing")] == [3, 2]
    assert [i["id"] for i in await api.incidents("?status=resolved")] == [1]
    assert [i["id"] for i in await api.incidents("?service=response")] == [3, 1]
    assert [i["id"] for i in await api.incidents("?service=response&status=firing")] == [3]
    assert await api.incidents("?service=nobody") == []


async def test_limit_and_offset_page_newest_first(api: Api) -> None:
    await _three_incidents(api)
    _, page = await api.get("/incidents?limit=2")
    assert [i["id"] for i in page["incidents"]] == [3, 2]
    assert page["total"] == 3
    _, page = await api.get("/incidents?limit=2&offset=2")
    assert [i["id"] for i in page["incidents"]] == [1]


@pytest.mark.parametrize(
    "query",
    ["?status=open", "?limit=0", "?limit=501", "?limit=x", "?offset=-1", "?offset=1e3", "?service=" + "s" * 300],
)
async def test_bad_list_parameters_are_400(api: Api, query: str) -> None:
    status, body = await api.get(f"/incidents{query}")
    assert status == 400
    assert body["error"]["code"] == "bad_request"


async def test_unknown_incident_is_a_json_404(api: Api) -> None:
    status, body = await api.get("/incidents/42")
    assert status == 404
    assert body["error"]["code"] == "incident_not_found"


@pytest.mark.parametrize("raw", ["abc", "1.5", "-1", "0", "99999999999999999999", "%C2%B2"])
async def test_non_integer_incident_id_is_400(api: Api, raw: str) -> None:
    status, body = await api.get(f"/incidents/{raw}")
    assert status == 400
    assert body["error"]["details"]["parameter"] == "incident_id"


async def test_health_checks_the_database(api: Api) -> None:
    status, body = await api.get("/health")
    assert status == 200
    assert body["checks"]["database"]["ok"] is True


async def test_metrics_follow_the_shared_contract(api: Api) -> None:
    await api.post(group_notification([alert()]))
    labels = {"service": "incidents", "method": "POST", "path": "/alerts", "status": "200"}
    assert api.metric("http_requests_total", labels) == 1
    await api.get("/incidents/7")
    labels = {"service": "incidents", "method": "GET", "path": "/incidents/{incident_id}", "status": "404"}
    assert api.metric("http_requests_total", labels) == 1
    text = generate_latest(api.registry).decode()  # what the ops port serves
    assert "incidents_open 1.0" in text
    assert "incidents_alerts_deduplicated_total" in text


# -- files ---------------------------------------------------------------------------------------


async def test_every_incident_has_a_json_file_that_follows_changes(api: Api) -> None:
    a = alert()
    await api.post(group_notification([a]))
    await api.exported()
    path = api.data_dir / "incidents" / "incident-1.json"
    assert json.loads(path.read_text())["status"] == "firing"
    await api.post(group_notification([resolved(a)]))
    await api.exported()
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    _, detail = await api.get("/incidents/1")
    assert on_disk == detail
    assert on_disk["status"] == "resolved"
    assert not list((api.data_dir / "incidents").glob(".*.tmp"))
