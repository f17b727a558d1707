"""The three facts a service reports about its own certificate, read from the DER bytes directly.

OpenSSL (the ``ssl`` module) loads, verifies and presents the certificate; this module only reads
when it expires (the expiry gauge behind ``CertificateExpiringSoon``), its serial number (the
reload log) and the names it carries (CN and DNS SANs). Reading them with the cryptography
package costs each process about 10 MB of resident memory for the import, and hello, response and
incidents use cryptography for nothing else (issue 16: memory footprint; the gRPC services load
it anyway to verify tokens).

Only the path through the structure to those fields is walked (RFC 5280, section 4.1):

    Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber INTEGER, signature,
        issuer Name, validity SEQUENCE { notBefore, notAfter }, subject Name,
        subjectPublicKeyInfo, [1] issuerUniqueID OPTIONAL, [2] subjectUniqueID OPTIONAL,
        [3] extensions OPTIONAL }

Anything malformed raises ``CertificateFormatError`` (a ``ValueError``), never reads past the data.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime

_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL)

SEQUENCE, SET, INTEGER, OID = 0x30, 0x31, 0x02, 0x06
UTC_TIME, GENERALIZED_TIME = 0x17, 0x18
VERSION_TAG, EXTENSIONS_TAG = 0xA0, 0xA3  # [0] and [3], constructed (EXPLICIT)
DNS_NAME_TAG = 0x82  # GeneralName dNSName: [2] IMPLICIT IA5String
OCTET_STRING = 0x04
COMMON_NAME_OID = bytes((0x55, 0x04, 0x03))  # 2.5.4.3
SUBJECT_ALT_NAME_OID = bytes((0x55, 0x1D, 0x11))  # 2.5.29.17
# The string types an attribute value may use, and how their bytes decode.
_STRING_ENCODINGS = {
    0x0C: "utf-8",  # UTF8String
    0x13: "ascii",  # PrintableString
    0x16: "ascii",  # IA5String
    0x14: "latin-1",  # TeletexString (as cryptography reads it)
    0x1E: "utf-16-be",  # BMPString
    0x1C: "utf-32-be",  # UniversalString
}


class CertificateFormatError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    not_after: float  # seconds since the epoch
    serial: int
    identities: frozenset[str]  # CN and DNS SANs


@dataclass(frozen=True, slots=True)
class _Element:
    tag: int
    start: int  # first byte of the contents
    end: int  # one past the last byte


def _element(data: bytes, pos: int, limit: int) -> _Element:
    if pos + 2 > limit:
        raise CertificateFormatError("truncated DER element")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if tag & 0x1F == 0x1F:
        raise CertificateFormatError("multi-byte DER tags do not occur in certificates")
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or pos + count > limit:
            raise CertificateFormatError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > limit:
        raise CertificateFormatError("DER element longer than its container")
    return _Element(tag, pos, pos + length)


def _children(data: bytes, parent: _Element) -> list[_Element]:
    children, pos = [], parent.start
    while pos < parent.end:
        child = _element(data, pos, parent.end)
        children.append(child)
        pos = child.end
    return children


def _expect(element: _Element, tag: int, what: str) -> _Element:
    if element.tag != tag:
        raise CertificateFormatError(f"{what}: DER tag {element.tag:#x}, expected {tag:#x}")
    return element


def _time(data: bytes, element: _Element) -> float:
    text = data[element.start : element.end].decode("ascii", "replace")
    if element.tag == UTC_TIME and re.fullmatch(r"\d{12}Z", text):
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"  # RFC 5280, 4.1.2.5.1
    elif not (element.tag == GENERALIZED_TIME and re.fullmatch(r"\d{14}Z", text)):
        raise CertificateFormatError(f"unsupported certificate time {text!r}")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC).timestamp()


def _string(data: bytes, element: _Element) -> str:
    encoding = _STRING_ENCODINGS.get(element.tag)
    if encoding is None:
        raise CertificateFormatError(f"unsupported string type {element.tag:#x}")
    try:
        return data[element.start : element.end].decode(encoding)
    except UnicodeDecodeError as exc:
        raise CertificateFormatError(f"undecodable name: {exc}") from None


def _common_names(data: bytes, name: _Element) -> set[str]:
    names = set()
    for relative in _children(data, _expect(name, SEQUENCE, "Name")):
        for attribute in _children(data, _expect(relative, SET, "RelativeDistinguishedName")):
            kind, value = _children(data, _expect(attribute, SEQUENCE, "AttributeTypeAndValue"))[:2]
            _expect(kind, OID, "attribute type")
            if data[kind.start : kind.end] == COMMON_NAME_OID:
                names.add(_string(data, value))
    return names


def _dns_names(data: bytes, extensions: _Element) -> set[str]:
    names: set[str] = set()
    (sequence,) = _children(data, extensions)
    for extension in _children(data, _expect(sequence, SEQUENCE, "Extensions")):
        parts = _children(data, _expect(extension, SEQUENCE, "Extension"))
        if data[parts[0].start : parts[0].end] != SUBJECT_ALT_NAME_OID:
            continue
        value = _expect(parts[-1], OCTET_STRING, "extnValue")
        (general_names,) = _children(data, value)
        for general_name in _children(data, _expect(general_names, SEQUENCE, "GeneralNames")):
            if general_name.tag == DNS_NAME_TAG:
                names.add(data[general_name.start : general_name.end].decode("ascii"))
    return names


def _read_facts(der: bytes) -> CertificateFacts:
    certificate = _expect(_element(der, 0, len(der)), SEQUENCE, "Certificate")
    tbs = _expect(_children(der, certificate)[0], SEQUENCE, "TBSCertificate")
    fields = _children(der, tbs)
    if fields and fields[0].tag == VERSION_TAG:
        fields = fields[1:]
    if len(fields) < 6:
        raise CertificateFormatError("TBSCertificate has too few fields")
    serial_element, _, _, validity, subject, _, *optional = fields
    serial = _expect(serial_element, INTEGER, "serialNumber")
    _, not_after = _children(der, _expect(validity, SEQUENCE, "Validity"))
    names = _common_names(der, subject)
    for element in optional:
        if element.tag == EXTENSIONS_TAG:
            names |= _dns_names(der, element)
    return CertificateFacts(
        not_after=_time(der, not_after),
        serial=int.from_bytes(der[serial.start : serial.end], "big", signed=True),
        identities=frozenset(names),
    )


def der_facts(der: bytes) -> CertificateFacts:
    """The facts of one DER-encoded certificate."""
    try:
        return _read_facts(der)
    except CertificateFormatError:
        raise
    except (IndexError, ValueError) as exc:  # a field list shorter than the structure needs
        raise CertificateFormatError(f"malformed certificate: {exc}") from None


def certificate_facts(pem: bytes) -> CertificateFacts:
    """The facts of the first certificate in ``pem`` (a certificate file may carry its chain after it)."""
    found = _PEM_CERTIFICATE.search(pem)
    if found is None:
        raise CertificateFormatError("no PEM certificate found")
    try:
        der = base64.b64decode(found.group(1), validate=False)
    except binascii.Error as exc:
        raise CertificateFormatError(f"bad PEM base64: {exc}") from None
    return der_facts(der)
