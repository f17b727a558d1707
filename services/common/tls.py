"""Mutual TLS for every service, from the files Vault renders, reloaded without a restart.

The files (``FIREDRILL_TLS_CERT_FILE`` / ``_KEY_FILE`` / ``_CA_FILE``, see ``ServiceConfig.tls``)
are written by the Vault renderer (``scripts.vault.agent`` locally, a Nomad ``template`` block on
a cluster) and replaced well before the certificate expires. ``TlsMaterial`` loads them once,
then watches them (mtime/size/inode polling in a background task, and at once on SIGHUP, which
is what a Nomad template's ``change_mode = "signal"`` sends). On a change it builds a fresh
``ssl.SSLContext`` and swaps it in:

- the contexts handed to aiohttp (server and client) are ``ReloadableContext`` facades whose
  ``wrap_bio``/``wrap_socket`` delegate to the newest inner context, so each *new* handshake
  uses the new certificate and CA bundle while connections already open carry on untouched;
- gRPC servers get ``grpc.dynamic_ssl_server_credentials`` whose fetcher hands gRPC the new
  configuration before the next handshake.

A half-written set of files (new certificate, old key) fails to load, is logged, and is tried
again at the next poll; the previous context stays in service meanwhile.

Identity: a service's certificate has CN and DNS SAN ``<name>.service.consul`` plus ``localhost``
and the IP SAN 127.0.0.1 (what ``scripts/vault/identity_requests.py`` and the Nomad jobs ask Vault
for); a client-only identity (``OBSERVERS``) has CN ``<name>``. A client pins the name of
the service it calls (``client_context(server_name=...)``), because the IP SAN alone would match
any service's certificate. A server may restrict which peers it serves with
``peer_identity_middleware`` (aiohttp) or ``GrpcPeerIdentityInterceptor`` (gRPC).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import NameOID
from prometheus_client import REGISTRY, CollectorRegistry

from services.common import catalog
from services.common.config import ServiceConfig, TlsFiles
from services.common.secrets_metrics import cert_expiry_gauge
from services.common.waiting import TimedOut, wait_until_async

log = logging.getLogger(__name__)

# Client identities that are not catalog services: the metrics scraper, Alertmanager (posts to
# the incident receiver) and operator tooling (drills, probes, CLIs). Each has its own PKI role.
OBSERVERS: tuple[str, ...] = ("prometheus", "alertmanager", "operator")
DEFAULT_POLL_S = 1.0
DEFAULT_WAIT_S = 30.0
_LOAD_ATTEMPTS = 3


class TlsError(RuntimeError):
    """The TLS files are missing, unreadable, or do not form a usable certificate and key."""


def first_certificate(pem: bytes) -> x509.Certificate:
    certs = x509.load_pem_x509_certificates(pem)
    if not certs:
        raise TlsError("no PEM certificate found")
    return certs[0]


def cert_identities(cert: x509.Certificate) -> frozenset[str]:
    """The names a certificate speaks for: its CN and DNS SANs."""
    names = {str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    with contextlib.suppress(x509.ExtensionNotFound):
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names.update(san.get_values_for_type(x509.DNSName))
    return frozenset(names)


def peer_identities(peercert: dict[str, Any] | None) -> frozenset[str]:
    """The CN and DNS SANs of a verified peer, from ``SSLObject.getpeercert()``."""
    if not peercert:
        return frozenset()
    names: set[str] = set()
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                names.add(str(value))
    for kind, value in peercert.get("subjectAltName", ()):
        if kind == "DNS":
            names.add(str(value))
    return frozenset(names)


CONSUL_SUFFIX = ".service.consul"


def service_dns_name(service: str) -> str:
    """The name every certificate of ``service`` carries, locally and on the cluster (Consul DNS)."""
    return service + CONSUL_SUFFIX


def _accepted_names(allowed: Iterable[str]) -> frozenset[str]:
    """``hello`` is accepted as ``hello`` (local certificates) or ``hello.service.consul`` (cluster)."""
    names = set()
    for name in allowed:
        names.add(name)
        names.add(service_dns_name(name.removesuffix(CONSUL_SUFFIX)))
    return frozenset(names)


def allowed_callers(service: str) -> tuple[str, ...]:
    """Who may call ``service``: the catalog services that depend on it, plus the observers."""
    callers = [s.name for s in catalog.SERVICES if service in s.depends_on]
    return (*callers, *OBSERVERS)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent load of the files."""

    signature: tuple[tuple[int, int, int], ...]
    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes
    not_after: float
    serial: int
    identities: frozenset[str]


def _signature(files: TlsFiles) -> tuple[tuple[int, int, int], ...]:
    stats = [p.stat() for p in (files.cert, files.key, files.ca)]
    return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats)


def _read_all(files: TlsFiles) -> tuple[bytes, bytes, bytes]:
    return files.cert.read_bytes(), files.key.read_bytes(), files.ca.read_bytes()


