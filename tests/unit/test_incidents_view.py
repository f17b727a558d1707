"""The incidents view in-process: real incidents from a receiver, read by the view over HTTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from scripts.deploy_target.interface import Endpoints
from scripts.incidents_view import pages
from scripts.incidents_view.links import CLASSIC_GRAPH, GRAPH, LinkTargets, expr_of, graph_url, safe_url, trace_url
from scripts.incidents_view.server import ViewConfig, create_view_app
from scripts.incidents_view.spans import read_trace
from scripts.local.__main__ import where_things_are
from tests.incidents_view import PROMETHEUS, TRACE_ID, Stack, incidents_behind_a_view, write_spans


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with incidents_behind_a_view(tmp_path) as running:
        yield running


async def fetch(url: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
        return answer.status, await answer.text(), dict(answer.headers)


def hrefs(page: str) -> list[str]:
    return [href.replace("&amp;", "&") for href in re.findall(r'href="([^"]*)"', page)]


# -- links ----------------------------------------------------------------------------------------


def test_only_http_urls_are_linked() -> None:
    assert safe_url("https://runbooks.example/x") == "https://runbooks.example/x"
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("data:text/html,hi") is None
    assert safe_url("//evil.example/x") is None
    assert safe_url(None) is None


def test_the_graph_link_runs_the_alerts_expression_on_the_known_prometheus_over_the_incident() -> None:
    generator = "http://some-host:9090/graph?g0.expr=up%7Bservice%3D%22response%22%7D+%3D%3D+0&g0.tab=1"
    assert expr_of(generator) == 'up{service="response"} == 0'
    local = graph_url(LinkTargets(PROMETHEUS), generator, None, "2024-05-01T12:00:00Z", "2024-05-01T12:01:35Z")
    assert local is not None
    parts = urlsplit(local)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == PROMETHEUS + CLASSIC_GRAPH
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "g0.expr": 'up{service="response"} == 0',
        "g0.tab": "0",
        "g0.range_input": "695s",  # 95 s of incident and 300 s either side
        "g0.end_input": "2024-05-01 12:06:35",
    }
    cluster = graph_url(LinkTargets("http://prom:9090", GRAPH), generator, None)
    assert cluster is not None
    assert cluster.startswith("http://prom:9090/graph?g0.expr=up%7B")


def test_without_a_known_prometheus_the_generator_url_is_linked_as_it_came() -> None:
    generator = "http://some-host:9090/graph?g0.expr=up"
    assert graph_url(LinkTargets(None), generator, "ignored") == generator
    assert graph_url(LinkTargets(None), "javascript:x", None) is None
    assert graph_url(LinkTargets(PROMETHEUS), None, "vector(1)", now_s=0) is not None, "the enrichment's expr"
    assert graph_url(LinkTargets(PROMETHEUS), None, None) is None


def test_a_trace_links_to_jaeger_on_a_cluster_and_to_the_views_waterfall_locally() -> None:
    assert (
        trace_url(LinkTargets(None, jaeger="http://jaeger:16686/"), TRACE_ID) == f"http://jaeger:16686/trace/{TRACE_ID}"
    )
    assert trace_url(LinkTargets(None), TRACE_ID) == f"/traces/{TRACE_ID}"


def test_a_trace_is_read_from_every_span_file_skipping_broken_lines(tmp_path: Path) -> None:
    write_spans(tmp_path)
    trace = read_trace(tmp_path, TRACE_ID)
    assert trace is not None
    assert [span.service for span in trace.spans] == ["hello", "response"]
    assert trace.root.service == "hello"
    assert read_trace(tmp_path, "0" * 32) is None
    with pytest.raises(ValueError, match="32 lowercase hex"):
        read_trace(tmp_path, "../../etc/passwd")


def test_unsafe_values_are_escaped_and_not_linked() -> None:
    incident = {
        "id": 7,
        "status": "firing",
        "summary": "<script>alert(1)</script>",
        "runbook_url": "javascript:alert(1)",
        "alerts": [{"labels": {"alertname": "X", "x": "<b>"}, "status": "firing", "starts_at": "2024-05-01T12:00:00Z"}],
    }
    page = pages.incident_page(incident, LinkTargets(None), datetime.now(UTC))
    assert "<script>alert" not in page
    assert "&lt;script&gt;" in page
    assert 'href="javascript' not in page
    assert "x=&lt;b&gt;" in page


# -- the served pages -----------------------------------------------------------------------------


async def test_the_list_shows_status_duration_and_links_each_incident(stack: Stack) -> None:
    status, page, headers = await fetch(stack.view + "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer"
    rows = re.findall(r"<tr><td><a href=\"/incidents/(\d+)\">.*?</tr>", page, re.DOTALL)
    assert rows == ["2", "1"], "newest first (by start, then id)"
    resolved_row = page[page.index('href="/incidents/1"') :]
    assert "status-resolved" in resolved_row
    assert "1m35s" in resolved_row
    assert "firing for" in page
    assert "1 to 2 of 2" in page
    assert {"/incidents/1", "/incidents/2", "/?service=response", "/?status=firing"} <= set(hrefs(page))


async def test_the_list_filters_by_status_and_service(stack: Stack) -> None:
    _, firing, _ = await fetch(stack.view + "/?status=firing")
    assert 'href="/incidents/2"' in firing
    assert 'href="/incidents/1"' not in firing
    _, response, _ = await fetch(stack.view + "/?service=response")
    assert 'href="/incidents/1"' in response
    assert 'href="/incidents/2"' not in response
    _, paged, _ = await fetch(stack.view + "/?limit=1")
    assert "1 to 1 of 2" in paged
    assert "/?offset=1&limit=1" in hrefs(paged)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/?status=open", 400),
        ("/?limit=0", 400),
        ("/?offset=x", 400),
        ("/incidents/abc", 400),
        ("/incidents/0", 400),
        ("/incidents/99", 404),
        ("/traces/not-a-trace", 400),
        (f"/traces/{'0' * 32}", 404),
        ("/nowhere", 404),
    ],
)
async def test_bad_requests_get_a_clear_4xx_page(stack: Stack, path: str, status: int) -> None:
    answer_status, page, headers = await fetch(stack.view + path)
    assert answer_status == status
    assert headers["Content-Type"].startswith("text/html")
    assert f"<h1>{status}</h1>" in page


async def test_an_incident_shows_alerts_timeline_enrichment_and_its_links(stack: Stack) -> None:
    status, page, _ = await fetch(f"{stack.view}/incidents/{stack.resolved_id}")
    assert status == 200
    links = hrefs(page)
    assert "https://runbooks.example/service-down" in links
    assert "https://grafana.example/d/firedrill" in links
    graphs = [link for link in links if link.startswith(PROMETHEUS + CLASSIC_GRAPH)]
    assert len(graphs) == 3, "the incident's graph and one per alert"
    assert parse_qs(urlsplit(graphs[0]).query)["g0.expr"] == ['up{service="response"} == 0']
    assert f"/traces/{TRACE_ID}" in links
    assert "Alerts (2)" in page
    start = page.index('<table class="timeline">')
    timeline = page[start : page.index("</table>", start)]
    # The alerts are from 2024 and were posted now: they fired and resolved before the incident was recorded.
    assert timeline.index("fired") < timeline.index("incident resolved") < timeline.index("incident recorded")
    assert timeline.index("incident recorded") < timeline.index("enrichment done")
    assert timeline.count("ServiceDown (instance=10.0.0.") == 4, "each alert fires and resolves"
    assert "+1m35s" in timeline
    assert "Raw incident record" in page


async def test_the_exemplar_trace_opens_as_a_waterfall(stack: Stack) -> None:
    status, page, _ = await fetch(f"{stack.view}/traces/{TRACE_ID.upper()}")
    assert status == 200
    assert page.count('class="span-row error"') == 2
    assert "GET /response" in page


async def test_on_a_cluster_the_trace_links_to_jaeger(tmp_path: Path) -> None:
    async with incidents_behind_a_view(tmp_path, jaeger="http://jaeger.example:16686") as running:
        _, page, _ = await fetch(f"{running.view}/incidents/{running.resolved_id}")
    assert f"http://jaeger.example:16686/trace/{TRACE_ID}" in hrefs(page)


async def test_another_sites_host_name_is_refused(stack: Stack) -> None:
    """A page of another site whose name resolves to 127.0.0.1 (DNS rebinding) cannot read incidents."""
    status, page, _ = await fetch(stack.view + "/", Host="attacker.example")
    assert status == 421
    assert "ServiceDown" not in page
    ok, _, _ = await fetch(stack.view + "/", Host="localhost")
    assert ok == 200


async def test_the_view_only_reads(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session, session.post(stack.view + "/", data=b"{}") as answer:
        assert answer.status == 405


async def test_an_unreachable_receiver_is_a_502_page(tmp_path: Path) -> None:
    config = ViewConfig("http://127.0.0.1:9", LinkTargets(None), tmp_path)
    view = TestServer(create_view_app(config), host="127.0.0.1")
    await view.start_server()
    try:
        status, page, _ = await fetch(str(view.make_url("/")))
    finally:
        await view.close()
    assert status == 502
    assert "cannot read the incident receiver at http://127.0.0.1:9" in page


def test_make_up_prints_the_pages_that_work_with_debians_prometheus_and_alertmanager(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIREDRILL_PORT_OFFSET", "300")
    endpoints = Endpoints(services={}, prometheus="http://p:1", alertmanager="http://a:2", incidents="https://i:3")
    rows = dict(where_things_are(endpoints))
    assert rows["prometheus"] == "http://p:1/classic/graph"
    assert "no web UI" in rows["alertmanager"]
    assert rows["incidents view"] == "run `make incidents-ui`, then open http://127.0.0.1:5380/"
    assert "amtool alert query --alertmanager.url=http://a:2" in " ".join(v for _, v in where_things_are(endpoints))


def test_a_drill_incident_of_seconds_reads_in_seconds() -> None:
    incident = {"id": 3, "status": "resolved", "duration_seconds": 2.04, "started_at": "2024-05-01T12:00:00Z"}
    answer = {"incidents": [incident], "total": 1, "limit": 50, "offset": 0}
    assert "<td>2.0 s</td>" in pages.list_page(answer, None, None, datetime.now(UTC))
