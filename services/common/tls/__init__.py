"""Mutual TLS for every service, from the files Vault renders, reloaded without a restart.

The files (``FIREDRILL_TLS_CERT_FILE`` / ``_KEY_FILE`` / ``_CA_FILE``, see ``ServiceConfig.tls``)
are written by the Vault renderer (``scripts.vault.agent`` locally, a Nomad ``template`` block on
a cluster) and replaced well before the certificate expires. ``TlsMaterial`` loads them once;
``service_tls`` then watches them and, on a change, every context is rebuilt and swapped in:

- the contexts handed to aiohttp (server and client) are ``ReloadableContext`` facades whose
  ``wrap_bio``/``wrap_socket`` delegate to the newest inner context, so each *new* handshake
  uses the new certificate and CA bundle while connections already open carry on untouched;
- gRPC servers get credentials (``services.common.grpc_credentials``) whose fetcher hands gRPC
  the new configuration before the next handshake.

A half-written set of files (new certificate, old key) fails to load, is logged, and is tried
again at the next poll; the previous context stays in service meanwhile.

Identity: a service's certificate has CN and DNS SAN ``<name>.service.consul`` plus ``localhost``
and the IP SAN 127.0.0.1 (what ``scripts/vault/identity_requests.py`` and the Nomad jobs ask Vault
for); a client-only identity (``OBSERVERS``) has CN ``<name>``. A client pins the name of
the service it calls (``client_context(server_name=...)``), because the IP SAN alone would match
any service's certificate. Every mTLS server serves only the peers
the catalog's allow-list names for it (``policy``), with ``services.common.web_peer_identity``
(aiohttp) or ``services.common.grpc_peer_identity`` (gRPC).

Modules, one concern each: ``files`` (reading and waiting for the files), ``identity`` (names in
certificates), ``policy`` (who may call whom), ``contexts`` (building SSL contexts),
``material`` (one identity's contexts and their reload), ``watch`` (keeping it current).
"""

from services.common.tls.contexts import ReloadableContext, Snapshot, build_context
from services.common.tls.files import TlsError, wait_for_files
from services.common.tls.identity import (
    CONSUL_SUFFIX,
    cert_identities,
    first_certificate,
    peer_identities,
    service_dns_name,
)
from services.common.tls.material import TlsMaterial
from services.common.tls.policy import OBSERVERS, accepted_names, allowed_callers, callers, grpc_callers
from services.common.tls.watch import service_tls

__all__ = [
    "CONSUL_SUFFIX",
    "OBSERVERS",
    "ReloadableContext",
    "Snapshot",
    "TlsError",
    "TlsMaterial",
    "accepted_names",
    "allowed_callers",
    "build_context",
    "callers",
    "cert_identities",
    "first_certificate",
    "grpc_callers",
    "peer_identities",
    "service_dns_name",
    "service_tls",
    "wait_for_files",
]
