"""The drill report as a person sees it: headless Chromium renders the recorded fixture.

Needs Debian's ``chromium`` (installed by ``make setup``); not the local platform.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from scripts.drills.page import render_page
from scripts.drills.recording import load
from scripts.drills.screenshot import Measurement, find_chromium, measure, screenshot
from scripts.drills.screenshot import main as screenshot_main

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "drill_recording.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="chromium is not installed (Debian package `chromium`; run `make setup`)"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_page(load(FIXTURE), UTC))
    return path


@pytest.fixture(scope="module", params=[1400, 820], ids=["wide", "narrow"])
def seen(request: pytest.FixtureRequest, report: Path) -> Measurement:
    return measure(report, width=request.param)


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def test_the_page_does_not_scroll_sideways(seen: Measurement) -> None:
    assert seen.data["scrollWidth"] <= seen.data["clientWidth"]
    assert seen.data["overflowing"] == [], "no text is cut at the right edge of its box"


def test_every_chart_is_drawn(seen: Measurement) -> None:
    charts = seen.boxes("charts")
    assert [c["id"] for c in charts] == ["chart-0", "chart-1", "chart-2"]
    for chart in charts:
        lines = [s["box"] for s in seen.boxes("series") if s["chart"] == chart["id"]]
        assert lines, f"{chart['id']} has no curve"
        assert max(b["width"] for b in lines) > chart["box"]["width"] / 3, "the curve spans most of the window"
        assert max(b["height"] for b in lines) > 20, "the curve moves"


def test_every_chart_label_is_inside_the_viewport(seen: Measurement) -> None:
    labels = seen.boxes("labels")
    assert len(labels) > 3 * 20
    outside = [
        label["text"] for label in labels if label["box"]["left"] < 0 or label["box"]["right"] > seen.viewport_width
    ]
    assert outside == []


def test_event_labels_do_not_cover_each_other(seen: Measurement) -> None:
    by_chart: dict[str, list[dict[str, Any]]] = {}
    for label in seen.boxes("labels"):
        if label["cls"] in ("event-label", "outage-label"):
            by_chart.setdefault(label["chart"], []).append(label)
    assert len(by_chart) == 3
    for labels in by_chart.values():
        assert len(labels) >= 9
        pairs = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :]]
        clashes = [(a["text"], b["text"]) for a, b in pairs if _overlap(a["box"], b["box"])]
        assert clashes == []


def test_links_are_visible_and_inside_the_page(seen: Measurement) -> None:
    links = {link["text"]: link["box"] for link in seen.boxes("links")}
    assert {"runbook", "Grafana dashboard"} <= set(links)
    for text, box in links.items():
        assert box["width"] > 0, f"{text} is not shown"
        assert box["left"] >= 0, f"{text} is cut"
        assert box["right"] <= seen.viewport_width, f"{text} is cut"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_a_screenshot_is_a_png_of_the_whole_page(report: Path, tmp_path: Path) -> None:
    out = screenshot(report, tmp_path / "report.png", width=1000)
    assert _png_size(out) == (1000, measure(report, width=1000).page_height)


def test_the_screenshot_command_renders_a_recording_first(tmp_path: Path) -> None:
    out = tmp_path / "docs.png"
    assert screenshot_main([str(FIXTURE), str(out), "--width", "900", "--height", "600"]) == 0
    assert _png_size(out) == (900, 600)
