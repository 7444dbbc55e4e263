"""A TLS node's certificate: made, loaded and described as TheNodes reads it.

TheNodes (0.2.0, 0.4.0) never makes a certificate: with TLS on and no files at
``[encryption.paths] own_certificate`` / ``own_private_key`` it fails every inbound handshake.
A hostsim node makes one there at its first start instead (:func:`ensure_certificate`), as it
makes its node id file, and ``hostsim cert`` makes one on demand. What is made suits both
versions (checked against the real builds):

- a P-256 key (a P-384 one fails in TheNodes 0.2.0 with ``accept_self_signed``), written as
  unencrypted PKCS#8 PEM (TheNodes reads PKCS#8 or RSA keys only), mode 0600;
- a self-signed X.509 v3 certificate, PEM, mode 0644: subject ``CN=<node id>`` and, when the
  realm is known, ``O=<realm name>`` (so TheNodes' ``realm_subject_binding`` finds the realm's
  name in it); one subject per node, unlike TheNodes' ``thenodes-cert``, whose one subject for
  every node breaks 0.4.0's TOFU (keyed by subject); the node's listen IPs as IP SANs (TheNodes
  0.2.0 checks the dialled IP against them unless ``accept_self_signed``); not a CA;
  ``digitalSignature``; server and client authentication (for mTLS).

A file is never overwritten: each is written to a temporary name and linked into place, which
fails when the name exists. A peer's certificate is known by the SHA-256 of its
SubjectPublicKeyInfo, hex lowercase (:func:`spki_fingerprint`), as TheNodes' pins and trusted
folders know it, and by its subject as TheNodes prints it (:func:`subject_text`).

This module needs ``cryptography`` (the ``tls`` extra); importing it without is an
``ImportError``.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import ipaddress
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hostsim.errors import HostsimError

__all__ = [
    "DEFAULT_DAYS",
    "CertificateError",
    "OwnCertificate",
    "ensure_certificate",
    "load_certificate",
    "make_certificate",
    "pem",
    "spki_fingerprint",
    "subject_text",
    "write_new",
]

DEFAULT_DAYS: Final = 3650
"""How long a certificate made here is valid: ten years (it names the node, not a host)."""
BACKDATE: Final = datetime.timedelta(days=1)
"""A new certificate is valid from a day back, so a peer whose clock is behind accepts it."""
KEY_MODE: Final = 0o600
CERT_MODE: Final = 0o644

# TheNodes prints a subject as x509-parser does: these attributes by their abbreviation.
_ABBREVIATIONS: Final = {
    NameOID.COMMON_NAME: "CN",
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.EMAIL_ADDRESS: "Email",
}


class CertificateError(HostsimError):
    """A certificate or key file cannot be read, made or used; the message names the file."""


@attrs.frozen
class OwnCertificate:
    """A node's own certificate and key, and whether they were just made."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = attrs.field(repr=False)
    cert_path: Path
    key_path: Path
    made: bool = False

    @property
    def fingerprint(self) -> str:
        """The certificate's SPKI SHA-256, hex lowercase: what peers pin."""
        return spki_fingerprint(self.cert)


def spki_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's SubjectPublicKeyInfo, hex lowercase (TheNodes' pins)."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def subject_text(cert: x509.Certificate) -> str:
    """The subject as TheNodes compares it (``pin_subjects``, ``realm_subject_binding``, 0.4.0's
    TOFU): relative names in the certificate's order joined by ``", "``, each attribute as
    ``ABBREV=value`` (several in one relative name joined by ``" + "``), a value that is not a
    string as upper-case hex. An attribute type without an abbreviation is named by its
    dotted OID."""
    parts = []
    for rdn in cert.subject.rdns:
        attrs_ = []
        for attribute in rdn:
            name = _ABBREVIATIONS.get(attribute.oid, attribute.oid.dotted_string)
            value = attribute.value
            text = value.hex().upper() if isinstance(value, bytes) else value
            attrs_.append(f"{name}={text}")
        parts.append(" + ".join(attrs_))
    return ", ".join(parts)


