"""The scorecard page of ``simulate-all`` as a person sees it: headless Chromium renders it, built from
recorded drills (an outage and the tracing-bug drill), so no platform is needed.

Needs Debian's ``chromium`` (installed by ``make setup``).
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from scripts.drills.recording import Recording, load
from scripts.drills.scorecard import render_scorecard_page
from scripts.drills.screenshot import Measurement, find_chromium, measure

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RECORDINGS = ("drill_recording.json", "drill_recording_tracing_bug.json")

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="chromium is not installed (Debian package `chromium`; run `make setup`)"
)


@pytest.fixture(scope="module")
def recordings() -> list[Recording]:
    return [load(FIXTURES / name) for name in RECORDINGS]


@pytest.fixture(scope="module")
def scorecard(tmp_path_factory: pytest.TempPathFactory, recordings: list[Recording]) -> Path:
    path = tmp_path_factory.mktemp("scorecard") / "scorecard.html"
    path.write_text(render_scorecard_page(recordings, UTC))
    return path


@pytest.fixture(scope="module", params=[1400, 820], ids=["wide", "narrow"])
def seen(request: pytest.FixtureRequest, scorecard: Path) -> Measurement:
    return measure(scorecard, width=request.param)


def test_one_section_per_drill(scorecard: Path, recordings: list[Recording]) -> None:
    page = scorecard.read_text()
    assert page.count('<section id="drill-') == len(recordings)
    for index, recording in enumerate(recordings):
        assert f'<section id="drill-{index}"><h2>{recording.result.experiment}:' in page


def test_the_page_does_not_scroll_sideways(seen: Measurement) -> None:
    assert seen.data["scrollWidth"] <= seen.data["clientWidth"]
    assert seen.data["overflowing"] == [], "no text (the scorecard table included) is cut at the edge of its box"


def test_every_drill_has_its_charts_drawn(seen: Measurement, recordings: list[Recording]) -> None:
    charts = seen.boxes("charts")
    expected = [f"d{d}-chart-{c}" for d, r in enumerate(recordings) for c in range(len(r.series))]
    assert [chart["id"] for chart in charts] == expected
    for chart in charts:
        lines = [s["box"] for s in seen.boxes("series") if s["chart"] == chart["id"]]
        assert lines, f"{chart['id']} has no curve"
        assert max(b["width"] for b in lines) > chart["box"]["width"] / 3, f"{chart['id']}: the curve spans the window"


def test_every_chart_label_is_inside_the_viewport(seen: Measurement) -> None:
    labels = seen.boxes("labels")
    assert len(labels) > 6 * 15
    outside = [
        (label["chart"], label["text"])
        for label in labels
        if label["box"]["left"] < 0 or label["box"]["right"] > seen.viewport_width
    ]
    assert outside == []


def test_the_trace_links_of_the_finding_are_visible(seen: Measurement, recordings: list[Recording]) -> None:
    finding = recordings[1].result.trace_findings[0]
    anchors = [link for link in seen.boxes("links") if link["href"] == f"#trace-{finding['example_trace_ids'][0]}"]
    assert anchors, "the finding links to the waterfall of its example trace"
    for link in anchors:
        assert link["box"]["width"] > 0
        assert link["box"]["left"] >= 0
        assert link["box"]["right"] <= seen.viewport_width
