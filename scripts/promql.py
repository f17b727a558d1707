"""A small Prometheus HTTP API client for drills, demos and tests."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


class PrometheusError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Sample:
    labels: dict[str, str]
    value: float


class Prometheus:
    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self._timeout_s) as answer:  # noqa: S310 (operator-given URL)
                body = json.load(answer)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise PrometheusError(f"{path} answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.base_url}: {exc}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{path}: {body.get('error', body)}")
        return body["data"]

    def query_data(self, expr: str, at: float | None = None) -> dict[str, Any]:
        """The API's ``data`` of an instant query as Prometheus answered it (``at``: evaluation time)."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        return dict(self._get("/api/v1/query", params))

    def range_data(self, expr: str, start: float, end: float, step_s: float) -> dict[str, Any]:
        """The API's ``data`` of a range query as Prometheus answered it."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s}"}
        return dict(self._get("/api/v1/query_range", params))

    def query(self, expr: str) -> list[Sample]:
        data = self._get("/api/v1/query", {"query": expr})
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        return [Sample(item["metric"], float(item["value"][1])) for item in data["result"]]

    def value(self, expr: str) -> float | None:
        """The single value of an expression, or None when it has no (finite) result."""
        samples = self.query(expr)
        if not samples or math.isnan(samples[0].value):
            return None
        return samples[0].value

    def range(
        self, expr: str, start: float, end: float, step_s: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        data = self._get(
            "/api/v1/query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s}"}
        )
        return [(item["metric"], [(float(t), float(v)) for t, v in item["values"]]) for item in data["result"]]

    def alerts(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/alerts", {})["alerts"])

    def firing_alerts(self) -> list[dict[str, str]]:
        """Labels of the alerts firing now (the rules' live state, not pending ones)."""
        return [alert["labels"] for alert in self.alerts() if alert.get("state") == "firing"]

    def targets(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/targets", {"state": "active"})["activeTargets"])