def build_context(files: TlsFiles, *, server: bool) -> tuple[ssl.SSLContext, Snapshot]:
    """A fresh context from the files, and the snapshot it was built from (retried if they change meanwhile)."""
    last_error: Exception | None = None
    for _ in range(_LOAD_ATTEMPTS):
        try:
            signature = _signature(files)
            before = _read_all(files)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(files.cert, files.key)
            context.load_verify_locations(cadata=before[2].decode("ascii"))
            context.verify_mode = ssl.CERT_REQUIRED
            # The CA file may hold only the issuing (intermediate) CA, as Vault's ``issuing_ca``
            # does: trust it as an anchor without requiring the root too.
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            if _read_all(files) != before:
                raise TlsError("files changed while loading")
            cert = first_certificate(before[0])
        except (OSError, ssl.SSLError, ValueError, TlsError) as exc:
            last_error = exc
            continue
        return context, Snapshot(
            signature=signature,
            cert_pem=before[0],
            key_pem=before[1],
            ca_pem=before[2],
            not_after=cert.not_valid_after_utc.timestamp(),
            serial=cert.serial_number,
            identities=cert_identities(cert),
        )
    raise TlsError(f"cannot load TLS files (cert {files.cert}): {last_error}")


class ReloadableContext(ssl.SSLContext):
    """An SSLContext facade: each new TLS session is created by the newest inner context.

    asyncio (and so aiohttp) creates every TLS session through ``wrap_bio``; blocking sockets
    through ``wrap_socket``. Both delegate, so the object handed to a server or connector stays
    the same while the certificate and CA bundle behind it change.
    """

    _inner: ssl.SSLContext
    _pinned_name: str | None

    def swap(self, inner: ssl.SSLContext) -> None:
        self._inner = inner

    def pin(self, server_name: str | None) -> None:
        self._pinned_name = server_name

    @property
    def inner(self) -> ssl.SSLContext:
        return self._inner

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        name = None if server_side else (self._pinned_name or server_hostname)
        return self._inner.wrap_bio(incoming, outgoing, server_side=server_side, server_hostname=name, session=session)

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        name = None if server_side else (self._pinned_name or server_hostname)
        return self._inner.wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=name,
            session=session,
        )


def _facade(inner: ssl.SSLContext, *, server: bool, pinned: str | None) -> ReloadableContext:
    outer = ReloadableContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    outer.verify_mode = ssl.CERT_REQUIRED
    outer.swap(inner)
    outer.pin(pinned)
    return outer


ReloadCallback = Callable[["TlsMaterial"], None]


class TlsMaterial:
    """One service's certificate, key and CA bundle, and every context built from them."""

    def __init__(self, files: TlsFiles, service: str, *, poll_interval_s: float = DEFAULT_POLL_S) -> None:
        self.files = files
        self.service = service
        self.poll_interval_s = poll_interval_s
        _, self._snapshot = build_context(files, server=True)
        self._servers: list[ReloadableContext] = []
        self._clients: list[ReloadableContext] = []
        self._callbacks: list[ReloadCallback] = []
        self.generation = 0
        self.reload_failures = 0
        log.info("tls loaded", extra=self._describe())

    def _describe(self) -> dict[str, Any]:
        return {
            "tls_service": self.service,
            "cert_file": str(self.files.cert),
            "serial": f"{self._snapshot.serial:x}",
            "not_after": self._snapshot.not_after,
        }

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def not_after(self) -> float:
        return self._snapshot.not_after

    # -- contexts -----------------------------------------------------------------------------

    def server_context(self) -> ssl.SSLContext:
        """For a server: present our certificate, require a client certificate from the platform CA."""
        inner, _ = build_context(self.files, server=True)
        outer = _facade(inner, server=True, pinned=None)
        self._servers.append(outer)
        return outer

    def client_context(self, server_name: str | None = None) -> ssl.SSLContext:
        """For a client: present our certificate; verify the server's against the platform CA.

        ``server_name`` pins the name the server's certificate must carry, whatever address is
        dialled (every certificate has the IP SAN 127.0.0.1, so the address proves nothing); use
        ``service_dns_name(upstream)``, which local and cluster certificates both carry.
        """
        inner, _ = build_context(self.files, server=False)
        outer = _facade(inner, server=False, pinned=server_name)
        self._clients.append(outer)
        return outer

    def grpc_server_credentials(self) -> Any:
        """gRPC server credentials that require client certificates and follow rotations."""
        import grpc

        served = self.generation

        def config(snapshot: Snapshot) -> Any:
            return grpc.ssl_server_certificate_configuration(
                [(snapshot.key_pem, snapshot.cert_pem)], root_certificates=snapshot.ca_pem
            )

        def fetch() -> Any:
            nonlocal served
            if self.generation == served:
                return None
            served = self.generation
            return config(self._snapshot)

        return grpc.dynamic_ssl_server_credentials(config(self._snapshot), fetch, require_client_authentication=True)

    def grpc_channel_credentials(self) -> Any:
        """gRPC channel credentials from the current files (rebuild the channel in an ``on_reload`` callback)."""
        import grpc

        snapshot = self._snapshot
        return grpc.ssl_channel_credentials(
            root_certificates=snapshot.ca_pem, private_key=snapshot.key_pem, certificate_chain=snapshot.cert_pem
        )

    @staticmethod
    def grpc_channel_options(server_name: str) -> list[tuple[str, str]]:
        """Pin the name the server's certificate must carry (same reason as ``client_context``)."""
        return [("grpc.ssl_target_name_override", server_name)]

    def on_reload(self, callback: ReloadCallback) -> None:
        self._callbacks.append(callback)

    # -- rotation -----------------------------------------------------------------------------

    def changed(self) -> bool:
        try:
            return _signature(self.files) != self._snapshot.signature
        except OSError:
            return False  # a file is being replaced right now; look again at the next poll

    def reload(self) -> bool:
        """Rebuild every context from the files; False (and the old contexts kept) if they do not load."""
        try:
            servers = [build_context(self.files, server=True) for _ in self._servers]
            clients = [build_context(self.files, server=False) for _ in self._clients]
            snapshot = build_context(self.files, server=True)[1] if not servers else servers[0][1]
        except TlsError as exc:
            self.reload_failures += 1
            log.warning("tls reload failed; keeping the current certificate", extra={"reason": str(exc)[:200]})
            return False
        for outer, (inner, _) in zip(self._servers, servers, strict=True):
            outer.swap(inner)
        for outer, (inner, _) in zip(self._clients, clients, strict=True):
            outer.swap(inner)
        self._snapshot = snapshot
        self.generation += 1
        log.info("tls reloaded", extra=self._describe())
        for callback in self._callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("tls reload callback failed")
        return True

    def reload_if_changed(self) -> bool:
        return self.changed() and self.reload()

    async def watch(self) -> None:
        """Poll the files until cancelled."""
        while True:
            await asyncio.sleep(self.poll_interval_s)
            self.reload_if_changed()

    def register_metrics(self, registry: CollectorRegistry = REGISTRY) -> None:
        cert_expiry_gauge(self.service, lambda: self._snapshot.not_after, registry)


