"""The ops port's debugging endpoints: the admin guard, bounds, and what each one shows."""

from __future__ import annotations

import asyncio
import threading
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from services.common import debug_endpoints
from services.common.cpu_sampler import sample
from services.common.debug_endpoints import DEBUG_TOKEN_KEY
from services.common.lifecycle import ops_app
from services.common.waiting import wait_until_async
from services.common.web import create_ops_app
from services.response.app import create_app
from services.response.config import ResponseConfig

TOKEN = "debug-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient[web.Request, web.Application]


@pytest.fixture(autouse=True)
def heap_tracing_off() -> Iterator[None]:
    yield
    tracemalloc.stop()


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    app = create_ops_app("response", CollectorRegistry())
    app[DEBUG_TOKEN_KEY] = TOKEN
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_response_ops_port_carries_the_admin_token(tmp_path: Path) -> None:
    config = ResponseConfig.from_env({"FIREDRILL_STATE_DIR": str(tmp_path)})
    ops = ops_app(create_app(config, admin_token=TOKEN, metrics_registry=CollectorRegistry()))
    async with TestClient(TestServer(ops)) as http:
        assert (await http.get("/debug/tasks", headers=AUTH)).status == 200
        assert (await http.get("/debug/tasks")).status == 401


async def test_a_service_without_an_admin_token_refuses_every_debug_call() -> None:
    async with TestClient(TestServer(create_ops_app("rating", CollectorRegistry()))) as http:
        answer = await http.get("/debug/tasks", headers=AUTH)
        assert answer.status == 403
        assert "no admin token" in (await answer.json())["error"]["message"]
        assert (await http.get("/metrics")).status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/debug/tasks"),
        ("GET", "/debug/heap"),
        ("POST", "/debug/heap/start"),
        ("POST", "/debug/heap/stop"),
        ("GET", "/debug/profile?seconds=1"),
    ],
)
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),  # what Prometheus sends when it scrapes the same port
        ({"Authorization": "Basic abc"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": "Bearer wrong"}, 403),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403),
    ],
)
async def test_every_endpoint_needs_the_admin_token(
    client: Client, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    answer = await client.request(method, path, headers=headers)
    assert answer.status == status
    assert "admin token" in (await answer.json())["error"]["message"]
    assert not tracemalloc.is_tracing()


async def test_metrics_and_health_stay_open(client: Client) -> None:
    assert (await client.get("/metrics")).status == 200
    assert (await client.get("/health")).status == 200


async def test_heap_tracing_is_off_until_started(client: Client) -> None:
    assert not tracemalloc.is_tracing()
    answer = await client.get("/debug/heap", headers=AUTH)
    assert answer.status == 400
    assert "POST /debug/heap/start" in (await answer.json())["error"]["message"]


_KEEP: list[bytearray] = []


def _leak_a_little() -> None:
    for _ in range(64):
        _KEEP.append(bytearray(64 * 1024))


async def test_heap_snapshot_names_the_allocation_site(client: Client) -> None:
    started = await client.post("/debug/heap/start", headers=AUTH)
    assert (await started.json()) == {"tracing": True, "already_tracing": False, "frames": 1}
    _leak_a_little()
    try:
        answer = await client.get("/debug/heap?top=3", headers=AUTH)
        assert answer.status == 200
        body = await answer.json()
        top = body["top"][0]
        assert top["file"] == "tests/unit/test_debug_endpoints.py"
        assert top["code"] == "_KEEP.append(bytearray(64 * 1024))"
        assert top["count"] >= 64
        assert top["size_bytes"] >= 64 * 64 * 1024
        assert len(body["top"]) <= 3
    finally:
        _KEEP.clear()
    again = await client.post("/debug/heap/start", headers=AUTH)
    assert (await again.json())["already_tracing"] is True
    stopped = await client.post("/debug/heap/stop", headers=AUTH)
    assert (await stopped.json()) == {"tracing": False, "was_tracing": True}
    assert not tracemalloc.is_tracing()


@pytest.mark.parametrize(
    "path",
    [
        "/debug/heap?top=0",
        "/debug/heap?top=101",
        "/debug/heap?top=x",
        "/debug/profile?seconds=0",
        "/debug/profile?seconds=31",
        "/debug/profile?seconds=1e3",
        "/debug/profile?seconds=1&top=1000",
        "/debug/profile?seconds=1&format=svg",
    ],
)
async def test_out_of_bounds_input_is_a_400(client: Client, path: str) -> None:
    await client.post("/debug/heap/start", headers=AUTH)
    answer = await client.get(path, headers=AUTH)
    assert answer.status == 400
    assert (await answer.json())["error"]["code"] == "bad_request"


async def test_heap_start_frames_are_bounded(client: Client) -> None:
    assert (await client.post("/debug/heap/start?frames=26", headers=AUTH)).status == 400
    assert not tracemalloc.is_tracing()


async def _parked_forever(event: asyncio.Event) -> None:
    await event.wait()


async def test_task_dump_shows_each_task_and_where_it_waits(client: Client) -> None:
    event = asyncio.Event()
    task = asyncio.create_task(_parked_forever(event), name="parked-for-the-test")
    await asyncio.sleep(0)
    try:
        body = await (await client.get("/debug/tasks", headers=AUTH)).json()
    finally:
        event.set()
        await task
    parked = next(t for t in body["tasks"] if t["name"] == "parked-for-the-test")
    assert parked["coroutine"] == "_parked_forever"
    assert parked["state"] == "pending"
    assert parked["suspended_at"][0].startswith("tests/unit/test_debug_endpoints.py:")
    assert parked["suspended_at"][0].endswith("in _parked_forever")
    assert body["count"] == len(body["tasks"])


def spin_here(stop: threading.Event) -> int:
    spins = 0
    while not stop.is_set():
        spins += 1
    return spins


def test_sampler_weighs_by_cpu_and_names_the_busy_function() -> None:
    stop = threading.Event()
    idle = threading.Event()
    busy = threading.Thread(target=spin_here, args=(stop,), daemon=True)
    parked = threading.Thread(target=idle.wait, daemon=True)
    busy.start()
    parked.start()
    try:
        profile = sample(1.0, interval_s=0.005)
    finally:
        stop.set()
        idle.set()
        busy.join()
        parked.join()
    assert profile.mode == "cpu"
    assert profile.samples >= 2  # how many depends on the machine's load: the sampler needs the GIL too
    spin = next(f for f in profile.functions if f.function == "spin_here")
    assert spin.file == "tests/unit/test_debug_endpoints.py"
    # Its own loop and the Event.is_set it calls: most of the CPU the process used while sampled.
    assert spin.total_cpu_s > 0
    assert spin.total_cpu_s >= 0.5 * profile.cpu_total_s
    # The parked thread used no CPU, so its wait adds nothing.
    assert all(f.function != "wait" for f in profile.functions)
    assert "spin_here (tests/unit/test_debug_endpoints.py:" in profile.as_text(len(profile.functions))


async def test_one_profile_at_a_time(client: Client) -> None:
    first = asyncio.create_task(client.get("/debug/profile?seconds=1&top=5", headers=AUTH))
    # Wait for the first profile to hold the process-wide lock, then ask for a second one.
    await wait_until_async(
        debug_endpoints._PROFILE_RUNNING.locked, timeout_s=10, interval_s=0.01, what="the first profile running"
    )
    second = await client.get("/debug/profile?seconds=1", headers=AUTH)
    assert second.status == 409
    assert "already running" in (await second.json())["error"]["message"]
    answer = await first
    assert answer.status == 200
    body = await answer.json()
    assert body["seconds"] == 1
    assert len(body["top"]) <= 5
    text = await client.get("/debug/profile?seconds=1&format=text", headers=AUTH)
    assert text.status == 200
    assert (await text.text()).startswith("CPU profile: 1 s")
