"""A throwaway in-memory PKI (root, intermediate, leaves) for benches and tests.

Shaped like the platform's Vault PKI (root -> intermediate -> leaf with the service name as CN
and DNS SAN, plus localhost and the IP SAN 127.0.0.1), so TLS code can be exercised without a
Vault. Never used by the platform itself.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scripts.vault.private_file import write_private
from services.common.config import TlsFiles
from services.common.tls import service_dns_name


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass
class Leaf:
    cert_pem: bytes  # leaf + intermediate
    key_pem: bytes
    not_after: dt.datetime


class ThrowawayPki:
    def __init__(self, name: str = "firedrill-test") -> None:
        now = dt.datetime.now(dt.UTC)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{name} root"))
            .issuer_name(_name(f"{name} root"))
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        int_key = ec.generate_private_key(ec.SECP256R1())
        intermediate = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{name} intermediate"))
            .issuer_name(root.subject)
            .public_key(int_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=20))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(int_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        self.root = Authority(root, root_key)
        self.intermediate = Authority(intermediate, int_key)

    @property
    def ca_pem(self) -> bytes:
        return _pem(self.intermediate.cert) + _pem(self.root.cert)

    def issue(
        self, common_name: str, *, valid_for: dt.timedelta = dt.timedelta(hours=1), expired: bool = False
    ) -> Leaf:
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        not_before, not_after = (
            (now - dt.timedelta(hours=2), now - dt.timedelta(hours=1))
            if expired
            else (
                now - dt.timedelta(minutes=1),
                now + valid_for,
            )
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.intermediate.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName(common_name),
                        x509.DNSName(service_dns_name(common_name)),
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.intermediate.key.public_key()), critical=False
            )
            .sign(self.intermediate.key, hashes.SHA256())
        )
        return Leaf(_pem(cert) + _pem(self.intermediate.cert), _pem_key(key), not_after)

    def write(
        self,
        folder: Path,
        common_name: str,
        *,
        valid_for: dt.timedelta = dt.timedelta(hours=1),
        expired: bool = False,
    ) -> TlsFiles:
        """Issue a leaf for ``common_name`` and write cert.pem, key.pem, ca.pem (0600) into ``folder``."""
        leaf = self.issue(common_name, valid_for=valid_for, expired=expired)
        folder.mkdir(parents=True, exist_ok=True)
        files = TlsFiles(folder / "cert.pem", folder / "key.pem", folder / "ca.pem")
        for path, content in ((files.ca, self.ca_pem), (files.key, leaf.key_pem), (files.cert, leaf.cert_pem)):
            write_private(path, content)
        return files
