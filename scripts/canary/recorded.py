"""Prometheus answers recorded to a file, and played back to the analysis (the unit tests' fixtures).

A recording holds, for every check of the templates, the exact query sent for the canary and for
stable and the ``data`` Prometheus answered, with when and how the series were produced. Playing it
back answers the same queries with the same data; a query the recording does not hold (a template
whose query changed since) is an error that says to record again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class NotRecorded(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Recording:
    path: Path
    document: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Recording:
        return cls(path, json.loads(path.read_text(encoding="utf-8")))

    @property
    def at(self) -> float:
        return float(self.document["at"])

    @property
    def service(self) -> str:
        return str(self.document["service"])

    @property
    def stable_version(self) -> str:
        return str(self.document["stable_version"])

    @property
    def canary_version(self) -> str:
        return str(self.document["canary_version"])

    @property
    def window_s(self) -> int:
        return int(self.document["window_s"])

    def answers(self) -> RecordedAnswers:
        by_query: dict[str, dict[str, Any]] = {}
        for check in self.document["checks"].values():
            for role in ("canary", "stable"):
                by_query[check[role]["query"]] = check[role]["data"]
        return RecordedAnswers(self.path, by_query)


@dataclass(frozen=True, slots=True)
class RecordedAnswers:
    """Implements measure.PrometheusAnswers from a recording (the evaluation time is the recording's)."""

    path: Path
    by_query: dict[str, dict[str, Any]]

    def _data(self, expr: str) -> dict[str, Any]:
        try:
            return self.by_query[expr]
        except KeyError:
            raise NotRecorded(
                f"{self.path} holds no answer to this query (did a template change? record again with "
                f"`python -m scripts.canary.capture`):\n{expr}"
            ) from None

    def instant(self, expr: str, at: float) -> dict[str, Any]:
        return self._data(expr)

    def range(self, expr: str, start: float, end: float, step_s: float) -> dict[str, Any]:
        return self._data(expr)
