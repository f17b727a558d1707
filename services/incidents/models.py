"""The Alertmanager notification as validated data, and the timestamps it carries.

Times are kept as integer nanoseconds since the Unix epoch (UTC): Alertmanager sends RFC 3339
with nanoseconds, and episodes are ordered by comparing times exactly, whatever offset the sender
wrote. (An alert is not *identified* by its startsAt: see services/incidents/store.py.)
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

NS_PER_S = 1_000_000_000
# Go's zero time: Alertmanager's "not set" for endsAt.
_ZERO_YEAR = 1
_MIN_YEAR = 1970
_MAX_YEAR = 2200  # int64 nanoseconds run out in 2262

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,12}))?([Zz]|[+-]\d{2}:\d{2})$",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Status(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


SEVERITY_RANK: Mapping[str, int] = {"info": 1, "warning": 2, "critical": 3}
RANK_SEVERITY: Mapping[int, str] = {rank: name for name, rank in SEVERITY_RANK.items()}


class BadTimestamp(ValueError):
    pass


@functools.lru_cache(maxsize=4096)  # a group's notifications repeat its alerts' times
def parse_time(text: str) -> int | None:
    """RFC 3339 text to epoch nanoseconds; None for Go's zero time (year 1)."""
    match = _RFC3339.match(text)
    if match is None:
        raise BadTimestamp("expected an RFC 3339 time such as 2024-05-01T12:00:00Z")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction, zone = match.group(7) or "", match.group(8)
    if year == _ZERO_YEAR:
        return None
    if not _MIN_YEAR - 1 <= year <= _MAX_YEAR:
        raise BadTimestamp(f"year must be between {_MIN_YEAR} and {_MAX_YEAR}")
    try:
        moment = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except ValueError as exc:
        raise BadTimestamp(str(exc)) from None
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise BadTimestamp("bad UTC offset")
        moment -= sign * timedelta(hours=hours, minutes=minutes)
    delta = moment - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds + (1 if second == 60 else 0)
    nanos = int((fraction + "000000000")[:9])
    value = seconds * NS_PER_S + nanos
    if value < 0:
        raise BadTimestamp(f"times before {_MIN_YEAR} are not accepted")
    return value


def format_time(ns: int | None) -> str | None:
    """Epoch nanoseconds to RFC 3339 UTC, with as many fraction digits as needed."""
    if ns is None:
        return None
    seconds, nanos = divmod(ns, NS_PER_S)
    text = _format_second(seconds)
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


@functools.lru_cache(maxsize=4096)
def _format_second(seconds: int) -> str:
    # Every incident document formats 4 times per alert and 5 of its own, and the times of one
    # burst share their seconds: cached, and time.gmtime, which is cheaper than datetime.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


@dataclass(frozen=True, slots=True)
class Alert:
    fingerprint: str
    status: Status
    starts_at_ns: int
    # Only kept for resolved alerts: a firing alert's endsAt is Alertmanager's timeout guess.
    ends_at_ns: int | None
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str | None

    @property
    def severity_rank(self) -> int:
        return SEVERITY_RANK.get(self.labels.get("severity", ""), 0)


@dataclass(frozen=True, slots=True)
class Notification:
    receiver: str
    status: Status
    group_key: str
    alerts: tuple[Alert, ...]
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str | None
    truncated_alerts: int
    # Limits applied while reading (values shortened); reported back to the sender.
    truncated_values: int = 0

    def label(self, name: str) -> str | None:
        """A label shared by the group: common labels, then group labels, then the first alert's."""
        for source in (self.common_labels, self.group_labels):
            if name in source:
                return source[name]
        return self.alerts[0].labels.get(name) if self.alerts else None

    def annotation(self, name: str) -> str | None:
        if name in self.common_annotations:
            return self.common_annotations[name]
        for alert in self.alerts:
            if name in alert.annotations:
                return alert.annotations[name]
        return None
