"""services.common.tls over real TLS handshakes on loopback, with a throwaway PKI (no Vault)."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from prometheus_client import CollectorRegistry

from scripts.vault.throwaway_pki import ThrowawayPki
from services.common import catalog, tls
from services.common.config import TlsFiles
from services.common.grpc_credentials import channel_credentials, channel_options, server_credentials
from services.common.waiting import wait_until_async
from services.common.web_peer_identity import peer_identity_middleware
from tests.unit.helpers import service_config


@pytest.fixture(scope="module")
def pki() -> ThrowawayPki:
    return ThrowawayPki()


@pytest.fixture(scope="module")
def other_pki() -> ThrowawayPki:
    return ThrowawayPki("someone-else")


@dataclass
class Server:
    url: str
    material: tls.TlsMaterial
    files: TlsFiles
    entered: asyncio.Event
    release: asyncio.Event


async def _serve(files: TlsFiles, *, allowed: catalog.Callers | None) -> AsyncIterator[Server]:
    material = tls.TlsMaterial(files, "response")
    entered = asyncio.Event()
    release = asyncio.Event()

    async def hello(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def held(_: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.json_response({"held": True})

    app = web.Application()
    if allowed is not None:
        app.middlewares.append(peer_identity_middleware(allowed))
    app.router.add_get("/", hello)
    app.router.add_post("/", hello)
    app.router.add_get("/held", held)
    app.router.add_get("/burn", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    port = unused_port()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=material.server_context())
    await site.start()
    try:
        yield Server(f"https://127.0.0.1:{port}", material, files, entered, release)
    finally:
        release.set()
        await runner.cleanup()


@pytest.fixture
async def server(pki: ThrowawayPki, tmp_path: Path) -> AsyncIterator[Server]:
    callers = catalog.Callers(read=("hello", "operator"), write=("operator",), write_paths=frozenset({"/burn"}))
    async for running in _serve(pki.write(tmp_path / "response", "response"), allowed=callers):
        yield running


@pytest.fixture
async def open_server(pki: ThrowawayPki, tmp_path: Path) -> AsyncIterator[Server]:
    async for running in _serve(pki.write(tmp_path / "response", "response"), allowed=None):
        yield running


def client_ctx(files: TlsFiles, server_name: str | None = "response") -> ssl.SSLContext:
    return tls.TlsMaterial(files, "client").client_context(server_name)


async def get(url: str, ctx: ssl.SSLContext | bool | None) -> tuple[int, str]:
    connector = aiohttp.TCPConnector(ssl=ctx if ctx is not None else False, force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as answer,
    ):
        return answer.status, await answer.text()


async def test_a_client_of_the_platform_ca_is_served(server: Server, pki: ThrowawayPki, tmp_path: Path) -> None:
    status, body = await get(server.url + "/", client_ctx(pki.write(tmp_path / "hello", "hello")))
    assert (status, body) == (200, '{"ok": true}')


async def test_plain_text_clients_are_refused(server: Server) -> None:
    with pytest.raises(aiohttp.ClientError):
        await get(server.url.replace("https://", "http://") + "/", None)


async def test_clients_without_a_certificate_are_refused(server: Server, pki: ThrowawayPki) -> None:
    no_cert = ssl.create_default_context(cadata=pki.ca_pem.decode())
    no_cert.check_hostname = False
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await get(server.url + "/", no_cert)


async def test_certificates_from_another_ca_are_refused(
    server: Server, other_pki: ThrowawayPki, pki: ThrowawayPki, tmp_path: Path
) -> None:
    files = other_pki.write(tmp_path / "intruder", "hello")
    # The intruder trusts our CA (so it could verify us), but its own certificate is not ours.
    files.ca.write_bytes(pki.ca_pem)
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await get(server.url + "/", client_ctx(files))


async def test_expired_certificates_are_refused(server: Server, pki: ThrowawayPki, tmp_path: Path) -> None:
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await get(server.url + "/", client_ctx(pki.write(tmp_path / "old", "hello", expired=True)))


async def test_a_reader_may_not_write(server: Server, pki: ThrowawayPki, tmp_path: Path) -> None:
    hello = client_ctx(pki.write(tmp_path / "hello", "hello"))
    operator = client_ctx(pki.write(tmp_path / "operator", "operator"))
    connector = aiohttp.TCPConnector(ssl=hello, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session, session.post(server.url + "/") as answer:
        assert answer.status == 403
        assert "may not write" in await answer.text()
    connector = aiohttp.TCPConnector(ssl=operator, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session, session.post(server.url + "/") as answer:
        assert answer.status == 200


async def test_each_request_on_a_kept_alive_connection_is_judged_by_its_access(
    server: Server, pki: ThrowawayPki, tmp_path: Path
) -> None:
    # The peer's verdict is worked out once per connection: reads, writes and write paths on the
    # same connection, alternating, each get their own answer; another peer's connection its own.
    hello = aiohttp.TCPConnector(ssl=client_ctx(pki.write(tmp_path / "hello", "hello")), limit=1)
    operator = aiohttp.TCPConnector(ssl=client_ctx(pki.write(tmp_path / "operator", "operator")), limit=1)
    async with aiohttp.ClientSession(connector=hello) as reader, aiohttp.ClientSession(connector=operator) as writer:
        for _ in range(2):
            for session, method, path, expected in (
                (reader, "GET", "/", 200),
                (writer, "POST", "/", 200),
                (reader, "POST", "/", 403),
                (reader, "GET", "/burn", 403),
                (writer, "GET", "/burn", 200),
            ):
                async with session.request(method, server.url + path) as answer:
                    assert (method, path, answer.status) == (method, path, expected)
                    await answer.read()
        assert len(hello._conns) == 1  # one connection carried all of the reader's requests


async def test_a_certificate_for_another_service_is_refused_where_identity_is_checked(
    server: Server, open_server: Server, pki: ThrowawayPki, tmp_path: Path
) -> None:
    metadata = client_ctx(pki.write(tmp_path / "metadata", "metadata"))
    status, body = await get(server.url + "/", metadata)
    assert status == 403
    assert "peer_not_allowed" in body
    # Without an identity check, any certificate of the platform CA is enough.
    assert (await get(open_server.url + "/", metadata))[0] == 200


async def test_the_client_pins_the_server_name(open_server: Server, pki: ThrowawayPki, tmp_path: Path) -> None:
    hello = pki.write(tmp_path / "hello", "hello")
    # The server presents "response"; a client expecting "metadata" must not talk to it,
    # although the address (127.0.0.1) is in the certificate's SANs.
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await get(open_server.url + "/", client_ctx(hello, server_name="metadata"))
    assert (await get(open_server.url + "/", client_ctx(hello, server_name="response")))[0] == 200


def _served_serial(url: str, ca_pem: bytes, client: TlsFiles | None = None) -> int:
    """The serial number of the certificate a server presents in a fresh handshake."""
    import socket

    from cryptography import x509

    host, port = url.removeprefix("https://").split(":")
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    ctx.check_hostname = False
    if client is not None:
        ctx.load_cert_chain(client.cert, client.key)
        ctx.set_alpn_protocols(["h2"])

    with socket.create_connection((host, int(port)), timeout=5) as raw, ctx.wrap_socket(raw) as conn:
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def test_rotation_swaps_the_certificate_without_dropping_in_flight_requests(
    open_server: Server, pki: ThrowawayPki, tmp_path: Path
) -> None:
    hello = client_ctx(pki.write(tmp_path / "hello", "hello"))
    first = await asyncio.to_thread(_served_serial, open_server.url, pki.ca_pem)
    in_flight = asyncio.create_task(get(open_server.url + "/held", hello))
    await asyncio.wait_for(open_server.entered.wait(), 5)  # the request is being served
    pki.write(open_server.files.cert.parent, "response")
    assert open_server.material.reload_if_changed()
    second = await asyncio.to_thread(_served_serial, open_server.url, pki.ca_pem)
    assert second != first
    assert (await get(open_server.url + "/", hello))[0] == 200
    open_server.release.set()
    assert (await in_flight)[0] == 200


async def test_a_half_written_rotation_keeps_the_current_certificate(
    open_server: Server, pki: ThrowawayPki, tmp_path: Path
) -> None:
    before = open_server.material.snapshot.serial
    other = pki.issue("response")
    open_server.files.cert.write_bytes(other.cert_pem)  # new certificate, old key: does not load
    assert not open_server.material.reload_if_changed()
    assert open_server.material.snapshot.serial == before
    assert open_server.material.reload_failures == 1
    hello = client_ctx(pki.write(tmp_path / "hello", "hello"))
    assert (await get(open_server.url + "/", hello))[0] == 200
    open_server.files.key.write_bytes(other.key_pem)  # the key arrives: now it loads
    assert open_server.material.reload_if_changed()
    assert open_server.material.snapshot.serial != before


def test_cert_expiry_gauge_counts_down_from_the_loaded_certificate(pki: ThrowawayPki, tmp_path: Path) -> None:
    import datetime as dt

    files = pki.write(tmp_path / "hello", "hello", valid_for=dt.timedelta(minutes=10))
    material = tls.TlsMaterial(files, "hello")
    registry = CollectorRegistry()
    material.register_metrics(registry)
    left = registry.get_sample_value("tls_cert_expiry_seconds", {"service": "hello"})
    assert left is not None
    assert 500 < left <= 600


def test_identities_and_allowed_callers(pki: ThrowawayPki) -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificates(pki.issue("rating").cert_pem)[0]
    assert tls.cert_identities(cert) == {"rating", "rating.service.consul", "localhost"}
    assert tls.allowed_callers("response") == ("hello", "operator")
    assert tls.callers("incidents") == catalog.Callers(read=("operator",), write=("alertmanager",))
    assert tls.grpc_callers("rating") == ("movie", "operator")
    assert tls.allowed_callers("hello") == ()  # a plain listener has no allow-list
    peer = {"subject": ((("commonName", "hello"),),), "subjectAltName": (("DNS", "hello"), ("IP Address", "127.0.0.1"))}
    assert tls.peer_identities(peer) == {"hello"}
    assert tls.peer_identities(None) == frozenset()


async def test_service_tls_is_off_without_files(tmp_path: Path) -> None:
    async with tls.service_tls(service_config("hello", tmp_path)) as material:
        assert material is None


async def test_service_tls_waits_for_the_renderer_then_watches_and_reloads_on_sighup(
    pki: ThrowawayPki, tmp_path: Path
) -> None:
    folder = tmp_path / "secrets" / "hello"
    files = TlsFiles(folder / "cert.pem", folder / "key.pem", folder / "ca.pem")
    config = replace(service_config("hello", tmp_path), tls=files)

    async def render_later() -> None:
        await asyncio.sleep(0.2)
        pki.write(folder, "hello")

    renderer = asyncio.create_task(render_later())
    registry = CollectorRegistry()
    async with tls.service_tls(config, registry=registry, wait_s=5, poll_interval_s=60) as material:
        assert material is not None
        await renderer
        first = material.snapshot.serial
        pki.write(folder, "hello")
        os.kill(os.getpid(), signal.SIGHUP)  # the poll interval is 60 s: only the signal can reload now
        await wait_until_async(
            lambda: material.snapshot.serial != first, timeout_s=5, interval_s=0.01, what="a reload on SIGHUP"
        )


async def test_service_tls_gives_up_after_the_wait(tmp_path: Path) -> None:
    folder = tmp_path / "never"
    config = replace(
        service_config("hello", tmp_path), tls=TlsFiles(folder / "c.pem", folder / "k.pem", folder / "ca.pem")
    )
    with pytest.raises(tls.TlsError, match="not rendered"):
        async with tls.service_tls(config, registry=CollectorRegistry(), wait_s=0.2):
            pass


# -- gRPC ---------------------------------------------------------------------------------------


@pytest.fixture
async def grpc_server(pki: ThrowawayPki, tmp_path: Path) -> AsyncIterator[tuple[str, tls.TlsMaterial]]:
    import grpc
    from grpc_health.v1 import health, health_pb2_grpc

    material = tls.TlsMaterial(pki.write(tmp_path / "rating", "rating"), "rating")
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(material))
    await server.start()
    try:
        yield f"127.0.0.1:{port}", material
    finally:
        await server.stop(grace=None)


async def _grpc_check(target: str, credentials: object, server_name: str = "rating") -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.secure_channel(target, credentials, options=channel_options(server_name)) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=3)


async def test_grpc_requires_a_client_certificate_and_follows_rotation(
    grpc_server: tuple[str, tls.TlsMaterial], pki: ThrowawayPki, other_pki: ThrowawayPki, tmp_path: Path
) -> None:
    import grpc

    target, material = grpc_server
    movie = tls.TlsMaterial(pki.write(tmp_path / "movie", "movie"), "movie")
    await _grpc_check(target, channel_credentials(movie))
    with pytest.raises(grpc.aio.AioRpcError):
        await _grpc_check(target, grpc.ssl_channel_credentials(root_certificates=pki.ca_pem))
    intruder = tls.TlsMaterial(other_pki.write(tmp_path / "intruder", "movie"), "movie")
    with pytest.raises(grpc.aio.AioRpcError):
        await _grpc_check(target, channel_credentials(intruder))
    with pytest.raises(grpc.aio.AioRpcError):
        await _grpc_check(target, channel_credentials(movie), server_name="metadata")
    # Rotate the server's certificate: the next handshake is served with the new one.
    first = await asyncio.to_thread(_served_serial, "https://" + target, pki.ca_pem, movie.files)
    pki.write(material.files.cert.parent, "rating")
    assert material.reload_if_changed()
    await _grpc_check(target, channel_credentials(movie))
    second = await asyncio.to_thread(_served_serial, "https://" + target, pki.ca_pem, movie.files)
    assert second == material.snapshot.serial != first


async def test_cluster_style_certificates_match_by_consul_name(
    server: Server, open_server: Server, pki: ThrowawayPki, tmp_path: Path
) -> None:
    # On Nomad the certificate's CN is "hello.service.consul" and there is no bare "hello" SAN.
    cluster_hello = pki.write(tmp_path / "cluster-hello", "hello.service.consul")
    ctx = client_ctx(cluster_hello, server_name=tls.service_dns_name("response"))
    assert (await get(server.url + "/", ctx))[0] == 200
    assert tls.service_dns_name("response") == "response.service.consul"


async def test_a_write_path_is_refused_to_readers_whatever_its_method(
    server: Server, pki: ThrowawayPki, tmp_path: Path
) -> None:
    reader = client_ctx(pki.write(tmp_path / "hello", "hello"))
    writer = client_ctx(pki.write(tmp_path / "operator", "operator"))
    assert (await get(server.url + "/", reader))[0] == 200
    status, body = await get(server.url + "/burn", reader)
    assert status == 403, body
    assert "may not write" in body
    assert (await get(server.url + "/burn", writer))[0] == 200
