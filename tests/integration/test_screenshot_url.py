"""`python -m scripts.drills.screenshot URL OUT.png` captures a page served on this machine (the
incidents view), and refuses any other host. Needs Debian's ``chromium`` (``make setup``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scripts.drills.screenshot import find_chromium
from scripts.drills.screenshot import main as screenshot_main

PAGE = b"<!doctype html><html><body><h1 id='served'>incident 1</h1></body></html>"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served_page() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/incidents/1"
    finally:
        server.shutdown()
        thread.join()


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (Debian `chromium`; run `make setup`)")
def test_a_page_served_on_loopback_is_captured(served_page: str, tmp_path: Path) -> None:
    out = tmp_path / "incident.png"
    assert screenshot_main([served_page, str(out), "--height", "300"]) == 0
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_a_page_on_another_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="only pages served on this machine"):
        screenshot_main(["http://example.com/incidents/1", str(tmp_path / "x.png")])
