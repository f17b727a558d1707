"""The webhook body parser: every malformed case is its own 400 naming the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from services.common.http_errors import http_status
from services.incidents.errors import InvalidPayload
from services.incidents.models import NS_PER_S, BadTimestamp, Status, format_time, parse_time
from services.incidents.validation import MAX_VALUE_CHARS, TRUNCATION_MARK, parse_notification

T0 = 1_714_564_800 * NS_PER_S  # 2024-05-01T12:00:00Z


def valid() -> dict[str, Any]:
    return {
        "version": "4",
        "receiver": "incidents",
        "status": "firing",
        "groupKey": '{}:{alertname="ServiceDown"}',
        "groupLabels": {"alertname": "ServiceDown"},
        "commonLabels": {"alertname": "ServiceDown", "service": "response"},
        "commonAnnotations": {"summary": "response is down"},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "ServiceDown", "service": "response"},
                "annotations": {"summary": "response is down"},
                "startsAt": "2024-05-01T12:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0",
                "fingerprint": "a1b2c3",
            }
        ],
    }


def parse(body: object) -> Any:
    return parse_notification(json.dumps(body).encode())


def rejected(body: object) -> InvalidPayload:
    with pytest.raises(InvalidPayload) as caught:
        parse(body)
    return caught.value


def without(path: list[Any]) -> dict[str, Any]:
    body = valid()
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return body


def with_value(path: list[Any], value: object) -> dict[str, Any]:
    body = valid()
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


def test_a_valid_notification_is_read_whole() -> None:
    note = parse(valid())
    assert note.status is Status.FIRING
    assert note.group_key == '{}:{alertname="ServiceDown"}'
    (alert,) = note.alerts
    assert alert.fingerprint == "a1b2c3"
    assert alert.starts_at_ns == T0
    assert alert.ends_at_ns is None
    assert note.label("service") == "response"
    assert note.annotation("summary") == "response is down"


def test_body_that_is_not_json() -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse_notification(b"{not json")
    assert caught.value.field == "body"
    assert http_status(caught.value) == 400


def test_empty_body() -> None:
    with pytest.raises(InvalidPayload, match="empty"):
        parse_notification(b"")


def test_body_that_is_not_utf8() -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse_notification(b'{"a": "\xff\xfe"}')
    assert caught.value.field == "body"


def test_body_with_nan_is_refused() -> None:
    with pytest.raises(InvalidPayload, match="NaN"):
        parse_notification(b'{"truncatedAlerts": NaN}')


def test_deeply_nested_body_is_a_400_not_a_crash() -> None:
    with pytest.raises(InvalidPayload, match="nested"):
        parse_notification(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize("body", [[], "text", 42, None, True])
def test_body_that_is_not_an_object(body: object) -> None:
    assert "must be a JSON object" in rejected(body).message


def test_missing_alerts() -> None:
    assert rejected(without(["alerts"])).field == "alerts"


@pytest.mark.parametrize("value", [{"a": 1}, "alerts", 3])
def test_alerts_not_a_list(value: object) -> None:
    error = rejected(with_value(["alerts"], value))
    assert error.field == "alerts"
    assert "array" in error.message


def test_empty_alerts() -> None:
    assert rejected(with_value(["alerts"], [])).field == "alerts"


def test_alert_that_is_not_an_object() -> None:
    assert rejected(with_value(["alerts", 0], "x")).field == "alerts[0]"


@pytest.mark.parametrize("name", ["labels", "status", "startsAt", "fingerprint"])
def test_alert_missing_a_required_field(name: str) -> None:
    error = rejected(without(["alerts", 0, name]))
    assert error.field == f"alerts[0].{name}"
    assert "required" in error.message


def test_missing_status() -> None:
    assert rejected(without(["status"])).field == "status"


def test_missing_group_key() -> None:
    assert rejected(without(["groupKey"])).field == "groupKey"


def test_missing_receiver() -> None:
    assert rejected(without(["receiver"])).field == "receiver"


@pytest.mark.parametrize("status", ["pending", "FIRING", "", 1, None])
def test_bad_notification_status(status: object) -> None:
    assert rejected(with_value(["status"], status)).field == "status"


@pytest.mark.parametrize("status", ["active", "Resolved", 0, ["firing"]])
def test_bad_alert_status(status: object) -> None:
    assert rejected(with_value(["alerts", 0, "status"], status)).field == "alerts[0].status"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["alerts", 0, "labels"], ["a"], "alerts[0].labels"),
        (["alerts", 0, "labels"], "alertname=x", "alerts[0].labels"),
        (["alerts", 0, "labels", "severity"], 3, "alerts[0].labels.severity"),
        (["alerts", 0, "labels", "severity"], None, "alerts[0].labels.severity"),
        (["alerts", 0, "annotations"], "x", "alerts[0].annotations"),
        (["alerts", 0, "annotations", "summary"], {"x": 1}, "alerts[0].annotations.summary"),
        (["alerts", 0, "fingerprint"], 12345, "alerts[0].fingerprint"),
        (["alerts", 0, "startsAt"], 1714564800, "alerts[0].startsAt"),
        (["alerts", 0, "generatorURL"], False, "alerts[0].generatorURL"),
        (["groupKey"], {"a": "b"}, "groupKey"),
        (["receiver"], 7, "receiver"),
        (["commonLabels"], [], "commonLabels"),
        (["groupLabels"], "x", "groupLabels"),
        (["commonAnnotations", "summary"], 1.5, "commonAnnotations.summary"),
        (["externalURL"], 1, "externalURL"),
        (["truncatedAlerts"], -1, "truncatedAlerts"),
        (["truncatedAlerts"], "0", "truncatedAlerts"),
        (["truncatedAlerts"], True, "truncatedAlerts"),
        (["version"], "3", "version"),
    ],
)
def test_wrong_types(path: list[Any], value: object, field: str) -> None:
    assert rejected(with_value(path, value)).field == field


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2024-05-01",
        "2024-05-01T12:00:00",
        "2024-13-01T12:00:00Z",
        "2024-02-30T00:00:00Z",
        "1960-01-01T00:00:00Z",
        "2024-05-01T25:00:00Z",
        "2024-05-01T12:00:00+24:00",
        "",
    ],
)
def test_bad_timestamps(text: str) -> None:
    error = rejected(with_value(["alerts", 0, "startsAt"], text))
    assert error.field == "alerts[0].startsAt"


def test_bad_ends_at_is_named() -> None:
    assert rejected(with_value(["alerts", 0, "endsAt"], "soon")).field == "alerts[0].endsAt"


def test_zero_starts_at_is_refused() -> None:
    assert rejected(with_value(["alerts", 0, "startsAt"], "0001-01-01T00:00:00Z")).field == "alerts[0].startsAt"


def test_empty_labels_and_fingerprint_are_refused() -> None:
    assert rejected(with_value(["alerts", 0, "labels"], {})).field == "alerts[0].labels"
    assert rejected(with_value(["alerts", 0, "fingerprint"], "")).field == "alerts[0].fingerprint"


def test_errors_name_the_failing_alert_by_index() -> None:
    body = valid()
    second = copy.deepcopy(body["alerts"][0])
    second["startsAt"] = "not a time"
    body["alerts"].append(second)
    assert rejected(body).field == "alerts[1].startsAt"


def test_too_many_labels_are_refused() -> None:
    labels = {f"l{i}": "v" for i in range(200)}
    assert rejected(with_value(["alerts", 0, "labels"], labels)).field == "alerts[0].labels"


def test_over_long_label_names_are_refused() -> None:
    assert rejected(with_value(["alerts", 0, "labels"], {"n" * 300: "v"})).field == "alerts[0].labels"


def test_huge_label_values_are_accepted_but_truncated() -> None:
    body = with_value(["alerts", 0, "labels", "description"], "x" * 100_000)
    body["commonAnnotations"]["description"] = "y" * 10_000
    note = parse(body)
    value = note.alerts[0].labels["description"]
    assert len(value) == MAX_VALUE_CHARS
    assert value.endswith(TRUNCATION_MARK)
    assert len(note.common_annotations["description"]) == MAX_VALUE_CHARS
    assert note.truncated_values == 2


def test_unicode_is_kept_as_sent() -> None:
    labels = {"alertname": "Ünïcødé 🔥", "service": "réponse", "note": "日本語のラベル"}
    note = parse(with_value(["alerts", 0, "labels"], labels))
    assert note.alerts[0].labels == labels


def test_unpaired_surrogates_are_refused() -> None:
    raw = b'{"version":"4","receiver":"r","status":"firing","groupKey":"g","alerts":[{"status":"firing",' + (
        b'"labels":{"a":"\\ud800"},"startsAt":"2024-05-01T12:00:00Z","fingerprint":"f"}]}'
    )
    with pytest.raises(InvalidPayload) as caught:
        parse_notification(raw)
    assert caught.value.field == "alerts[0].labels.a"


@pytest.mark.parametrize(
    ("encoding", "surrogate"),
    [
        ("utf-8", b"\xed\xa0\x80"),  # raw bytes: json reads UTF-8 with surrogatepass
        ("utf-16-le", "\\udc00".encode("utf-16-le")),  # an escape whose backslash and u are NUL-separated
        ("utf-32-be", "\\ud83d".encode("utf-32-be")),
    ],
)
def test_unpaired_surrogates_are_refused_whatever_the_encoding(encoding: str, surrogate: bytes) -> None:
    head = '{"version":"4","receiver":"r","status":"firing","groupKey":"g","alerts":[{"status":"firing",'
    tail = '"startsAt":"2024-05-01T12:00:00Z","fingerprint":"f","labels":{"a":"'
    raw = (head + tail).encode(encoding) + surrogate + '"}}]}'.encode(encoding)
    with pytest.raises(InvalidPayload) as caught:
        parse_notification(raw)
    assert caught.value.field == "alerts[0].labels.a"


def test_optional_fields_may_be_absent_or_null() -> None:
    body = valid()
    for name in ("groupLabels", "commonLabels", "commonAnnotations", "externalURL", "truncatedAlerts", "version"):
        del body[name]
    body["alerts"][0]["annotations"] = None
    del body["alerts"][0]["endsAt"]
    del body["alerts"][0]["generatorURL"]
    note = parse(body)
    assert note.common_labels == {}
    assert note.alerts[0].annotations == {}
    assert note.alerts[0].generator_url is None


def test_a_resolved_alert_keeps_its_end_and_a_firing_one_does_not() -> None:
    body = valid()
    body["alerts"][0]["endsAt"] = "2024-05-01T12:10:00Z"
    assert parse(body).alerts[0].ends_at_ns is None
    body["alerts"][0]["status"] = "resolved"
    assert parse(body).alerts[0].ends_at_ns == T0 + 600 * NS_PER_S


def test_an_end_before_the_start_is_clamped_to_the_start() -> None:
    body = valid()
    body["alerts"][0].update(status="resolved", endsAt="2024-05-01T11:00:00Z")
    assert parse(body).alerts[0].ends_at_ns == T0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", T0),
        ("2024-05-01T14:00:00+02:00", T0),
        ("2024-05-01t07:30:00-04:30", T0),
        ("2024-05-01T12:00:00.5Z", T0 + NS_PER_S // 2),
        ("2024-05-01T12:00:00.123456789Z", T0 + 123_456_789),
        ("2024-05-01T12:00:00.123456789123Z", T0 + 123_456_789),
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_rfc3339_times_compare_exactly(text: str, expected: int | None) -> None:
    assert parse_time(text) == expected


def test_times_round_trip() -> None:
    for value in (T0, T0 + 1, T0 + 120_000_000):
        text = format_time(value)
        assert text is not None
        assert parse_time(text) == value
    assert format_time(T0) == "2024-05-01T12:00:00Z"
    assert format_time(0) == "1970-01-01T00:00:00Z"
    assert format_time(951_825_600 * NS_PER_S + 10) == "2000-02-29T12:00:00.00000001Z"  # a leap day
    assert format_time(7_258_118_399 * NS_PER_S + NS_PER_S - 1) == "2199-12-31T23:59:59.999999999Z"


def test_far_future_times_are_refused() -> None:
    with pytest.raises(BadTimestamp):
        parse_time("9999-01-01T00:00:00Z")
