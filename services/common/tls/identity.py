"""The names a certificate speaks for, read from the certificate itself or from a verified peer.

cryptography is imported only where a certificate object is parsed (tools and tests): services
read their own certificate's facts with ``certificate_facts`` and their peers' from the ``ssl``
module, so the ones that verify no tokens never load it (about 10 MB resident each).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from services.common.tls.files import TlsError

if TYPE_CHECKING:
    from cryptography import x509

CONSUL_SUFFIX = ".service.consul"


def service_dns_name(service: str) -> str:
    """The name every certificate of ``service`` carries, locally and on the cluster (Consul DNS)."""
    return service + CONSUL_SUFFIX


def first_certificate(pem: bytes) -> x509.Certificate:
    from cryptography import x509

    certs = x509.load_pem_x509_certificates(pem)
    if not certs:
        raise TlsError("no PEM certificate found")
    return certs[0]


def cert_identities(cert: x509.Certificate) -> frozenset[str]:
    """The names a certificate speaks for: its CN and DNS SANs."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

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
