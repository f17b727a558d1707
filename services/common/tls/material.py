"""One identity's certificate, key and CA bundle, and every SSL context handed out from them."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from services.common.config import TlsFiles
from services.common.secrets_metrics import cert_expiry_gauge
from services.common.tls.contexts import ReloadableContext, Snapshot, build_context
from services.common.tls.files import TlsError, signature

# The logger name these lines had before tls became a package: log searches know it.
log = logging.getLogger("services.common.tls")

ReloadCallback = Callable[["TlsMaterial"], None]


class TlsMaterial:
    """One service's certificate, key and CA bundle, and every context built from them."""

    def __init__(self, files: TlsFiles, service: str) -> None:
        self.files = files
        self.service = service
        _, self._snapshot = build_context(files, server=True)
        self._servers: list[ReloadableContext] = []
        self._clients: list[ReloadableContext] = []
        self._callbacks: list[ReloadCallback] = []
        # Counts successful reloads: a consumer that copied the snapshot knows when it is stale.
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
        outer = ReloadableContext.around(inner, server=True, pinned=None)
        self._servers.append(outer)
        return outer

    def client_context(self, server_name: str | None = None) -> ssl.SSLContext:
        """For a client: present our certificate; verify the server's against the platform CA.

        ``server_name`` pins the name the server's certificate must carry, whatever address is
        dialled (every certificate has the IP SAN 127.0.0.1, so the address proves nothing); use
        ``service_dns_name(upstream)``, which local and cluster certificates both carry.
        """
        inner, _ = build_context(self.files, server=False)
        outer = ReloadableContext.around(inner, server=False, pinned=server_name)
        self._clients.append(outer)
        return outer

    def on_reload(self, callback: ReloadCallback) -> None:
        self._callbacks.append(callback)

    # -- rotation -----------------------------------------------------------------------------

    def changed(self) -> bool:
        try:
            return signature(self.files) != self._snapshot.signature
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

    def register_metrics(self, registry: CollectorRegistry = REGISTRY) -> None:
        cert_expiry_gauge(self.service, lambda: self._snapshot.not_after, registry)
