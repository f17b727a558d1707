"""Read an Alertmanager webhook body (version "4") into a ``Notification``, or say what is wrong.

Every problem raises ``InvalidPayload`` naming the field (``alerts[3].startsAt``), which the HTTP
boundary answers with a 400. Limits, so that one notification cannot flood the store:

- label and annotation *names*: at most ``MAX_NAME_CHARS`` characters (longer is a 400);
- label and annotation *values*: at most ``MAX_VALUE_CHARS`` characters; longer values are
  accepted but cut to that length and end with ``TRUNCATION_MARK`` (the response counts them);
- at most ``MAX_PAIRS`` labels (and as many annotations) per object, ``MAX_ALERTS`` alerts;
- the whole body is at most ``MAX_BODY_BYTES`` (checked by aiohttp before this module: a 413).

The last two are sized from what Alertmanager sends, because it drops a notification answered
with a 4xx (it retries only 5xx and network errors). Its webhook config sets ``max_alerts`` to
``MAX_ALERTS`` (scripts/monitoring/alertmanager_config.py): a bigger group arrives as its first
``MAX_ALERTS`` alerts, with ``truncatedAlerts`` counting the rest (kept on the incident). The body
limit has room for that many alerts of ``ALERT_BUDGET_BYTES`` each (Firedrill's own alerts are
under 2 KiB as JSON) plus ``ENVELOPE_BUDGET_BYTES`` for the group's labels and annotations.

Unicode is kept as sent (any code point JSON allows); unpaired surrogates are refused because
they cannot be stored as UTF-8.
"""

from __future__ import annotations

import json
from typing import Any

from services.incidents.errors import InvalidPayload
from services.incidents.models import Alert, BadTimestamp, Notification, Status, parse_time

SUPPORTED_VERSION = "4"
MAX_ALERTS = 1_000
ALERT_BUDGET_BYTES = 8 * 1024
ENVELOPE_BUDGET_BYTES = 1024 * 1024
MAX_BODY_BYTES = MAX_ALERTS * ALERT_BUDGET_BYTES + ENVELOPE_BUDGET_BYTES
MAX_PAIRS = 128
MAX_NAME_CHARS = 256
MAX_VALUE_CHARS = 4_096
MAX_TEXT_CHARS = 4_096  # receiver, groupKey, externalURL, generatorURL
MAX_FINGERPRINT_CHARS = 128
TRUNCATION_MARK = "…[truncated]"

