"""The drill report page, rendered from a drill recorded on the local platform (tests/fixtures)."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC
from pathlib import Path

import pytest

from scripts.drills.charts import render_chart
from scripts.drills.events import drill_events, outage_span
from scripts.drills.page import main as page_main
from scripts.drills.page import render_page
from scripts.drills.recording import Recording, Series, load

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "drill_recording.json"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def recording() -> Recording:
    return load(FIXTURE)


def _svg(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 (the renderer's own output, not untrusted input)


def _svgs(page: str) -> list[ET.Element]:
    return [_svg(chunk) for chunk in re.findall(r"<svg .*?</svg>", page, re.DOTALL)]


def _event_lines(svg: ET.Element) -> dict[str, float]:
    labels = [t for t in svg.iter(f"{SVG}text") if t.get("class") == "event-label"]
    lines = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "event-line"]
    return {(label.text or ""): float(line.get("x1", "nan")) for label, line in zip(labels, lines, strict=True)}


def test_the_recording_reads_back_as_it_was_saved(recording: Recording) -> None:
    saved = json.loads(FIXTURE.read_text())
    assert json.loads(json.dumps(recording.to_json())) == saved
    assert recording.result.passed


def test_the_page_is_self_contained(recording: Recording) -> None:
    page = render_page(recording, UTC)
    assert "<script" not in page
    assert "<link" not in page
    assert "src=" not in page
    assert "url(http" not in page
    assert "@import" not in page
    external = set(re.findall(r'href="(http[^"]*)"', page))
    incident = recording.result.incident or {}
    assert external == {incident["runbook_url"], incident["dashboard_url"]}, "only the incident's links leave the page"


def test_every_chart_labels_every_event_with_its_line(recording: Recording) -> None:
    page = render_page(recording, UTC)
    svgs = _svgs(page)
    assert len(svgs) == 3
    expected = {event.label for event in drill_events(recording.result.moments, "response")}
    assert {"traffic starts", "response stopped", "alert firing +4.3 s", "response restarted +5.4 s"} <= expected
    for svg in svgs:
        lines = _event_lines(svg)
        assert set(lines) == expected
        assert lines["traffic starts"] < lines["response stopped"] < lines["alert firing +4.3 s"]


def test_the_outage_is_shaded_from_the_stop_to_the_restart(recording: Recording) -> None:
    for svg in _svgs(render_page(recording, UTC)):
        lines = _event_lines(svg)
        (outage,) = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "outage"]
        left = float(outage.get("x", "nan"))
        assert left == pytest.approx(lines["response stopped"], abs=0.1)
        assert left + float(outage.get("width", "nan")) == pytest.approx(lines["response restarted +5.4 s"], abs=0.1)
        hatched = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "rate-window"]
        assert len(hatched) == 3, "the rate window after traffic starts, the stop and the restart"


def test_axes_have_wall_clock_ticks_and_value_ticks(recording: Recording) -> None:
    request_rate = _svgs(render_page(recording, UTC))[0]
    ticks = [t.text or "" for t in request_rate.iter(f"{SVG}text") if t.get("class") == "tick-label"]
    times = [t for t in ticks if re.fullmatch(r"\d\d:\d\d:\d\d", t)]
    values = [t for t in ticks if t not in times]
    assert len(times) >= 5
    assert times == sorted(times)
    assert values == ["0", "5", "10", "15", "20"], "traffic ran at 20 req/s"
    grid = [line for line in request_rate.iter(f"{SVG}line") if line.get("class") == "grid"]
    assert len(grid) == len(ticks)


def test_a_series_with_gaps_is_drawn_in_pieces_and_an_empty_one_says_why(recording: Recording) -> None:
    series = recording.series[2]
    gapped = replace(series, points=[(t, math.nan if 10 <= i < 14 else v) for i, (t, v) in enumerate(series.points)])
    svg = _svg(render_chart(gapped, recording.window, [], None, UTC, "c"))
    assert len([p for p in svg.iter(f"{SVG}polyline") if p.get("class") == "series"]) == 2

    empty = Series(series.query, [], "query failed: cannot reach Prometheus")
    svg = _svg(render_chart(empty, recording.window, [], None, UTC, "c"))
    assert [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "no-data"] == [
        "query failed: cannot reach Prometheus"
    ]


def test_the_incident_is_a_card_with_links_and_the_raw_record_folded(recording: Recording) -> None:
    page = render_page(recording, UTC)
    incident = recording.result.incident or {}
    card = page[page.index('<section class="incident">') : page.index("<details>")]
    assert "resolved" in card
    assert "response is down" in card
    assert "2026-12-02 09:24:35.825 UTC" in card
    assert "3.0 s" in card
    assert "No instance of response answers" in card
    assert f'<a href="{incident["runbook_url"]}"' in card
    assert f'<a href="{incident["dashboard_url"]}"' in card
    assert "{" not in card, "no JSON in the card itself"
    assert "a64bcffd7bba74890f7821b33560ca7b</code> (no span of it was recorded in the drill window)" in card
    details = page[page.index("<details>") : page.index("</details>")]
    assert "<details open" not in page
    assert json.loads(re.sub(r"<.*?>", "", details.split("<pre>")[1]).replace("&quot;", '"')) == incident


def test_trace_ids_link_to_jaeger_when_the_platform_has_it(recording: Recording) -> None:
    with_jaeger = replace(recording, jaeger_url="http://jaeger.service.consul:16686")
    page = render_page(with_jaeger, UTC)
    exemplar = (recording.result.incident or {})["enrichment"]["exemplar_trace_id"]
    assert f'href="http://jaeger.service.consul:16686/trace/{exemplar}"' in page
    for trace in recording.traces:
        assert f'href="http://jaeger.service.consul:16686/trace/{trace.trace_id}"' in page


def test_the_waterfalls_show_the_failing_and_the_slowest_traces(recording: Recording) -> None:
    page = render_page(recording, UTC)
    articles = re.findall(r'<article class="trace" id="trace-([0-9a-f]{32})">(.*?)</article>', page, re.DOTALL)
    assert [tid for tid, _ in articles] == [t.trace_id for t in recording.traces]
    reasons = [t.reason for t in recording.traces]
    assert reasons == ["failing"] * 3 + ["slowest"] * 3
    for _, body in articles[:3]:
        assert "HTTP 503" in body
    for _, body in articles[3:]:
        assert "response</b> GET /response" in body, "a slow success shows the hop to response"


def test_the_page_command_renders_a_saved_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert page_main([str(FIXTURE), "-o", str(out)]) == 0
    assert out.read_text().startswith("<!doctype html>")
    assert str(out) in capsys.readouterr().out


def test_a_drill_that_stopped_nothing_shades_nothing(recording: Recording) -> None:
    moments = {k: v for k, v in recording.result.moments.items() if k not in ("stopped", "restarted")}
    assert outage_span(moments) is None
    events = drill_events(moments, "response")
    svg = _svg(render_chart(recording.series[0], recording.window, events, None, UTC, "c"))
    assert not [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "outage"]
    assert len([r for r in svg.iter(f"{SVG}rect") if r.get("class") == "rate-window"]) == 1, "after traffic starts"