def pem(cert: x509.Certificate) -> bytes:
    """The certificate as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def make_certificate(
    node_id: str,
    *,
    realm: str | None = None,
    ips: Iterable[str] = (),
    days: int = DEFAULT_DAYS,
    now: datetime.datetime | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new P-256 key and a self-signed certificate for ``node_id`` (see the module's text).

    :param realm: The realm's name, as ``O=`` in the subject.
    :param ips: IP addresses for the subject alternative names (repeats, non-IPs and
        ``0.0.0.0``/``::`` dropped).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.COMMON_NAME, node_id)]
    if realm:
        names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, realm))
    subject = x509.Name(names)
    start = (now or datetime.datetime.now(datetime.UTC)) - BACKDATE
    addresses: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, None] = {}
    for ip in ips:
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(ip)
            if not address.is_unspecified:
                addresses[address] = None
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + BACKDATE + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if addresses:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip) for ip in addresses]), critical=False
        )
    return builder.sign(key, hashes.SHA256()), key


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode``, never replacing a file that is there: written
    to a temporary file beside it, then linked into place (``FileExistsError`` if the name
    exists). Missing folders are made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.link(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def load_certificate(cert_path: Path, key_path: Path) -> OwnCertificate:
    """Read a certificate (the first in its PEM file) and its private key (PEM, unencrypted).

    :raises CertificateError: a file cannot be read or parsed, or the key is not the
        certificate's.
    """
    try:
        certs = x509.load_pem_x509_certificates(cert_path.read_bytes())
    except OSError as exc:
        raise CertificateError(f"{cert_path}: cannot read: {exc.strerror or exc}") from None
    except ValueError:
        raise CertificateError(f"{cert_path}: not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except OSError as exc:
        raise CertificateError(f"{key_path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, TypeError):
        raise CertificateError(
            f"{key_path}: not an unencrypted PEM private key (PKCS#8, as TheNodes reads it)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError(f"{key_path}: an EC or RSA key is needed, got {type(key).__name__}")
    cert = certs[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, public) != cert.public_key().public_bytes(der, public):
        raise CertificateError(f"{key_path}: this key is not the key of {cert_path}")
    return OwnCertificate(cert, key, cert_path, key_path)


def ensure_certificate(
    cert_path: Path,
    key_path: Path,
    *,
    node_id: str,
    realm: str | None = None,
    ips: Sequence[str] = (),
    days: int = DEFAULT_DAYS,
) -> OwnCertificate:
    """The certificate and key at these paths; both are made first when neither exists.

    :raises CertificateError: only one of the two files exists (neither is touched), a file
        cannot be read or written, or they do not match.
    """
    have_cert, have_key = cert_path.exists(), key_path.exists()
    if have_cert != have_key:
        there, missing = (cert_path, key_path) if have_cert else (key_path, cert_path)
        raise CertificateError(
            f"{there} exists but {missing} does not: a certificate and its key go together;"
            " restore the missing one, or move both away to have a new pair made"
        )
    if have_cert:
        return load_certificate(cert_path, key_path)
    cert, key = make_certificate(node_id, realm=realm, ips=ips, days=days)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        write_new(key_path, key_pem, KEY_MODE)
    except FileExistsError:
        raise CertificateError(
            f"{key_path} appeared while it was being made; not replaced"
        ) from None
    except OSError as exc:
        raise CertificateError(f"{key_path}: cannot write: {exc.strerror or exc}") from None
    try:
        write_new(cert_path, pem(cert), CERT_MODE)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(key_path)  # the key made a moment ago, alone, is of no use
        if exc.errno == errno.EEXIST:
            raise CertificateError(
                f"{cert_path} appeared while it was being made; not replaced"
            ) from None
        raise CertificateError(f"{cert_path}: cannot write: {exc.strerror or exc}") from None
    return OwnCertificate(cert, key, cert_path, key_path, made=True)


DEFAULT_CERT: Final = Path("pki/own/cert.pem")
"""Where TheNodes' ``thenodes-cert`` writes a certificate by default (and its key beside)."""
DEFAULT_KEY: Final = Path("pki/own/key.pem")


def copy_certificate(own: OwnCertificate, folder: Path) -> tuple[Path, bool]:
    """Put the certificate in ``folder`` (a TheNodes ``trusted_cert_dir``) as
    ``<fingerprint>.pem``; return the path and whether it was written (False: already there)."""
    target = folder / f"{own.fingerprint}.pem"
    try:
        write_new(target, pem(own.cert), CERT_MODE)
    except FileExistsError:
        return target, False
    except OSError as exc:
        raise CertificateError(f"{target}: cannot write: {exc.strerror or exc}") from None
    return target, True


def describe(own: OwnCertificate) -> list[str]:
    """A certificate for people: the files, the subject, the IPs, the fingerprint."""
    try:
        ips = own.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        addresses = ", ".join(str(ip) for ip in ips.value.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        addresses = ""
    verb = "made" if own.made else "kept (it exists; never replaced)"
    key_mode = " (mode 0600)" if own.made else ""
    return [
        f"{verb}: {own.cert_path}, key {own.key_path}{key_mode}",
        f"  subject: {subject_text(own.cert)}",
        f"  ip addresses: {addresses or 'none'}",
        f"  valid until: {own.cert.not_valid_after_utc:%Y-%m-%d}",
        f"  spki_sha256: {own.fingerprint}",
    ]
