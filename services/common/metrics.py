"""The Prometheus metric contract (docs/architecture.md, "Metric contract"), in one place.

Label children are created once per label combination and cached, so the hot path is a dict
lookup plus two increments. The registry is injectable: tests pass a fresh CollectorRegistry
and read ``get_sample_value``; a scraped /metrics text is read with ``scraped_value``.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.parser import text_string_to_metric_families

from services.common.config import package_version

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpServerMetrics:
    def __init__(self, service: str, registry: CollectorRegistry = REGISTRY) -> None:
        self._service = service
        self._requests = Counter(
            "http_requests_total",
            "HTTP requests served, by route template and status code.",
            ["service", "method", "path", "status"],
            registry=registry,
        )
        self._duration = Histogram(
            "http_request_duration_seconds",
            "Time to serve an HTTP request, by route template.",
            ["service", "method", "path"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight",
            "HTTP requests being served right now.",
            ["service"],
            registry=registry,
        ).labels(service)
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._histograms: dict[tuple[str, str], Histogram] = {}

    def declare(self, method: str, path: str, status: int = 500) -> None:
        """Export a route's error series at 0 before its first error: ``rate()`` ignores a series'
        first sample, so an error series born at 1 would hide the first failure of a new process
        (a canary's first 500s, a fresh instance's)."""
        self._counter(method, path, status)

    def _counter(self, method: str, path: str, status: int) -> Counter:
        counter = self._counters.get((method, path, status))
        if counter is None:
            counter = self._requests.labels(self._service, method, path, str(status))
            self._counters[(method, path, status)] = counter
        return counter

    def observe(self, method: str, path: str, status: int, seconds: float, trace_id: str | None = None) -> None:
        counter = self._counters.get((method, path, status))
        if counter is None:
            counter = self._counter(method, path, status)
        histogram = self._histograms.get((method, path))
        if histogram is None:
            histogram = self._duration.labels(self._service, method, path)
            self._histograms[(method, path)] = histogram
        counter.inc()
        histogram.observe(seconds, {"trace_id": trace_id} if trace_id else None)


class HttpClientMetrics:
    """Calls a service makes to its upstreams, so a caller's view of an outage is visible."""

    def __init__(self, service: str, registry: CollectorRegistry = REGISTRY) -> None:
        self._service = service
        self._requests = Counter(
            "http_client_requests_total",
            "HTTP calls to upstream services, by upstream and outcome.",
            ["service", "upstream", "outcome"],
            registry=registry,
        )
        self._children: dict[tuple[str, str], Counter] = {}

    def count(self, upstream: str, outcome: str) -> None:
        child = self._children.get((upstream, outcome))
        if child is None:
            child = self._requests.labels(self._service, upstream, outcome)
            self._children[(upstream, outcome)] = child
        child.inc()


def build_info(service: str, version: str | None = None, registry: CollectorRegistry = REGISTRY) -> None:
    """``firedrill_build_info{service, version} 1``; the version is the package's unless one is given."""
    Info("firedrill_build", "Always 1; labels say what runs.", ["service"], registry=registry).labels(service).info(
        {"version": version or package_version()}
    )


def scraped_value(exposition: str, name: str, labels: Mapping[str, str] | None = None) -> float | None:
    """The value of the first sample called ``name`` whose labels include ``labels``, in a /metrics text."""
    wanted = (labels or {}).items()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and wanted <= sample.labels.items():
                return float(sample.value)
    return None
