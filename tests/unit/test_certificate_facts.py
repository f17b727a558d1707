"""A service's own certificate facts read from DER agree with cryptography's reading of them."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from scripts.vault.throwaway_pki import ThrowawayPki
from services.common.tls import cert_identities
from services.common.tls.certificate_facts import CertificateFormatError, certificate_facts, der_facts

KEY = ec.generate_private_key(ec.SECP256R1())


def make_certificate(
    name: x509.Name,
    *,
    sans: list[x509.GeneralName] | None,
    not_after: dt.datetime,
    serial: int = 0x1234_5678_9ABC_DEF0_1234_5678_9ABC_DEF0_1234_5678,
    critical_san: bool = False,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test issuer")]))
        .public_key(KEY.public_key())
        .serial_number(serial)
        .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=critical_san)
    return builder.sign(KEY, hashes.SHA256())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def assert_agrees(cert: x509.Certificate) -> None:
    facts = certificate_facts(pem(cert))
    assert facts.not_after == cert.not_valid_after_utc.timestamp()
    assert facts.serial == cert.serial_number
    assert facts.identities == cert_identities(cert)


@pytest.mark.parametrize(
    "not_after",
    [
        dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.UTC),  # UTCTime
        dt.datetime(2051, 12, 31, 23, 59, 58, tzinfo=dt.UTC),  # GeneralizedTime (2050 and later)
    ],
)
def test_a_service_certificate_reads_as_cryptography_reads_it(not_after: dt.datetime) -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "firedrill"),
            x509.NameAttribute(NameOID.COMMON_NAME, "rating.service.consul"),
        ]
    )
    sans: list[x509.GeneralName] = [
        x509.DNSName("rating.service.consul"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
        x509.UniformResourceIdentifier("spiffe://firedrill/rating"),
    ]
    assert_agrees(make_certificate(name, sans=sans, not_after=not_after))


def test_names_without_alternative_names_critical_extensions_and_unicode() -> None:
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    operator = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "operator")])
    assert_agrees(make_certificate(operator, sans=None, not_after=later, serial=1))
    unicode_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opérateur")])
    assert_agrees(make_certificate(unicode_name, sans=[x509.DNSName("a.b")], not_after=later, critical_san=True))
    # Go's crypto/x509, which Vault and OpenBao issue with, writes a CN as PrintableString when it can.
    printable = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hello", _type=_ASN1Type.PrintableString)])
    assert_agrees(make_certificate(printable, sans=[], not_after=later))


def test_the_first_certificate_of_a_chain_and_the_pki_the_tests_use() -> None:
    pki = ThrowawayPki()
    leaf = pki.issue("metadata")
    chain = leaf.cert_pem + pki.issue("auth").cert_pem
    assert certificate_facts(chain) == certificate_facts(leaf.cert_pem)
    assert_agrees(x509.load_pem_x509_certificate(leaf.cert_pem))


@pytest.mark.parametrize(
    "pem_bytes",
    [
        b"",
        b"not a certificate",
        b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",  # an empty SEQUENCE
    ],
)
def test_what_is_not_a_certificate_is_refused_with_a_format_error(pem_bytes: bytes) -> None:
    with pytest.raises(CertificateFormatError):
        certificate_facts(pem_bytes)


def test_truncated_or_overlong_der_never_reads_past_the_data() -> None:
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    operator = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "operator")])
    der = make_certificate(operator, sans=[x509.DNSName("x")], not_after=later).public_bytes(serialization.Encoding.DER)
    for cut in (1, 2, 10, len(der) // 2, len(der) - 1):
        with pytest.raises(CertificateFormatError):
            der_facts(der[:cut])
    with pytest.raises(CertificateFormatError):
        der_facts(bytes((0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF)) + der)  # claims 4 GB
