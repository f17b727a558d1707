"""Every identity the platform's CA issues, against every mTLS listener, compared with the catalog.

The local platform's agent renders a certificate for every identity that has a PKI role (the catalog
services and the client-only identities: ``scripts.vault.vaultapi.identities``). Each one calls
every mTLS listener the catalog names (``ServiceSpec.listeners``) once per kind of access:

- HTTP: a representative read (GET) and write (POST) route; refused means 403 ``peer_not_allowed``;
- gRPC: a read and a write method, without a token; refused means PERMISSION_DENIED (a served call
  goes on to the token check and answers UNAUTHENTICATED, or INVALID_ARGUMENT).

Every certificate here is genuine and valid, so every TLS handshake succeeds: the refusals are the
servers' caller checks, never the handshake (a failed handshake fails the test, it is not counted
as a refusal). The writes are shaped so that a served one changes nothing: an empty notification,
calls without a token.

The plain listeners are checked too: the edges and ops ports need no certificate, and /metrics is
served on the ops port only, which is what Prometheus scrapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import grpc.aio
import pytest

from scripts.movie.client import open_channel
from scripts.vault.local import tls_files
from scripts.vault.vaultapi import identities
from services.common import catalog, tls
from services.common.catalog import Access, Protocol
from services.common.config import TlsFiles
from services.common.waiting import wait_until
from services.genproto import auth_pb2, movie_pb2
from tests.integration.conftest import RunningPlatform

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class HttpCall:
    method: str
    path: str
    body: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class GrpcCall:
    method: str  # /package.Service/Method


def _grpc(descriptor: Any, service: str, method: str) -> GrpcCall:
    return GrpcCall(f"/{descriptor.services_by_name[service].full_name}/{method}")


# One read and one write per mTLS listener; a write that gets through changes nothing.
CALLS: dict[str, dict[Access, HttpCall | GrpcCall]] = {
    "response": {
        Access.READ: HttpCall("GET", "/response"),
        Access.WRITE: HttpCall("POST", "/log", {"level": "info", "message": "caller matrix"}),
    },
    "incidents": {
        Access.READ: HttpCall("GET", "/incidents"),
        Access.WRITE: HttpCall("POST", "/alerts", {}),  # not a notification: 400 when served
    },
    "metadata": {
        Access.READ: _grpc(movie_pb2.DESCRIPTOR, "MetadataService", "GetMetadata"),
        Access.WRITE: _grpc(movie_pb2.DESCRIPTOR, "MetadataService", "PutMetadata"),
    },
    "rating": {
        Access.READ: _grpc(movie_pb2.DESCRIPTOR, "RatingService", "GetAggregatedRating"),
        Access.WRITE: _grpc(movie_pb2.DESCRIPTOR, "RatingService", "PutRating"),
    },
    "movie": {
        Access.READ: _grpc(movie_pb2.DESCRIPTOR, "MovieService", "GetMovieDetails"),
        Access.WRITE: _grpc(movie_pb2.DESCRIPTOR, "MovieService", "RateMovie"),
    },
    "auth": {
        Access.READ: _grpc(auth_pb2.DESCRIPTOR, "AuthService", "ValidateToken"),
        Access.WRITE: _grpc(auth_pb2.DESCRIPTOR, "AuthService", "GetToken"),
    },
}


def mtls_listeners() -> list[catalog.Listener]:
    return [listener for spec in catalog.SERVICES for listener in spec.listeners if listener.mtls]


def test_every_mtls_listener_has_a_representative_call() -> None:
    assert {listener.service for listener in mtls_listeners()} == set(CALLS)


async def _http_refused(listener: catalog.Listener, call: HttpCall, identity: str, files: TlsFiles) -> bool:
    context = tls.TlsMaterial(files, identity).client_context(tls.service_dns_name(listener.service))
    url = f"https://127.0.0.1:{catalog.port(listener.port)}{call.path}"
    connector = aiohttp.TCPConnector(ssl=context, force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(call.method, url, json=call.body, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as answer,
    ):
        text = await answer.text()
    if answer.status == 403:
        assert json.loads(text)["error"]["code"] == "peer_not_allowed", text
        return True
    assert answer.status < 500, f"{identity}: {call.method} {call.path} answered {answer.status} {text}"
    return False


async def _grpc_refused(listener: catalog.Listener, call: GrpcCall, identity: str, files: TlsFiles) -> bool:
    address = f"127.0.0.1:{catalog.port(listener.port)}"
    async with open_channel(address, listener.service, files) as channel:
        method = channel.unary_unary(call.method)  # raw bytes: b"" is every method's empty request
        try:
            await method(b"", timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            code, details = exc.code(), exc.details()
        else:
            return False
    assert code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL), f"{identity}: {call.method}: {details}"
    return bool(code == grpc.StatusCode.PERMISSION_DENIED)


async def test_every_identity_against_every_mtls_listener_matches_the_catalog(local_platform: RunningPlatform) -> None:
    expected: dict[tuple[str, str, str], bool] = {}
    refused: dict[tuple[str, str, str], bool] = {}
    for listener in mtls_listeners():
        assert listener.callers is not None
        for access, call in CALLS[listener.service].items():
            for identity in identities():
                key = (listener.service, access.value, identity)
                files = tls_files(local_platform.state_dir, identity)
                expected[key] = identity not in listener.callers.allowed(access)
                if isinstance(call, HttpCall):
                    assert listener.protocol is Protocol.HTTP
                    refused[key] = await _http_refused(listener, call, identity, files)
                else:
                    assert listener.protocol is Protocol.GRPC
                    refused[key] = await _grpc_refused(listener, call, identity, files)
    verdict = {True: "refused", False: "served"}
    differences = [
        f"{service} {access} by {identity}: {verdict[refused[key]]}, the catalog says {verdict[expected[key]]}"
        for key in sorted(expected)
        if refused[key] != expected[key]
        for service, access, identity in (key,)
    ]
    assert not differences, "\n".join(differences)
    assert len(refused) == len(mtls_listeners()) * len(Access) * len(identities())


async def test_plain_listeners_need_no_certificate_and_only_ops_ports_serve_metrics(
    local_platform: RunningPlatform,
) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session:
        for spec in catalog.SERVICES:
            for listener in spec.listeners:
                if listener.mtls or listener.protocol is not Protocol.HTTP:
                    continue
                base = f"http://127.0.0.1:{catalog.port(listener.port)}"
                async with session.get(f"{base}/health") as health:
                    assert health.status == 200, f"{spec.name} {listener.role}"
                async with session.get(f"{base}/metrics") as metrics:
                    want = 200 if listener.role == "ops" else 404
                    assert metrics.status == want, f"{spec.name} {listener.role}: /metrics {metrics.status}"


def test_prometheus_scrapes_every_service_on_its_ops_port(local_platform: RunningPlatform) -> None:
    def scrape_urls() -> dict[str, str]:
        targets = local_platform.prometheus.targets()
        return {t["labels"]["service"]: t["scrapeUrl"] for t in targets if t["labels"].get("job") == "services"}

    wait_until(lambda: set(scrape_urls()) == set(catalog.service_names()), timeout_s=60, what="a target per service")
    assert scrape_urls() == {
        spec.name: f"http://127.0.0.1:{catalog.port(spec.scrape_port)}/metrics" for spec in catalog.SERVICES
    }
