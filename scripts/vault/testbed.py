"""A small real platform for the Vault tests and the mTLS bench: OpenBao + agent + response + hello.

Everything runs on free loopback ports from one temporary state directory; every process
started here is stopped by ``close()``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import aiohttp

from scripts.ports import free_port
from scripts.processes import ServiceProcess, Spawned, python_module, spawn
from scripts.vault.devserver import DevServer
from scripts.vault.local import service_env, tls_files
from services.common import catalog, tls
from services.common.metrics import scraped_value
from services.common.waiting import wait_until


def metric(url: str, name: str, labels: Mapping[str, str], ssl_context: ssl.SSLContext | None = None) -> float | None:
    try:
        with urllib.request.urlopen(url, timeout=2, context=ssl_context) as answer:  # noqa: S310 (loopback)
            text = answer.read().decode()
    except OSError:
        return None
    return scraped_value(text, name, labels)


@dataclass
class VaultPlatform:
    root: Path
    cert_ttl_s: int
    bao: DevServer = field(init=False)
    agent_port: int = field(default_factory=free_port)
    services: dict[str, ServiceProcess] = field(init=False)
    processes: dict[str, Spawned] = field(default_factory=dict)

    def __post_init__(self) -> None:
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.bao = DevServer(self.root / "vault")
        (self.root / "vault").mkdir(parents=True, exist_ok=True)
        self.bao.log_file = self.root / "logs" / "openbao.log"
        # Free ports (the plain /metrics + /health ones too) so several runs can coexist.
        self.services = {
            name: ServiceProcess(
                name,
                self.root,
                log_level=None,  # the services' own default: the leak checks read what they log
                env={"FIREDRILL_INSTRUMENTATION": "true", **service_env(self.root, name)},
            )
            for name in ("response", "hello")
        }

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def ports(self) -> dict[str, int]:
        return {name: service.port for name, service in self.services.items()}

    def start(self) -> VaultPlatform:
        self.bao.start()
        agent = python_module(
            "scripts.vault.agent",
            *("--state-dir", str(self.root), "--addr", self.bao.addr),
            *("--bootstrap-token-file", str(self.bao.token_file), "--metrics-port", str(self.agent_port)),
            *("--cert-ttl-s", str(self.cert_ttl_s), "--kv-poll-s", "0.5"),
        )
        self.processes["vault-agent"] = spawn(
            "vault-agent", agent, self.logs / "vault-agent.log", env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        wait_until(self.agent_healthy, timeout_s=30, interval_s=0.05, what="the agent's first render")
        for name, service in self.services.items():
            service.start(healthy=partial(self.healthy, name))
            assert service.spawned is not None
            self.processes[name] = service.spawned
        return self

    def agent_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.agent_port}/health", timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def operator(self) -> tls.TlsMaterial:
        return tls.TlsMaterial(tls_files(self.root, "operator"), "operator")

    def url(self, service: str, path: str = "") -> str:
        scheme = "http" if catalog.service(service).serves_users_plain_http else "https"
        return f"{scheme}://127.0.0.1:{self.ports[service]}{path}"

    def client_ssl(self, service: str) -> ssl.SSLContext | None:
        if catalog.service(service).serves_users_plain_http:
            return None
        return self.operator().client_context(tls.service_dns_name(service))

    def healthy(self, service: str) -> bool:
        context = self.client_ssl(service)
        try:
            with urllib.request.urlopen(self.url(service, "/health"), timeout=1, context=context) as answer:  # noqa: S310
                return bool(answer.status == 200)
        except OSError:
            return False

    def vault_reachable(self, service: str) -> float | None:
        return metric(f"http://127.0.0.1:{self.agent_port}/metrics", "vault_reachable", {"service": service})

    def service_metric(self, service: str, name: str) -> float | None:
        return metric(self.services[service].ops_url("/metrics"), name, {"service": service})

    def stop_process(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            process.stop()

    def close(self) -> None:
        for name in ("hello", "response", "vault-agent"):
            self.stop_process(name)
        self.bao.stop()

    def all_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))

    def secret_values(self) -> dict[str, str]:
        """Every secret this run knows, to look for in logs and process arguments."""
        values = {"root token": self.bao.token}
        for path in (self.root / "vault" / "approle").glob("*/secret-id"):
            values[f"secret-id {path.parent.name}"] = path.read_text().strip()
        for path in (self.root / "secrets").glob("*/admin-token"):
            values[f"admin token {path.parent.name}"] = path.read_text().strip()
        return values


def new_platform(cert_ttl_s: int) -> VaultPlatform:
    return VaultPlatform(Path(tempfile.mkdtemp(prefix="fd-vault-")), cert_ttl_s)


def remove(platform: VaultPlatform) -> None:
    platform.close()
    shutil.rmtree(platform.root, ignore_errors=True)


@dataclass
class LoadResult:
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


async def load_loop(
    platform: VaultPlatform, stop: asyncio.Event, *, concurrency: int = 4, max_requests: int = 100_000
) -> LoadResult:
    """GET /hello (plain to the edge, then hello -> response over mTLS) until ``stop``; half reconnect each time."""
    result = LoadResult()

    async def worker(fresh_connections: bool) -> None:
        connector = aiohttp.TCPConnector(force_close=fresh_connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            while not stop.is_set() and result.ok + result.failed < max_requests:
                try:
                    async with session.get(
                        platform.url("hello", "/hello"), timeout=aiohttp.ClientTimeout(total=5)
                    ) as answer:
                        await answer.read()
                        if answer.status == 200:
                            result.ok += 1
                        else:
                            result.failed += 1
                            result.errors.append(f"HTTP {answer.status}")
                except (aiohttp.ClientError, TimeoutError) as exc:
                    result.failed += 1
                    result.errors.append(f"{exc.__class__.__name__}: {str(exc)[:160]}")
                await asyncio.sleep(0.005)

    await asyncio.gather(*(worker(i % 2 == 0) for i in range(concurrency)))
    return result
