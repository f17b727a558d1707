"""NomadPlatform.admin_call against Consul's and Vault's HTTP APIs on loopback, and real ops apps.

As in test_nomad.py the cluster's APIs are small aiohttp fakes in a thread; the instances Consul
names are real ops apps (``create_ops_app`` with the debugging endpoints), so a call goes through
the discovery, the token read from Vault (the called service's own: ``secret/firedrill/<service>/admin``),
and the guard for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from scripts.cluster.client import make_client
from scripts.deploy_target.interface import PlatformError
from scripts.deploy_target.nomad import NomadPlatform
from scripts.vault.throwaway_pki import ThrowawayPki
from services.common.debug_endpoints import DEBUG_TOKEN_KEY
from services.common.tls import TlsMaterial
from services.common.web import create_ops_app
from tests.unit.helpers import Servers

TOKEN = "vault-held-admin-token"


@dataclass
class FakeCluster:
    """Consul's health API and Vault's KV v2 read, as much as the platform asks of them."""

    instances: list[dict[str, Any]] = field(default_factory=list)
    # Each service's own admin token, by service (KV v2 at secret/firedrill/<service>/admin).
    admin_tokens: dict[str, str] = field(default_factory=lambda: {"response": TOKEN})
    vault_tokens_seen: list[str] = field(default_factory=list)
    secrets_read: list[str] = field(default_factory=list)

    pki: ThrowawayPki | None = None
    issued: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/health/service/{service}", self.health)
        app.router.add_get("/v1/secret/data/firedrill/{service}/admin", self.secret)
        app.router.add_post("/v1/pki_int/issue/{role}", self.issue)
        return app

    async def issue(self, request: web.Request) -> web.Response:
        """Vault's pki_int/issue/<role>: a leaf from the test PKI, its chain apart, as Vault answers."""
        body = await request.json()
        self.issued.append({"role": request.match_info["role"], **body})
        assert self.pki is not None
        leaf = self.pki.issue(body["common_name"])
        chain = [self.pki.ca_pem.decode()]
        data = {"certificate": leaf.cert_pem.decode(), "private_key": leaf.key_pem.decode(), "ca_chain": chain}
        return web.json_response({"data": data})

    async def health(self, request: web.Request) -> web.Response:
        assert request.query.get("passing") == "1"
        service = request.match_info["service"]
        return web.json_response([e for e in self.instances if e["Service"]["Service"] == service])

    async def secret(self, request: web.Request) -> web.Response:
        self.vault_tokens_seen.append(request.headers.get("X-Vault-Token", ""))
        service = request.match_info["service"]
        self.secrets_read.append(service)
        if service not in self.admin_tokens:
            return web.json_response({"errors": []}, status=404)
        metadata = {"version": 1, "deletion_time": "", "destroyed": False}
        return web.json_response({"data": {"data": {"token": self.admin_tokens[service]}, "metadata": metadata}})


@pytest.fixture
def servers() -> Iterator[Servers]:
    running = Servers()
    try:
        yield running
    finally:
        running.close()


def ops_instance(servers: Servers, token: str | None = TOKEN, service: str = "response") -> dict[str, Any]:
    app = create_ops_app(service, CollectorRegistry())
    if token is not None:
        app[DEBUG_TOKEN_KEY] = token
    ops_port = servers.serve(app)
    return {
        "Node": {"Address": "127.0.0.1"},
        "Service": {"Service": service, "Address": "127.0.0.1", "Port": 1, "Meta": {"metrics_port": str(ops_port)}},
    }


def platform_for(servers: Servers, cluster: FakeCluster) -> NomadPlatform:
    port = servers.serve(cluster.app())
    environ = {"VAULT_TOKEN": "operator-vault-token"}
    return NomadPlatform(
        make_client({"NOMAD_ADDR": "http://127.0.0.1:1"}),
        consul_addr=f"127.0.0.1:{port}",
        vault_addr=f"http://127.0.0.1:{port}",
        environ=environ,
    )


def test_ops_call_reaches_every_healthy_instance_with_the_token_from_vault(servers: Servers) -> None:
    cluster = FakeCluster(instances=[ops_instance(servers), ops_instance(servers)])
    platform = platform_for(servers, cluster)
    answers = platform.admin_call("response", "GET", "/debug/tasks", port="ops")
    assert [a.status for a in answers] == [200, 200]
    assert len({a.instance for a in answers}) == 2
    assert all(isinstance(a.body["tasks"], list) for a in answers)
    assert cluster.vault_tokens_seen == ["operator-vault-token"]
    assert cluster.secrets_read == ["response"]


def test_each_service_is_called_with_its_own_token_from_vault(servers: Servers) -> None:
    tokens = {"response": TOKEN, "movie": "movie-own-token", "hello": "hello-own-token"}
    instances = [ops_instance(servers, token, service) for service, token in tokens.items()]
    cluster = FakeCluster(instances=instances, admin_tokens=tokens)
    platform = platform_for(servers, cluster)
    for service in ("movie", "hello"):
        [answer] = platform.admin_call(service, "GET", "/debug/tasks", port="ops")
        assert (answer.status, answer.instance.startswith("127.0.0.1")) == (200, True), service
    assert cluster.secrets_read == ["movie", "hello"]  # response's token was never read for them


