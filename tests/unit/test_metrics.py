"""The shared metric pieces: build_info, the /metrics endpoint, reading a scrape back."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter, generate_latest

from services.common.metrics import build_info, scraped_value
from services.common.web import create_base_app, create_ops_app
from tests.unit.helpers import service_config


def test_build_info_carries_the_package_version() -> None:
    registry = CollectorRegistry()
    build_info("hello", registry=registry)
    labels = {"service": "hello", "version": metadata.version("firedrill")}
    assert registry.get_sample_value("firedrill_build_info", labels) == 1
    assert 'firedrill_build_info{service="hello",version=' in generate_latest(registry).decode()


def test_build_info_takes_an_explicit_version() -> None:
    registry = CollectorRegistry()
    build_info("movie", "1.2.3", registry)
    assert registry.get_sample_value("firedrill_build_info", {"service": "movie", "version": "1.2.3"}) == 1


def test_scraped_value_matches_name_and_labels() -> None:
    registry = CollectorRegistry()
    requests = Counter("demo_requests_total", "Requests.", ["service", "status"], registry=registry)
    requests.labels("hello", "200").inc(3)
    requests.labels("hello", "500").inc()
    text = generate_latest(registry).decode()
    assert scraped_value(text, "demo_requests_total", {"status": "500"}) == 1
    assert scraped_value(text, "demo_requests_total", {"service": "hello", "status": "200"}) == 3
    assert scraped_value(text, "demo_requests_total", {"status": "404"}) is None
    assert scraped_value(text, "demo_requests") is None
    assert scraped_value(text, "demo_requests_total") == 3


async def test_metrics_endpoint_negotiates_the_format_and_does_not_compress(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    build_info("hello", "1.0", registry)
    apps = (
        # A service without an ops port serves /metrics on its own listener.
        create_base_app(service_config("hello", tmp_path, metrics_port=None), tracer_provider=None, registry=registry),
        create_ops_app("hello", registry),
    )
    for app in apps:
        async with TestClient(TestServer(app)) as http:
            plain = await http.get("/metrics", headers={"Accept-Encoding": "gzip"})
            assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "Content-Encoding" not in plain.headers
            assert scraped_value(await plain.text(), "firedrill_build_info", {"service": "hello"}) == 1
            open_metrics = await http.get("/metrics", headers={"Accept": "application/openmetrics-text"})
            assert open_metrics.headers["Content-Type"].startswith("application/openmetrics-text")
            assert (await open_metrics.text()).endswith("# EOF\n")


async def test_metrics_are_served_on_the_ops_port_only(tmp_path: Path) -> None:
    """hello's and movie's HTTP listeners are public edges: /metrics stays on the loopback ops port."""
    registry = CollectorRegistry()
    build_info("hello", "1.0", registry)
    config = service_config("hello", tmp_path)
    assert config.metrics_port is not None
    async with TestClient(TestServer(create_base_app(config, tracer_provider=None, registry=registry))) as http:
        assert (await http.get("/metrics")).status == 404
        assert (await http.get("/health")).status == 200
    async with TestClient(TestServer(create_ops_app("hello", registry))) as ops:
        answer = await ops.get("/metrics")
        assert scraped_value(await answer.text(), "firedrill_build_info", {"service": "hello"}) == 1
