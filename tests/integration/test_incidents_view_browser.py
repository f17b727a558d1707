"""The incidents view as a person sees it: headless Chromium opens the served pages of real incidents.

Needs Debian's ``chromium`` (installed by ``make setup``); not the local platform. Chromium loads each
page from the running view (so the loopback server, its host check and its headers are what a browser
meets); the layout is then measured on a copy of the same page with the report's probe script, which
the view's Content-Security-Policy would refuse to run on the served page.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from scripts.drills.screenshot import FLAGS, TIMEOUT_S, Measurement, find_chromium, measure
from tests.incidents_view import PROMETHEUS, TRACE_ID, Stack, incidents_behind_a_view

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="chromium is not installed (Debian package `chromium`; run `make setup`)"
)
WIDTH = 1400


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with incidents_behind_a_view(tmp_path) as running:
        yield running


def dom_in_chromium(url: str) -> str:
    """The DOM Chromium builds from the served page (it runs in a thread: the view answers meanwhile)."""
    binary = find_chromium()
    assert binary is not None
    with tempfile.TemporaryDirectory(prefix="firedrill-chromium-") as profile:
        done = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},900", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


async def seen(stack: Stack, path: str, folder: Path) -> tuple[str, Measurement]:
    dom = await asyncio.to_thread(dom_in_chromium, stack.view + path)
    async with aiohttp.ClientSession() as session, session.get(stack.view + path) as answer:
        assert answer.status == 200
        page = await answer.text()
    copy = folder / "page.html"
    copy.write_text(page, encoding="utf-8")
    return dom, await asyncio.to_thread(measure, copy, WIDTH)


def assert_readable(measured: Measurement) -> None:
    assert measured.data["scrollWidth"] <= measured.data["clientWidth"], "the page scrolls sideways"
    assert measured.data["overflowing"] == [], "text is cut at the right edge of its box"
    for link in measured.boxes("links"):
        box = link["box"]
        assert box["width"] > 0, f"{link['href']} is not shown"
        assert box["left"] >= 0, f"{link['href']} is cut at the left"
        assert box["right"] <= measured.viewport_width, f"{link['href']} is cut at the right"


async def test_the_list_in_chromium(stack: Stack, tmp_path: Path) -> None:
    dom, measured = await seen(stack, "/", tmp_path)
    assert "Incidents" in dom
    assert 'href="/incidents/1"' in dom
    assert 'href="/incidents/2"' in dom
    assert_readable(measured)
    hrefs = {link["href"] for link in measured.boxes("links")}
    assert {"/incidents/1", "/incidents/2", "/?status=firing", "/?service=response"} <= hrefs


async def test_an_incident_in_chromium_with_links_that_answer(stack: Stack, tmp_path: Path) -> None:
    dom, measured = await seen(stack, f"/incidents/{stack.resolved_id}", tmp_path)
    assert "Timeline" in dom
    assert_readable(measured)
    links = {link["text"]: link["href"] for link in measured.boxes("links")}
    assert links["runbook"] == "https://runbooks.example/service-down"
    assert links["Grafana dashboard"] == "https://grafana.example/d/firedrill"
    assert links["graph of the alert's expression"].startswith(PROMETHEUS + "/classic/graph?g0.expr=")
    assert links[TRACE_ID] == f"/traces/{TRACE_ID}"
    local = [href for href in links.values() if href.startswith("/")]
    async with aiohttp.ClientSession() as session:
        for href in local:  # what a click on each of the view's own links opens
            async with session.get(stack.view + href) as answer:
                assert answer.status == 200, href


async def test_the_trace_waterfall_in_chromium(stack: Stack, tmp_path: Path) -> None:
    dom, measured = await seen(stack, f"/traces/{TRACE_ID}", tmp_path)
    assert dom.count("span-row error") == 2
    assert_readable(measured)
