"""The debugging endpoints of services other than response, through ``Platform.admin_call``, for real.

Each service holds its own admin token; the local platform's ``admin_call`` reads the token of the
service it calls, so an operator can take a task dump and a heap snapshot of movie (a gRPC service:
its ops app is the metrics site) and of hello (an aiohttp service: its ops app mirrors the API app).
"""

from __future__ import annotations

import urllib.request

import pytest

from services.common import catalog
from tests.conftest import RunningPlatform

pytestmark = [pytest.mark.integration]


@pytest.mark.parametrize("service", ["movie", "hello"])
def test_admin_call_dumps_tasks_and_takes_a_heap_snapshot(local_platform: RunningPlatform, service: str) -> None:
    platform = local_platform.platform

    [tasks] = platform.admin_call(service, "GET", "/debug/tasks", port="ops")
    assert tasks.status == 200, tasks.body
    assert tasks.body["count"] == len(tasks.body["tasks"]) > 0
    coroutines = {task["coroutine"] for task in tasks.body["tasks"]}
    assert any("serve" in c or "run_until_signalled" in c for c in coroutines), coroutines

    [started] = platform.admin_call(service, "POST", "/debug/heap/start", port="ops")
    try:
        assert started.status == 200, started.body
        assert started.body["tracing"] is True
        # Some work for the process to allocate while tracing: its own health check, a few times.
        health = f"http://127.0.0.1:{catalog.port(catalog.service(service).scrape_port)}/health"
        for _ in range(5):
            with urllib.request.urlopen(health, timeout=10) as answer:
                assert answer.status == 200
        [heap] = platform.admin_call(service, "GET", "/debug/heap?top=5", port="ops")
        assert heap.status == 200, heap.body
        assert heap.body["traced_bytes"] > 0
        assert 0 < len(heap.body["top"]) <= 5
        assert all({"file", "line", "size_bytes", "count"} <= set(site) for site in heap.body["top"])
    finally:
        [stopped] = platform.admin_call(service, "POST", "/debug/heap/stop", port="ops")
        assert stopped.status == 200
    [off] = platform.admin_call(service, "GET", "/debug/heap", port="ops")
    assert off.status == 400  # tracing is off again: the process pays nothing for it