def test_a_service_whose_token_is_missing_in_vault_is_a_platform_error(servers: Servers) -> None:
    cluster = FakeCluster(instances=[ops_instance(servers, "movie-own-token", "movie")])
    with pytest.raises(PlatformError, match="secret/firedrill/movie/admin"):
        platform_for(servers, cluster).admin_call("movie", "GET", "/debug/tasks", port="ops")


def test_a_refusal_is_an_answer_with_its_message(servers: Servers) -> None:
    cluster = FakeCluster(instances=[ops_instance(servers, token="another-token")])
    [answer] = platform_for(servers, cluster).admin_call("response", "POST", "/debug/heap/stop", port="ops")
    assert (answer.ok, answer.status) == (False, 403)
    assert answer.message() == "wrong admin token for the debugging endpoints"


def test_bad_input_is_answered_400_not_raised(servers: Servers) -> None:
    cluster = FakeCluster(instances=[ops_instance(servers)])
    [answer] = platform_for(servers, cluster).admin_call("response", "GET", "/debug/heap?top=0", port="ops")
    assert answer.status == 400


def test_no_healthy_instance_is_a_platform_error(servers: Servers) -> None:
    with pytest.raises(PlatformError, match="no healthy response instance in Consul"):
        platform_for(servers, FakeCluster()).admin_call("response", "GET", "/debug/tasks", port="ops")


def test_an_instance_without_an_ops_port_in_its_meta_is_named(servers: Servers) -> None:
    entry = ops_instance(servers)
    entry["Service"]["Meta"] = {}
    with pytest.raises(PlatformError, match="registers no metrics_port"):
        platform_for(servers, FakeCluster(instances=[entry])).admin_call("response", "GET", "/x", port="ops")


def mtls_instance(servers: Servers, pki: ThrowawayPki, folder: Path, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """response's API port as the platform meets it: TLS with a platform certificate, a client
    certificate required; it answers who called and with which token."""

    async def faults(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        names = [value for rdn in (peer or {}).get("subject", ()) for key, value in rdn if key == "commonName"]
        seen.append({"peer": names, "authorization": request.headers.get("Authorization"), **await request.json()})
        return web.json_response({"latency_ms": 0, "error_ratio": 0.5})

    app = web.Application()
    app.router.add_put("/admin/faults", faults)
    server = TlsMaterial(pki.write(folder, "response.service.consul"), "response").server_context()
    port = servers.serve(app, ssl_context=server)
    return {"Node": {"Address": "127.0.0.1"}, "Service": {"Service": "response", "Address": "127.0.0.1", "Port": port}}


def test_the_service_port_is_called_with_the_operator_certificate_from_vault(servers: Servers, tmp_path: Path) -> None:
    pki = ThrowawayPki("nomad-admin-call")
    seen: list[dict[str, Any]] = []
    cluster = FakeCluster(instances=[mtls_instance(servers, pki, tmp_path / "response", seen)], pki=pki)
    platform = platform_for(servers, cluster)
    platform.set_fault("response", error_ratio=0.5)
    assert seen == [{"peer": ["operator"], "authorization": f"Bearer {TOKEN}", "latency_ms": 0, "error_ratio": 0.5}]
    assert cluster.issued[0]["role"] == "operator"
    assert cluster.issued[0]["common_name"] == "operator"
    files = platform.operator_tls()
    assert files.key.stat().st_mode & 0o077 == 0
    assert files.key.parent.stat().st_mode & 0o077 == 0
    platform.admin_call("response", "PUT", "/admin/faults", body={"latency_ms": 0, "error_ratio": 0.5})
    assert len(cluster.issued) == 1  # one certificate per platform object


def test_a_service_certificate_from_another_ca_is_refused(servers: Servers, tmp_path: Path) -> None:
    """The platform verifies the service it sends the admin token to: an impostor with a certificate
    from another CA gets no token."""
    seen: list[dict[str, Any]] = []
    impostor = mtls_instance(servers, ThrowawayPki("impostor"), tmp_path / "impostor", seen)
    cluster = FakeCluster(instances=[impostor], pki=ThrowawayPki("nomad-admin-call"))
    with pytest.raises(PlatformError, match="CERTIFICATE_VERIFY_FAILED"):
        platform_for(servers, cluster).set_fault("response", error_ratio=0.5)
    assert seen == []


def test_the_service_port_is_called_over_https(servers: Servers) -> None:
    # A plain HTTP server where the platform expects TLS: the handshake fails, and the error names
    # the https URL the platform built from Consul's answer.
    entry = ops_instance(servers)
    plain = entry["Service"]["Meta"]["metrics_port"]
    entry["Service"]["Port"] = int(plain)
    cluster = FakeCluster(instances=[entry], pki=ThrowawayPki("nomad-admin-call"))
    with pytest.raises(PlatformError, match=rf"GET https://127\.0\.0\.1:{plain}/leak\?size=1 failed"):
        platform_for(servers, cluster).admin_call("response", "GET", "/leak?size=1")


def test_an_unknown_port_is_refused(servers: Servers) -> None:
    with pytest.raises(PlatformError, match="port must be one of api, ops"):
        platform_for(servers, FakeCluster()).admin_call("response", "GET", "/x", port="metrics")
