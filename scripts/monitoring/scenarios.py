"""Input series for the generated promtool tests, shaped like what the services really expose."""

from __future__ import annotations

from services.common import catalog
from services.common.catalog import Protocol

from .model import Series, Signal, counter, gauge
from .recording import HEALTH_JOB, JOB

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def selector(metric: str, **labels: str) -> str:
    body = ",".join(f'{key}="{value}"' for key, value in {"job": JOB, **labels}.items())
    return f"{metric}{{{body}}}"


def first_service(protocol: Protocol, *, exclude: tuple[str, ...] = ("incidents",)) -> str:
    """A representative catalog service of a protocol (tests run against real catalog names)."""
    for spec in catalog.SERVICES:
        if spec.protocol is protocol and spec.name not in exclude:
            return spec.name
    raise LookupError(f"the catalog has no {protocol} service")


def instance(service: str) -> str:
    """A test instance label; not the catalog port, so port changes do not churn the tests."""
    return f"{service}-1:metrics"


def up(service: str, healthy: Signal, faulty: Signal) -> Series:
    """``up`` of the health scrape, which the "down" alerts read."""
    return Series(selector("up", job=HEALTH_JOB, service=service, instance=instance(service)), healthy, faulty)


def all_up_except(service: str) -> tuple[Series, ...]:
    """Every other catalog service up throughout (so no absent() branch fires for them)."""
    return tuple(up(name, gauge(1), gauge(1)) for name in catalog.service_names() if name != service)


def gauge_series(metric: str, service: str, healthy: float, faulty: float, **labels: str) -> Series:
    return Series(selector(metric, service=service, **labels), gauge(healthy), gauge(faulty))


def http_requests(service: str, rps: float, faulty_error_ratio: float) -> tuple[Series, ...]:
    common = {"service": service, "instance": instance(service), "method": "GET", "path": f"/{service}"}
    return (
        Series(
            selector("http_requests_total", **common, status="200"),
            counter(rps),
            counter(rps * (1 - faulty_error_ratio)),
        ),
        Series(selector("http_requests_total", **common, status="500"), counter(0), counter(rps * faulty_error_ratio)),
    )


def grpc_requests(service: str, rps: float, faulty_error_ratio: float) -> tuple[Series, ...]:
    common = {
        "service": service,
        "instance": instance(service),
        "grpc_service": f"firedrill.{service}",
        "grpc_method": "Get",
        "grpc_type": "unary",
    }
    return (
        Series(
            selector("grpc_server_handled_total", **common, grpc_code="OK"),
            counter(rps),
            counter(rps * (1 - faulty_error_ratio)),
        ),
        Series(
            selector("grpc_server_handled_total", **common, grpc_code="Unavailable"),
            counter(0),
            counter(rps * faulty_error_ratio),
        ),
    )


def histogram(metric: str, labels: dict[str, str], rps: float, healthy_s: float, faulty_s: float) -> tuple[Series, ...]:
    """Cumulative buckets of a histogram whose observations all take ``healthy_s``, then ``faulty_s``."""
    out = []
    for le in (*(str(b) for b in LATENCY_BUCKETS), "+Inf"):
        bound = float(le)
        out.append(
            Series(
                selector(f"{metric}_bucket", **labels, le=le),
                counter(rps if healthy_s <= bound else 0),
                counter(rps if faulty_s <= bound else 0),
            )
        )
    return tuple(out)


def http_latency(service: str, rps: float, healthy_s: float, faulty_s: float) -> tuple[Series, ...]:
    labels = {"service": service, "instance": instance(service), "method": "GET", "path": f"/{service}"}
    return histogram("http_request_duration_seconds", labels, rps, healthy_s, faulty_s)


def grpc_latency(service: str, rps: float, healthy_s: float, faulty_s: float) -> tuple[Series, ...]:
    labels = {
        "service": service,
        "instance": instance(service),
        "grpc_service": f"firedrill.{service}",
        "grpc_method": "Get",
        "grpc_type": "unary",
    }
    return histogram("grpc_server_handling_seconds", labels, rps, healthy_s, faulty_s)