_STATUSES = {s.value: s for s in Status}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every body: json.loads given any option builds a decoder (and its scanner) per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidPayload("body", "empty body; expected an Alertmanager webhook JSON object")
    try:
        # What json.loads does with bytes: UTF-8, -16 or -32 as detected, surrogates passed through.
        body = _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except UnicodeDecodeError:
        raise InvalidPayload("body", "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InvalidPayload("body", f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:
        raise InvalidPayload("body", str(exc)) from None
    except RecursionError:
        raise InvalidPayload("body", "JSON nested too deeply") from None
    if not isinstance(body, dict):
        raise InvalidPayload("body", f"must be a JSON object, got {_type_name(body)}")
    return body


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class _Reader:
    """Field access with paths in the errors, counting shortened values."""

    def __init__(self, *, check_surrogates: bool = True) -> None:
        self.truncated = 0
        self._check_surrogates = check_surrogates

    def text(self, obj: dict[str, Any], key: str, path: str, *, required: bool, limit: int = MAX_TEXT_CHARS) -> str:
        field = f"{path}{key}"
        if key not in obj or obj[key] is None:
            if required:
                raise InvalidPayload(field, "is required")
            return ""
        value = obj[key]
        if not isinstance(value, str):
            raise InvalidPayload(field, f"must be a string, got {_type_name(value)}")
        if self._check_surrogates:
            _check_encodable(value, field)
        if len(value) > limit:
            raise InvalidPayload(field, f"longer than {limit} characters")
        return value

    def pairs(self, obj: dict[str, Any], key: str, path: str, *, required: bool) -> dict[str, str]:
        field = f"{path}{key}"
        if key not in obj or obj[key] is None:
            if required:
                raise InvalidPayload(field, "is required")
            return {}
        value = obj[key]
        if not isinstance(value, dict):
            raise InvalidPayload(field, f"must be an object of string values, got {_type_name(value)}")
        if len(value) > MAX_PAIRS:
            raise InvalidPayload(field, f"more than {MAX_PAIRS} entries")
        result: dict[str, str] = {}
        for name, item in value.items():
            if not name or len(name) > MAX_NAME_CHARS:
                raise InvalidPayload(field, f"names must be 1 to {MAX_NAME_CHARS} characters")
            if not isinstance(item, str):
                raise InvalidPayload(f"{field}.{name[:64]}", f"must be a string, got {_type_name(item)}")
            if self._check_surrogates:
                _check_encodable(name, field)
                _check_encodable(item, f"{field}.{name[:64]}")
            if len(item) > MAX_VALUE_CHARS:
                item = item[: MAX_VALUE_CHARS - len(TRUNCATION_MARK)] + TRUNCATION_MARK
                self.truncated += 1
            result[name] = item
        return result


def _check_encodable(value: str, field: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPayload(field, "contains an unpaired surrogate (not storable as UTF-8)") from None


def _status(obj: dict[str, Any], path: str) -> Status:
    field = f"{path}status"
    value = obj.get("status")
    if value is None:
        raise InvalidPayload(field, "is required")
    if not isinstance(value, str) or value not in _STATUSES:
        raise InvalidPayload(field, 'must be "firing" or "resolved"')
    return _STATUSES[value]


def _time(reader: _Reader, obj: dict[str, Any], key: str, path: str, *, required: bool) -> int | None:
    text = reader.text(obj, key, path, required=required, limit=64)
    if not text:
        if required:
            raise InvalidPayload(f"{path}{key}", "must not be empty")
        return None
    try:
        value = parse_time(text)
    except BadTimestamp as exc:
        raise InvalidPayload(f"{path}{key}", f"{exc} (got {text!r})") from None
    if value is None and required:
        raise InvalidPayload(f"{path}{key}", "must be a real time, not the zero time")
    return value


def _alert(reader: _Reader, raw: object, index: int) -> Alert:
    path = f"alerts[{index}]."
    if not isinstance(raw, dict):
        raise InvalidPayload(f"alerts[{index}]", f"must be an object, got {_type_name(raw)}")
    status = _status(raw, path)
    labels = reader.pairs(raw, "labels", path, required=True)
    if not labels:
        raise InvalidPayload(f"{path}labels", "must not be empty")
    fingerprint = reader.text(raw, "fingerprint", path, required=True, limit=MAX_FINGERPRINT_CHARS)
    if not fingerprint:
        raise InvalidPayload(f"{path}fingerprint", "must not be empty")
    starts_at = _time(reader, raw, "startsAt", path, required=True)
    assert starts_at is not None
    ends_at = _time(reader, raw, "endsAt", path, required=False)
    if ends_at is not None and ends_at < starts_at:
        ends_at = starts_at  # clock skew between Prometheus replicas; never a negative duration
    return Alert(
        fingerprint=fingerprint,
        status=status,
        starts_at_ns=starts_at,
        ends_at_ns=ends_at if status is Status.RESOLVED else None,
        labels=labels,
        annotations=reader.pairs(raw, "annotations", path, required=False),
        generator_url=reader.text(raw, "generatorURL", path, required=False) or None,
    )


def validate(body: dict[str, Any], *, check_surrogates: bool = True) -> Notification:
    reader = _Reader(check_surrogates=check_surrogates)
    version = body.get("version")
    if version is not None and version != SUPPORTED_VERSION:
        raise InvalidPayload("version", f'unsupported webhook version {str(version)[:16]!r}; expected "4"')
    status = _status(body, "")
    receiver = reader.text(body, "receiver", "", required=True)
    group_key = reader.text(body, "groupKey", "", required=True)
    if not group_key:
        raise InvalidPayload("groupKey", "must not be empty")
    if "alerts" not in body or body["alerts"] is None:
        raise InvalidPayload("alerts", "is required")
    raw_alerts = body["alerts"]
    if not isinstance(raw_alerts, list):
        raise InvalidPayload("alerts", f"must be an array, got {_type_name(raw_alerts)}")
    if not raw_alerts:
        raise InvalidPayload("alerts", "must not be empty")
    if len(raw_alerts) > MAX_ALERTS:
        raise InvalidPayload(
            "alerts", f"more than {MAX_ALERTS} alerts in one notification (Alertmanager's max_alerts is {MAX_ALERTS})"
        )
    truncated_alerts = body.get("truncatedAlerts", 0)
    if truncated_alerts is None:
        truncated_alerts = 0
    if isinstance(truncated_alerts, bool) or not isinstance(truncated_alerts, int) or truncated_alerts < 0:
        raise InvalidPayload("truncatedAlerts", "must be a non-negative integer")
    alerts = tuple(_alert(reader, raw, index) for index, raw in enumerate(raw_alerts))
    group_labels = reader.pairs(body, "groupLabels", "", required=False)
    common_labels = reader.pairs(body, "commonLabels", "", required=False)
    common_annotations = reader.pairs(body, "commonAnnotations", "", required=False)
    external_url = reader.text(body, "externalURL", "", required=False) or None
    return Notification(
        receiver=receiver,
        status=status,
        group_key=group_key,
        alerts=alerts,
        group_labels=group_labels,
        common_labels=common_labels,
        common_annotations=common_annotations,
        external_url=external_url,
        truncated_alerts=truncated_alerts,
        truncated_values=reader.truncated,
    )


def parse_notification(raw: bytes) -> Notification:
    """Bytes of a webhook body to a validated notification; ``InvalidPayload`` otherwise."""
    return validate(parse_body(raw), check_surrogates=not _surrogate_free(raw))


def _surrogate_free(raw: bytes) -> bool:
    """True when no string JSON decodes from ``raw`` can hold a surrogate, so the per-string check
    can be skipped: ASCII bytes (a surrogate is non-ASCII in UTF-8, which json reads with
    surrogatepass, and in UTF-16/32), no NUL byte (UTF-16/32 text has them), and no ``\\u`` escape."""
    return raw.isascii() and b"\\u" not in raw and b"\x00" not in raw
