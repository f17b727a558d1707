"""SSL contexts built from the TLS files, and the facade that lets them be swapped under a listener."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from services.common.config import TlsFiles
from services.common.tls.certificate_facts import certificate_facts
from services.common.tls.files import Signature, TlsError, read_all, signature

_LOAD_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent load of the files."""

    signature: Signature
    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes
    not_after: float
    serial: int
    identities: frozenset[str]


def build_context(files: TlsFiles, *, server: bool) -> tuple[ssl.SSLContext, Snapshot]:
    """A fresh context from the files, and the snapshot it was built from (retried if they change meanwhile)."""
    last_error: Exception | None = None
    for _ in range(_LOAD_ATTEMPTS):
        try:
            loaded_signature = signature(files)
            before = read_all(files)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(files.cert, files.key)
            context.load_verify_locations(cadata=before[2].decode("ascii"))
            context.verify_mode = ssl.CERT_REQUIRED
            # The CA file may hold only the issuing (intermediate) CA, as Vault's ``issuing_ca``
            # does: trust it as an anchor without requiring the root too.
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            if read_all(files) != before:
                raise TlsError("files changed while loading")
            facts = certificate_facts(before[0])
        except (OSError, ssl.SSLError, ValueError, TlsError) as exc:
            last_error = exc
            continue
        return context, Snapshot(
            signature=loaded_signature,
            cert_pem=before[0],
            key_pem=before[1],
            ca_pem=before[2],
            not_after=facts.not_after,
            serial=facts.serial,
            identities=facts.identities,
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

    @classmethod
    def around(cls, inner: ssl.SSLContext, *, server: bool, pinned: str | None) -> ReloadableContext:
        outer = cls(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
        outer.verify_mode = ssl.CERT_REQUIRED
        outer.swap(inner)
        outer.pin(pinned)
        return outer

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
