"""ConsulRegistry and ConsulLeaderElection against a Consul HTTP API on loopback.

``FakeConsul`` serves the handful of endpoints these classes use, with Consul's semantics
(TTL checks start critical and expire, ``passing`` filters, sessions hold KV locks, an
invalidated session releases its locks). The real py-consul client talks to it over real HTTP.
The last tests run the same code against a real ``consul agent -dev`` when one is installed.
"""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web

from scripts.ports import free_port
from scripts.processes import spawn
from services.common.config import ServiceConfig
from services.common.discovery.base import DiscoveryError, Instance, NoHealthyInstance, pick_instance
from services.common.discovery.consul import ConsulAddress, ConsulRegistry, make_client
from services.common.discovery.factory import make_registry
from services.common.leader import ConsulLeaderElection, run_while_leader
from services.common.waiting import TimedOut, wait_until, wait_until_async

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(duration: str) -> float:
    return sum(float(n) * _UNITS[u] for n, u in re.findall(r"([\d.]+)(ms|s|m|h)", duration))


def _ci(mapping: dict[str, Any], key: str, default: Any = None) -> Any:
    """Consul accepts registration keys in any case."""
    for k, v in mapping.items():
        if k.lower() == key.lower():
            return v
    return default


@dataclass
class _Service:
    body: dict[str, Any]
    ttl_s: float | None
    last_pass: float | None = None