async def wait_for_files(files: TlsFiles, timeout_s: float = DEFAULT_WAIT_S, interval_s: float = 0.1) -> None:
    """Wait (bounded) until the renderer has written all three files; a service may start first."""
    paths: tuple[Path, ...] = (files.cert, files.key, files.ca)

    def missing() -> list[str]:
        return [str(p) for p in paths if not p.is_file() or p.stat().st_size == 0]

    try:
        await wait_until_async(lambda: not missing(), timeout_s=timeout_s, interval_s=interval_s)
    except TimedOut:
        raise TlsError(f"TLS files not rendered after {timeout_s:.0f}s: {', '.join(missing())}") from None


@contextlib.asynccontextmanager
async def service_tls(
    config: ServiceConfig,
    *,
    registry: CollectorRegistry = REGISTRY,
    wait_s: float = DEFAULT_WAIT_S,
    poll_interval_s: float = DEFAULT_POLL_S,
) -> AsyncIterator[TlsMaterial | None]:
    """The service's TLS material, watched for rotation while the block runs; None when TLS is off."""
    if config.tls is None:
        yield None
        return
    await wait_for_files(config.tls, wait_s)
    material = TlsMaterial(config.tls, config.name, poll_interval_s=poll_interval_s)
    material.register_metrics(registry)
    watcher = asyncio.create_task(material.watch())
    loop = asyncio.get_running_loop()
    hup_installed = False
    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
        loop.add_signal_handler(signal.SIGHUP, material.reload_if_changed)
        hup_installed = True
    try:
        yield material
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        if hup_installed:
            loop.remove_signal_handler(signal.SIGHUP)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def peer_identity_middleware(allowed: Iterable[str]) -> Any:
    """Refuse (403) requests whose verified client certificate names none of ``allowed``."""
    from services.common.web import json_error

    allowed_names = _accepted_names(allowed)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        peer = peer_identities(transport.get_extra_info("peercert") if transport is not None else None)
        if not peer & allowed_names:
            log.warning("refused peer", extra={"peer": ",".join(sorted(peer)) or "<none>", "path": request.path})
            return json_error(403, "peer_not_allowed", "this client's certificate may not call this service")
        return await handler(request)

    return middleware


def grpc_peer_identities(context: Any) -> frozenset[str]:
    """CN and DNS SANs of a gRPC peer, from ``context.auth_context()``."""
    auth = context.auth_context() or {}
    names: set[str] = set()
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        for value in auth.get(key, ()):
            names.add(value.decode() if isinstance(value, bytes) else str(value))
    return frozenset(names)


def grpc_peer_allowed(context: Any, allowed: Iterable[str]) -> bool:
    return bool(grpc_peer_identities(context) & _accepted_names(allowed))
