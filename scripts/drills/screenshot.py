"""A report as a person sees it, through headless Chromium (Debian's ``chromium``).

    python -m scripts.drills.screenshot REPORT.html OUT.png [--width 1400] [--height N]
    python -m scripts.drills.screenshot RECORDING.json OUT.png   # renders the saved drill first
    python -m scripts.drills.screenshot http://127.0.0.1:5080/incidents/1 OUT.png   # a page served locally
                                                       (e.g. by `make incidents-ui`)

The picture in docs/drill-report.md is made from the recorded fixture with
    TZ=UTC python -m scripts.drills.screenshot tests/fixtures/drill_recording.json \
        docs/images/drill-report.png --width 1100 --height 985

``screenshot`` writes a PNG of the page (its whole height unless told otherwise); ``measure``
loads a copy of the page with a small probe script appended and reads back, from the DOM Chromium
dumps, the boxes of what matters (chart lines, labels, links) and the page's scroll width.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.drills.page import render_page
from scripts.drills.recording import load

# Without these, Chromium on this kind of machine tries the network, a GPU and a sandbox it cannot have.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
TIMEOUT_S = 90

PROBE_ID = "firedrill-probe"
# Collects, after layout, the boxes a test checks; written into the DOM that --dump-dom prints.
# The page height is taken as it opens; folded <details> are then unfolded, so that what a person
# sees after clicking them is checked too.
PROBE = """<script>(function(){
function box(e){var r=e.getBoundingClientRect();return {left:r.left,right:r.right,top:r.top,bottom:r.bottom,
width:r.width,height:r.height};}
function each(sel,f){return Array.prototype.map.call(document.querySelectorAll(sel),f);}
function chartOf(e){var s=e.closest('svg.chart');return s?s.id:null;}
var doc=document.documentElement;var height=doc.scrollHeight;
each('details',function(e){e.open=true;});
var out={viewport:{width:window.innerWidth,height:window.innerHeight},
scrollWidth:doc.scrollWidth,clientWidth:doc.clientWidth,scrollHeight:height,
charts:each('svg.chart',function(e){return {id:e.id,box:box(e)};}),
series:each('svg.chart .series',function(e){return {chart:chartOf(e),box:box(e)};}),
labels:each('svg.chart text',function(e){return {chart:chartOf(e),cls:e.getAttribute('class'),
text:e.textContent,box:box(e)};}),
links:each('a[href]',function(e){return {href:e.getAttribute('href'),text:e.textContent,box:box(e)};}),
overflowing:each('pre,dd,td,.span-name,code',function(e){return e.scrollWidth>e.clientWidth+1?e.tagName:null;})
.filter(function(x){return x;})};
var p=document.createElement('pre');p.id='__PROBE_ID__';p.textContent=JSON.stringify(out);document.body.appendChild(p);
})();</script>""".replace("__PROBE_ID__", PROBE_ID)


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(url: str, *args: str) -> str:
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (Debian package `chromium`; run `make setup`)")
    with tempfile.TemporaryDirectory(prefix="firedrill-chromium-") as profile:
        done = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *args, url],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


@dataclass(frozen=True, slots=True)
class Measurement:
    """What the probe saw; boxes are CSS pixels relative to the viewport's top-left corner."""

    data: dict[str, Any]

    @property
    def viewport_width(self) -> float:
        return float(self.data["viewport"]["width"])

    @property
    def page_height(self) -> int:
        return int(self.data["scrollHeight"])

    def boxes(self, kind: str) -> list[dict[str, Any]]:
        return list(self.data[kind])


def measure(report: Path, width: int = 1400, height: int = 900) -> Measurement:
    page = report.read_text(encoding="utf-8")
    probed = page.replace("</body>", PROBE + "</body>") if "</body>" in page else page + PROBE
    with tempfile.TemporaryDirectory(prefix="firedrill-probe-") as folder:
        copy = Path(folder) / report.name
        copy.write_text(probed, encoding="utf-8")
        dom = _run(copy.resolve().as_uri(), f"--window-size={width},{height}", "--dump-dom")
    found = re.search(rf'<pre id="{PROBE_ID}">(.*?)</pre>', dom, re.DOTALL)
    if found is None:
        raise RuntimeError("the probe did not run: chromium printed no measurement")
    return Measurement(json.loads(html.unescape(found.group(1))))


def screenshot(report: Path, out: Path, width: int = 1400, height: int | None = None) -> Path:
    """A PNG of the report at this width, as tall as the page unless ``height`` is given."""
    tall = height if height is not None else measure(report, width).page_height
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(report.resolve().as_uri(), f"--window-size={width},{tall}", f"--screenshot={out.resolve()}")
    if not out.exists():
        raise RuntimeError(f"chromium wrote no screenshot to {out}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.drills.screenshot", description=__doc__)
    parser.add_argument(
        "report", help="report.html of a drill, its recording.json, or the http URL of a page served on loopback"
    )
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=None, help="crop to this height (default: the whole page)")
    args = parser.parse_args(argv)
    source = str(args.report)
    if not source.startswith(("http://", "https://")) and not source.endswith(".json"):
        print(screenshot(Path(source), args.out, args.width, args.height))
        return 0
    with tempfile.TemporaryDirectory(prefix="firedrill-report-") as folder:
        page = Path(folder) / "page.html"
        page.write_text(_served_page(source) if "://" in source else render_page(load(Path(source))), encoding="utf-8")
        print(screenshot(page, args.out, args.width, args.height))
    return 0


def _served_page(url: str) -> str:
    """The HTML a local server answers (the incidents view): the pages are self-contained, so a saved
    copy renders as served."""
    if urllib.parse.urlsplit(url).hostname not in {"127.0.0.1", "localhost"}:
        raise SystemExit(f"only pages served on this machine are captured, not {url}")
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 (loopback only, checked above)
        return str(answer.read().decode("utf-8"))


if __name__ == "__main__":
    raise SystemExit(main())
