"""`orbiter certs init|issue`: a small CA and certificates for a test or small cluster.

The certificate's subject common name is the principal the master sees for a
client that presents it. Real operators bring their own PKI; these are for
trying TLS end to end without one. Keys are written 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orbiter.errors import OrbiterError

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
DEFAULT_SANS = ("localhost", "127.0.0.1")
CA_DAYS = 3650
CERT_DAYS = 825


class CertError(OrbiterError):
    """A CA or certificate could not be made; the message says what to do."""


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_BOTH_WAYS = x509.ExtendedKeyUsage(
    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Orbiter"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def init_ca(directory: Path, name: str = "Orbiter CA", force: bool = False) -> Issued:
    """Make a CA in `directory` (ca.pem, ca.key); refuses to overwrite one unless `force`."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not force and (cert_path.exists() or key_path.exists()):
        raise CertError(
            f"{directory} already holds a CA ({CA_CERT}, {CA_KEY}); certificates it issued "
            "would stop being trusted if it were replaced. Use another --dir"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Issued(cert_path, key_path)


def _san(text: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    if not text or any(c.isspace() for c in text) or "/" in text:
        raise CertError(f"--san {text!r} is neither a host name nor an IP address")
    return x509.DNSName(text)


def issue(directory: Path, name: str, sans: tuple[str, ...] = ()) -> Issued:
    """A certificate and key NAME.pem / NAME.key signed by the CA in `directory`.

    Subject CN is NAME (the principal); valid for localhost and 127.0.0.1 plus
    `sans`; usable by servers and clients alike.
    """
    if not name or "/" in name or name.startswith(".") or name in ("ca",):
        raise CertError(f"{name!r} cannot name a certificate (no '/', not 'ca')")
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    try:
        ca_cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca_key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    except FileNotFoundError:
        raise CertError(
            f"no CA in {directory}: make one first with `orbiter certs init --dir {directory}`"
        ) from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{key_path} is not an EC key made by `orbiter certs init`")
    names: list[x509.GeneralName] = []
    for text in (*DEFAULT_SANS, *sans):
        san = _san(text)
        if san not in names:
            names.append(san)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(_BOTH_WAYS, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    out = Issued(directory / f"{name}.pem", directory / f"{name}.key")
    _write_key(out.key, key)
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out


def common_name(pem: bytes) -> str:
    """The subject CN of a PEM certificate ('' if it has none)."""
    cert = x509.load_pem_x509_certificate(pem)
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""