@dataclass
class FakeConsul:
    """In-process Consul agent + server, enough for registration, health and session locks."""

    services: dict[str, _Service] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    kv: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    index: int = 1

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_put("/v1/agent/service/register", self.register)
        app.router.add_put("/v1/agent/service/deregister/{id}", self.deregister)
        app.router.add_put("/v1/agent/check/pass/{check}", self.check_pass)
        app.router.add_get("/v1/health/service/{name}", self.health)
        app.router.add_put("/v1/session/create", self.session_create)
        app.router.add_put("/v1/session/renew/{id}", self.session_renew)
        app.router.add_put("/v1/session/destroy/{id}", self.session_destroy)
        app.router.add_put("/v1/kv/{key:.+}", self.kv_put)
        app.router.add_get("/v1/kv/{key:.+}", self.kv_get)

        @web.middleware
        async def record(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
            self.requests.append(f"{request.method} {request.path}")
            return await handler(request)

        app.middlewares.append(record)
        return app

    def _passing(self, svc: _Service) -> bool:
        if svc.ttl_s is None:
            return True
        return svc.last_pass is not None and time.monotonic() - svc.last_pass <= svc.ttl_s

    async def register(self, request: web.Request) -> web.Response:
        body = await request.json()
        checks = _ci(body, "checks") or []
        ttl = next((_seconds(_ci(c, "ttl")) for c in checks if _ci(c, "ttl")), None)
        service_id = _ci(body, "id") or _ci(body, "name")
        self.services[service_id] = _Service(body, ttl)  # TTL checks start critical
        return web.Response(text="")

    async def deregister(self, request: web.Request) -> web.Response:
        self.services.pop(request.match_info["id"], None)
        return web.Response(text="")

    async def check_pass(self, request: web.Request) -> web.Response:
        check = request.match_info["check"]
        svc = self.services.get(check.removeprefix("service:"))
        if svc is None or svc.ttl_s is None:
            return web.Response(status=404, text=f'Unknown check ID "{check}"')
        svc.last_pass = time.monotonic()
        return web.Response(text="")

    async def health(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        passing_only = request.query.get("passing") in {"1", "true", ""} and "passing" in request.query
        out = []
        for service_id, svc in self.services.items():
            if _ci(svc.body, "name") != name:
                continue
            passing = self._passing(svc)
            if passing_only and not passing:
                continue
            out.append(
                {
                    "Node": {"Node": "fake", "Address": "127.0.0.1"},
                    "Service": {
                        "ID": service_id,
                        "Service": name,
                        "Address": _ci(svc.body, "address", ""),
                        "Port": _ci(svc.body, "port", 0),
                        "Meta": _ci(svc.body, "meta") or {},
                        "Tags": _ci(svc.body, "tags") or [],
                    },
                    "Checks": [{"CheckID": f"service:{service_id}", "Status": "passing" if passing else "critical"}],
                }
            )
        return web.json_response(out, headers={"X-Consul-Index": str(self.index)})

    async def session_create(self, request: web.Request) -> web.Response:
        raw = await request.text()
        body = await request.json() if raw else {}
        session_id = str(uuid.uuid4())
        self.sessions[session_id] = {"ttl": _ci(body, "ttl"), "name": _ci(body, "name"), "renewals": 0}
        return web.json_response({"ID": session_id})

    async def session_renew(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return web.Response(status=404, text="Session id not found")
        session["renewals"] += 1
        return web.json_response([{"ID": request.match_info["id"], "TTL": session["ttl"]}])

    async def session_destroy(self, request: web.Request) -> web.Response:
        self.invalidate(request.match_info["id"])
        return web.json_response(True)

    def invalidate(self, session_id: str) -> None:
        """What Consul does when a session's TTL passes: drop it and release its locks."""
        self.sessions.pop(session_id, None)
        for entry in self.kv.values():
            if entry.get("Session") == session_id:
                entry.pop("Session")

    async def kv_put(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        value = await request.read()
        entry = self.kv.get(key)
        acquire, release = request.query.get("acquire"), request.query.get("release")
        if acquire:
            if acquire not in self.sessions:
                return web.Response(status=500, text=f"invalid session {acquire}")
            if entry is not None and entry.get("Session") not in (None, acquire):
                return web.json_response(False)
            self.index += 1
            self.kv[key] = {"Key": key, "Value": value, "Session": acquire, "ModifyIndex": self.index}
            return web.json_response(True)
        if release:
            if entry is None or entry.get("Session") != release:
                return web.json_response(False)
            entry.pop("Session")
            return web.json_response(True)
        self.index += 1
        self.kv[key] = {"Key": key, "Value": value, "ModifyIndex": self.index}
        return web.json_response(True)

    async def kv_get(self, request: web.Request) -> web.Response:
        entry = self.kv.get(request.match_info["key"])
        if entry is None:
            return web.Response(status=404)
        out = dict(entry)
        out["Value"] = base64.b64encode(entry["Value"]).decode()
        return web.json_response([out], headers={"X-Consul-Index": str(self.index)})


@pytest.fixture
async def fake_consul() -> AsyncIterator[tuple[FakeConsul, str]]:
    fake = FakeConsul()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _instance(port: int, service: str = "response", **meta: str) -> Instance:
    return Instance(service, f"{service}-127.0.0.1-{port}", "127.0.0.1", port, {"metrics_path": "/metrics", **meta})


async def _wait_until(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    await wait_until_async(predicate, timeout_s=timeout_s, interval_s=0.05)


# --- address parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("127.0.0.1:8500", ConsulAddress("127.0.0.1", 8500, "http")),
        ("http://consul.service.consul:8500", ConsulAddress("consul.service.consul", 8500, "http")),
        ("https://10.0.1.5", ConsulAddress("10.0.1.5", 8501, "https")),
        ("localhost", ConsulAddress("localhost", 8500, "http")),
    ],
)
def test_address_forms(raw: str, expected: ConsulAddress) -> None:
    assert ConsulAddress.parse(raw) == expected


@pytest.mark.parametrize("raw", ["", "ftp://x:1", "http://host:notaport"])
def test_bad_addresses_are_rejected(raw: str) -> None:
    with pytest.raises(DiscoveryError):
        ConsulAddress.parse(raw)


def test_an_https_agent_is_verified_against_the_configured_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUL_CACERT", str(tmp_path / "from-the-shell.pem"))  # not read any more
    ca = tmp_path / "consul-ca.pem"
    assert make_client("https://127.0.0.1:8501", ca_file=ca).http.verify == str(ca)
    assert make_client("https://127.0.0.1:8501").http.verify is True
    assert make_client("http://127.0.0.1:8500", ca_file=ca).http.verify is True


async def test_the_registry_gets_the_ca_from_service_config(tmp_path: Path) -> None:
    ca = tmp_path / "consul-ca.pem"
    environ = {"FIREDRILL_DISCOVERY": "consul", "CONSUL_HTTP_ADDR": "https://127.0.0.1:8501", "CONSUL_CACERT": str(ca)}
    registry = make_registry(ServiceConfig.from_env("hello", environ))
    assert isinstance(registry, ConsulRegistry)
    assert registry.client.http.verify == str(ca)
    await registry.close()


# --- registry -----------------------------------------------------------------------------------


async def test_register_reports_passing_and_is_found(fake_consul: tuple[FakeConsul, str]) -> None:
    fake, addr = fake_consul
    registry = ConsulRegistry(addr, ttl_s=10)
    one, two = _instance(6060, protocol="http"), _instance(6061)
    await registry.register(one)
    await registry.register(two)
    assert await registry.healthy_instances("response") == [one, two]
    assert await registry.healthy_instances("hello") == []
    body = fake.services[one.instance_id].body
    assert _ci(body, "checks")[0]["TTL"] == "10s"
    assert _ci(body, "checks")[0]["DeregisterCriticalServiceAfter"] == "60s"
    assert _ci(body, "tags") == ["http"]
    assert "GET /v1/health/service/response" in fake.requests
    await registry.close()


async def test_instances_that_stop_heartbeating_disappear(fake_consul: tuple[FakeConsul, str]) -> None:
    _fake, addr = fake_consul
    registry = ConsulRegistry(addr, ttl_s=0.3)
    alive, silent = _instance(6060), _instance(6061)
    await registry.register(alive)
    await registry.register(silent)

    async def only_alive_left() -> bool:
        await registry.heartbeat(alive)
        return await registry.healthy_instances("response") == [alive]

    await _wait_until(only_alive_left)
    assert await pick_instance(registry, "response") == alive
    await registry.close()


async def test_heartbeat_reregisters_after_the_agent_forgot(fake_consul: tuple[FakeConsul, str]) -> None:
    fake, addr = fake_consul
    registry = ConsulRegistry(addr, ttl_s=10)
    inst = _instance(6060)
    await registry.register(inst)
    fake.services.clear()  # agent restarted without its state
    await registry.heartbeat(inst)
    assert await registry.healthy_instances("response") == [inst]
    await registry.close()


async def test_deregister_removes_the_instance(fake_consul: tuple[FakeConsul, str]) -> None:
    _fake, addr = fake_consul
    registry = ConsulRegistry(addr, ttl_s=10)
    inst = _instance(6060)
    await registry.register(inst)
    await registry.deregister(inst)
    with pytest.raises(NoHealthyInstance):
        await pick_instance(registry, "response")
    await registry.close()


async def test_node_address_is_used_when_the_service_has_none(fake_consul: tuple[FakeConsul, str]) -> None:
    _fake, addr = fake_consul
    registry = ConsulRegistry(addr, ttl_s=10)
    await registry.register(Instance("hello", "hello-1", "", 5050))
    [found] = await registry.healthy_instances("hello")
    assert found.address == "127.0.0.1:5050"
    await registry.close()


async def test_unreachable_consul_is_a_discovery_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    registry = ConsulRegistry(f"127.0.0.1:{port}", ttl_s=10)
    with pytest.raises(DiscoveryError, match="health query"):
        await registry.healthy_instances("response")
    await registry.close()


# --- leader election over sessions ----------------------------------------------------------------


async def test_one_leader_at_a_time_and_handover(fake_consul: tuple[FakeConsul, str]) -> None:
    fake, addr = fake_consul
    a = ConsulLeaderElection("firedrill/leader/report", address=addr, holder_id="a")
    b = ConsulLeaderElection("firedrill/leader/report", address=addr, holder_id="b")
    assert await a.acquire()
    assert not await b.acquire()
    assert await a.holder() == "a"
    assert fake.sessions[a.session_id or ""]["ttl"] == "10s"
    assert await a.renew()
    await a.release()
    assert not a.is_leader
    assert a.session_id is None
    assert await b.acquire()
    assert await b.holder() == "b"
    await b.release()
    assert fake.sessions == {}


async def test_expired_session_loses_leadership_and_stops_the_task(fake_consul: tuple[FakeConsul, str]) -> None:
    fake, addr = fake_consul
    leader = ConsulLeaderElection("firedrill/leader/job", address=addr, holder_id="a")
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def job() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    runner = asyncio.create_task(run_while_leader(leader, job, renew_every_s=0.05))
    await asyncio.wait_for(started.wait(), 5)
    assert leader.session_id is not None
    fake.invalidate(leader.session_id)  # as Consul does when the TTL passes
    assert await asyncio.wait_for(runner, 5) is False
    assert cancelled.is_set()
    assert not leader.is_leader
    # The lock is free again for another candidate.
    other = ConsulLeaderElection("firedrill/leader/job", address=addr, holder_id="b")
    assert await other.acquire()


async def test_run_while_leader_waits_its_turn(fake_consul: tuple[FakeConsul, str]) -> None:
    fake, addr = fake_consul
    first = ConsulLeaderElection("firedrill/leader/x", address=addr, holder_id="first")
    second = ConsulLeaderElection("firedrill/leader/x", address=addr, holder_id="second")
    order: list[str] = []
    release_first = asyncio.Event()

    async def first_job() -> None:
        order.append("first")
        await release_first.wait()

    async def second_job() -> None:
        order.append("second")

    t1 = asyncio.create_task(run_while_leader(first, first_job, renew_every_s=0.05, retry_s=0.05))
    await _wait_until(lambda: _true_if(order == ["first"]))
    t2 = asyncio.create_task(run_while_leader(second, second_job, renew_every_s=0.05, retry_s=0.05))
    tries_before = fake.requests.count("PUT /v1/kv/firedrill/leader/x")
    # Let the second candidate try several times while the first leads.
    await _wait_until(lambda: _true_if(fake.requests.count("PUT /v1/kv/firedrill/leader/x") >= tries_before + 3))
    assert order == ["first"]
    release_first.set()
    assert await asyncio.wait_for(t1, 5) is True
    assert await asyncio.wait_for(t2, 5) is True
    assert order == ["first", "second"]


async def _true_if(value: bool) -> bool:
    return value


def test_session_ttl_is_validated() -> None:
    with pytest.raises(ValueError, match="TTL"):
        ConsulLeaderElection("k", address="127.0.0.1:8500", ttl_s=5)


# --- against a real Consul agent, when installed ------------------------------------------------------


@pytest.fixture(scope="module")
def real_consul(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("consul")
    if binary is None:
        pytest.skip("consul is not on PATH: the fake Consul API tests above cover this code here")
    http = free_port()
    ports = {name: free_port() for name in ("dns", "serf_lan", "serf_wan", "server", "grpc")}
    config = tmp_path_factory.mktemp("consul") / "ports.json"
    config.write_text(
        '{"ports": {'
        + ", ".join(f'"{k}": {v}' for k, v in ports.items())
        + f', "http": {http}, "grpc_tls": -1}}, "bind_addr": "127.0.0.1", "client_addr": "127.0.0.1"}}'
    )
    consul = spawn("consul", [binary, "agent", "-dev", f"-config-file={config}"], config.parent / "consul.log")
    addr = f"http://127.0.0.1:{http}"

    def leader_elected() -> bool:
        if not consul.running:
            raise TimedOut(f"consul agent -dev exited; see {consul.log_file}")
        try:
            return bool(requests.get(f"{addr}/v1/status/leader", timeout=1).json())
        except (requests.RequestException, ValueError):
            return False

    try:
        wait_until(leader_elected, timeout_s=30, interval_s=0.2, what="a Consul leader")
    except TimedOut as exc:
        consul.kill()
        pytest.fail(f"consul agent -dev did not elect a leader within 30 s: {exc}")
    try:
        yield addr
    finally:
        consul.stop(timeout_s=10)


async def test_real_consul_registry_round_trip(real_consul: str) -> None:
    registry = ConsulRegistry(real_consul, ttl_s=10)
    inst = _instance(6060)
    await registry.register(inst)
    await _wait_until(lambda: _found(registry, inst))
    await registry.deregister(inst)
    assert await registry.healthy_instances("response") == []
    await registry.close()


async def _found(registry: ConsulRegistry, inst: Instance) -> bool:
    return inst in await registry.healthy_instances(inst.service)


async def test_real_consul_lock(real_consul: str) -> None:
    a = ConsulLeaderElection("firedrill/test-lock", address=real_consul, holder_id="a")
    b = ConsulLeaderElection("firedrill/test-lock", address=real_consul, holder_id="b")
    assert await a.acquire()
    assert not await b.acquire()
    assert await a.renew()
    await a.release()
    assert await b.acquire()
    await b.release()
