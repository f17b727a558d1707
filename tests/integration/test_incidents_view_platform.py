"""The incidents view on the real local platform: the mTLS API read with the operator's certificate,
and the Prometheus and Alertmanager addresses that `make up` prints answer as it says."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from scripts.local.__main__ import where_things_are
from scripts.ports import free_port
from scripts.processes import REPO, http_ok, inherited_environment, python_module, spawn
from services.common import catalog
from services.common.waiting import wait_until
from services.incidents.payloads import AlertSpec, group_notification
from tests.conftest import RunningPlatform


async def _status(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url, allow_redirects=True) as answer:
        return answer.status


async def test_the_ui_command_reads_the_platforms_incidents_and_links_its_prometheus(
    local_platform: RunningPlatform, tmp_path: Path
) -> None:
    endpoints = local_platform.endpoints
    alert = AlertSpec(
        {"alertname": "ViewCheck", "service": "response", "severity": "info"},
        time.time_ns() - 60 * 1_000_000_000,
        annotations={"summary": "checking the incidents view", "runbook_url": "https://runbooks.example/view"},
        expr='up{service="response"}',
    )
    port = free_port()
    env = inherited_environment() | {
        "FIREDRILL_STATE_DIR": str(local_platform.state_dir),
        "FIREDRILL_PORT_OFFSET": str(catalog.port_offset()),
    }
    ui = spawn(
        "incidents-ui",
        python_module("scripts.incidents_cli", "ui", "--port", str(port)),
        tmp_path / "ui.log",
        env=env,
        cwd=REPO,
    )
    view = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: http_ok(view + "/"), timeout_s=30, what=f"the incidents view answers (log: {tmp_path / 'ui.log'})"
        )
        async with aiohttp.ClientSession() as session:
            writer = local_platform.identity_ssl("alertmanager")  # only Alertmanager may post
            async with session.post(
                f"{endpoints.incidents}/alerts", json=group_notification([alert]), ssl=writer
            ) as answer:
                assert answer.status == 200, await answer.text()
                incident_id = (await answer.json())["incidents_changed"][0]
            async with session.get(f"{view}/?service=response") as answer:
                assert answer.status == 200
                assert f'href="/incidents/{incident_id}"' in await answer.text()
            async with session.get(f"{view}/incidents/{incident_id}") as answer:
                assert answer.status == 200
                page = await answer.text()
            assert "checking the incidents view" in page
            links = [href.split('"')[0].replace("&amp;", "&") for href in page.split('href="')[1:]]
            graph = next(link for link in links if link.startswith(endpoints.prometheus + "/classic/graph?g0.expr="))
            assert await _status(session, graph) == 200, "Debian's Prometheus serves the classic graph"
            # The platform is shared with the drills: leave no incident of ours firing for response.
            resolved = replace(alert, ends_at_ns=time.time_ns())
            async with session.post(
                f"{endpoints.incidents}/alerts", json=group_notification([resolved]), ssl=writer
            ) as answer:
                assert answer.status == 200, await answer.text()
    finally:
        ui.stop()


async def test_the_printed_addresses_answer_as_printed(local_platform: RunningPlatform) -> None:
    endpoints = local_platform.endpoints
    printed = " ".join(url for _, url in where_things_are(endpoints))
    async with aiohttp.ClientSession() as session:
        for page in ("/classic/graph", "/classic/alerts", "/classic/targets", "/classic/rules"):
            assert endpoints.prometheus + page in printed
            assert await _status(session, endpoints.prometheus + page) == 200, page
        for page in ("/alerts", "/targets"):
            assert await _status(session, endpoints.prometheus + page) == 404, f"{page} is said to be missing here"
        assert "Debian's Alertmanager has no web UI" in printed
        async with session.get(endpoints.alertmanager + "/api/v2/status") as answer:
            assert answer.status == 200, "its API answers"
        assert urlsplit(endpoints.alertmanager).netloc in printed
