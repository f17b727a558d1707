"""An Alertmanager webhook corpus against the live incident receiver (mTLS, as the operator).

Every body gets a 2xx or a 4xx, never a 5xx, and the receiver process is the same one afterwards
(no crash, no restart by supervisor). Bodies Alertmanager really sends are stored (200); broken
ones are refused (400, or 413 over the size limit). Huge groups are only held to "2xx or 4xx":
whether a group that large is stored is the receiver's limit to choose (docs/incidents.md).
Duplicates, sent one after another and all at once, make one incident.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from services.incidents.models import NS_PER_S
from services.incidents.payloads import AlertSpec, group_notification
from services.incidents.validation import MAX_ALERTS, MAX_BODY_BYTES, MAX_NAME_CHARS, MAX_PAIRS, MAX_VALUE_CHARS
from tests.conftest import RunningPlatform
from tests.hostile.platform_access import TIMEOUT_S

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

STORED = frozenset({200})
REFUSED = frozenset({400, 413})
HANDLED = frozenset(range(200, 300)) | frozenset(range(400, 500))
RUN = secrets.token_hex(3)  # this run's alerts never meet another run's, nor the platform's own
NOW_NS = time.time_ns()


def spec(service: str, index: int = 0, *, resolved: bool = False, **labels: str) -> AlertSpec:
    started = NOW_NS - 60 * NS_PER_S
    return AlertSpec(
        labels={
            "alertname": "HostileCorpus",
            "service": service,
            "severity": "warning",
            "instance": f"i{index}",
            **labels,
        },
        starts_at_ns=started,
        ends_at_ns=started + 30 * NS_PER_S if resolved else None,
        annotations={"summary": f"hostile corpus {service}"},
    )


def body(*alerts: AlertSpec) -> dict[str, Any]:
    return group_notification(alerts)


def raw(value: Any) -> bytes:
    return json.dumps(value).encode()


def edited(edit: Callable[[dict[str, Any]], None]) -> bytes:
    document = body(spec(f"corpus-{RUN}"))
    edit(document)
    return raw(document)


def on_alert(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda document: edit(document["alerts"][0])


@dataclass(frozen=True)
class Case:
    payload: bytes
    expected: frozenset[int]
    content_type: str = "application/json"


VALID = raw(body(spec(f"valid-{RUN}"), spec(f"valid-{RUN}", 1)))

CORPUS: dict[str, Case] = {
    # what Alertmanager sends
    "valid_v4": Case(VALID, STORED),
    "valid_without_version": Case(edited(lambda d: d.pop("version")), STORED),
    "resolve_only_never_seen_firing": Case(raw(body(spec(f"resolve-only-{RUN}", resolved=True))), STORED),
    "unicode_labels_and_annotations": Case(
        raw(body(spec(f"unicode-{RUN}", team="ops ☃ 火事 مرحبا", note="e\u0301 \u200d\U0001f525 \x00 tab\there"))),
        STORED,
    ),
    "huge_value_is_cut_not_refused": Case(
        edited(on_alert(lambda a: a["annotations"].update(description="x" * (MAX_VALUE_CHARS * 20)))), STORED
    ),
    "text_plain_content_type": Case(VALID, STORED, content_type="text/plain"),
    # broken documents
    "empty_body": Case(b"", REFUSED),
    "truncated_json": Case(VALID[: len(VALID) // 2], REFUSED),
    "truncated_after_one_byte": Case(VALID[:1], REFUSED),
    "not_utf8": Case(b'{"status": "firing", "x": "\xff\xfe"}', REFUSED),
    "nan_constant": Case(VALID.replace(b'"truncatedAlerts": 0', b'"truncatedAlerts": NaN'), REFUSED),
    "deep_nesting": Case(b"[" * 100_000 + b"]" * 100_000, REFUSED),
    "json_array": Case(raw([body(spec(f"arr-{RUN}"))]), REFUSED),
    "json_string": Case(raw("firing"), REFUSED),
    "json_null": Case(b"null", REFUSED),
    "unsupported_version": Case(edited(lambda d: d.update(version="3")), REFUSED),
    "version_as_number": Case(edited(lambda d: d.update(version=4)), REFUSED),
    "status_unknown": Case(edited(lambda d: d.update(status="burning")), REFUSED),
    "status_as_number": Case(edited(lambda d: d.update(status=1)), REFUSED),
    "missing_group_key": Case(edited(lambda d: d.pop("groupKey")), REFUSED),
    "alerts_as_object": Case(edited(lambda d: d.update(alerts={"0": d["alerts"][0]})), REFUSED),
    "alerts_empty": Case(edited(lambda d: d.update(alerts=[])), REFUSED),
    "alert_as_string": Case(edited(lambda d: d.update(alerts=["firing"])), REFUSED),
    "truncated_alerts_negative": Case(edited(lambda d: d.update(truncatedAlerts=-1)), REFUSED),
    "truncated_alerts_as_bool": Case(edited(lambda d: d.update(truncatedAlerts=True)), REFUSED),
    "label_value_as_number": Case(edited(on_alert(lambda a: a["labels"].update(severity=3))), REFUSED),
    "labels_as_list": Case(edited(on_alert(lambda a: a.update(labels=["alertname"]))), REFUSED),
    "labels_empty": Case(edited(on_alert(lambda a: a.update(labels={}))), REFUSED),
    "label_name_too_long": Case(
        edited(on_alert(lambda a: a["labels"].update({"n" * (MAX_NAME_CHARS + 1): "v"}))), REFUSED
    ),
    "too_many_labels": Case(
        edited(on_alert(lambda a: a["labels"].update({f"l{i}": "v" for i in range(MAX_PAIRS + 1)}))), REFUSED
    ),
    "unpaired_surrogate": Case(edited(on_alert(lambda a: a["labels"].update(note="\ud800"))), REFUSED),
    "starts_at_as_number": Case(edited(on_alert(lambda a: a.update(startsAt=1_714_564_800))), REFUSED),
    "starts_at_garbage": Case(edited(on_alert(lambda a: a.update(startsAt="yesterday"))), REFUSED),
    "starts_at_zero_time": Case(edited(on_alert(lambda a: a.update(startsAt="0001-01-01T00:00:00Z"))), REFUSED),
    "fingerprint_missing": Case(edited(on_alert(lambda a: a.pop("fingerprint"))), REFUSED),
    "fingerprint_as_object": Case(edited(on_alert(lambda a: a.update(fingerprint={}))), REFUSED),
    "over_the_body_limit": Case(edited(lambda d: d.update(padding="x" * MAX_BODY_BYTES)), REFUSED),
    # huge groups: everything Alertmanager can send under max_alerts is stored; beyond it, an answer, not a failure
    "group_of_1000": Case(raw(body(*(spec(f"huge-{RUN}", i) for i in range(1000)))), STORED),
    "group_at_the_alert_limit": Case(raw(body(*(spec(f"limit-{RUN}", i) for i in range(MAX_ALERTS)))), STORED),
    "group_over_the_alert_limit": Case(raw(body(*(spec(f"over-{RUN}", i) for i in range(MAX_ALERTS + 1)))), HANDLED),
}


class Receiver:
    def __init__(self, platform: RunningPlatform, session: aiohttp.ClientSession) -> None:
        self.platform = platform
        self.session = session
        self.writer_ssl = platform.identity_ssl("alertmanager")  # the only identity that may post alerts
        self.reader_ssl = platform.identity_ssl("operator")  # the only one that may read them

    async def post(self, payload: bytes, content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
        async with self.session.post(
            self.platform.endpoints.incidents + "/alerts",
            data=payload,
            headers={"Content-Type": content_type},
            ssl=self.writer_ssl,
            timeout=aiohttp.ClientTimeout(total=60),
        ) as answer:
            text = await answer.text()
            try:
                document = json.loads(text)
            except ValueError:
                document = {"text": text[:200]}
            return answer.status, document

    async def incidents(self, service: str) -> list[dict[str, Any]]:
        async with self.session.get(
            self.platform.endpoints.incidents + "/incidents",
            params={"service": service},
            ssl=self.reader_ssl,
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
        ) as answer:
            assert answer.status == 200, await answer.text()
            return list((await answer.json())["incidents"])

    def pid(self) -> int:
        return int(self.platform.platform.supervisor.process("incidents")["pid"])


@pytest.fixture
async def receiver(local_platform: RunningPlatform) -> Any:
    async with aiohttp.ClientSession() as session:
        yield Receiver(local_platform, session)


@pytest.mark.parametrize("name", list(CORPUS))
async def test_corpus_is_answered_never_failed(receiver: Receiver, name: str) -> None:
    case = CORPUS[name]
    pid = receiver.pid()
    status, document = await receiver.post(case.payload, case.content_type)
    assert status in case.expected, (name, status, document)
    if status >= 400:
        assert "error" in document, document
    assert receiver.pid() == pid, "the receiver was restarted"


async def test_duplicates_make_one_incident(receiver: Receiver) -> None:
    service = f"dup-{RUN}"
    notification = raw(body(spec(service), spec(service, 1)))
    first, stored = await receiver.post(notification)
    assert (first, stored["alerts_new"]) == (200, 2), stored
    again = await asyncio.gather(*(receiver.post(notification) for _ in range(20)))
    assert [status for status, _ in again] == [200] * 20
    assert all(answer["alerts_new"] == 0 and answer["alerts_deduplicated"] == 2 for _, answer in again), again
    (incident,) = await receiver.incidents(service)
    assert (incident["status"], incident["alerts_total"]) == ("firing", 2)


async def test_resolve_only_is_stored_resolved(receiver: Receiver) -> None:
    service = f"resolve-{RUN}"
    status, answer = await receiver.post(raw(body(spec(service, resolved=True))))
    assert status == 200, answer
    (incident,) = await receiver.incidents(service)
    assert incident["status"] == "resolved"


async def test_the_receiver_still_serves_after_the_corpus(receiver: Receiver) -> None:
    pid = receiver.pid()
    # The whole corpus again, all at once this time.
    answers = await asyncio.gather(*(receiver.post(case.payload, case.content_type) for case in CORPUS.values()))
    server_errors = {name: status for name, (status, _) in zip(CORPUS, answers, strict=True) if status >= 500}
    assert server_errors == {}
    service = f"after-{RUN}"
    status, answer = await receiver.post(raw(body(spec(service))))
    assert status == 200, answer
    assert len(await receiver.incidents(service)) == 1
    assert receiver.pid() == pid
