"""`rekisteri tls trial-certificates`: a local CA and a server certificate, for trials only.

RabbitMQ serves AMQPS to every party outside the register's host (docker-compose.yml,
deploy/rabbitmq/rabbitmq.conf) with the certificate, key and CA it finds in `TLS_DIR`. In
production those come from a real certificate authority. For a trial, this makes them in one
command: a CA of its own (its private key is thrown away once the server certificate is signed,
so nothing more can ever be signed with it) and a certificate for the names the parties
connect to. The end-to-end tests make theirs the same way (tests/e2e/test_tls.py).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CERTIFICATE_FILE = "server.pem"
KEY_FILE = "server.key"
FILES = (CA_FILE, CERTIFICATE_FILE, KEY_FILE)
TRIAL_ONLY = "FOR TRIALS ONLY - NOT FOR PRODUCTION"
# A clock a little behind ours must not find the certificate not yet valid.
BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class TrialCertificates:
    """PEM texts: the CA's certificate (what parties trust), the server's, and its key."""

    ca: bytes
    certificate: bytes
    key: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kokemuskauppa register trial"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _alternative_name(hostname: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        return x509.DNSName(hostname)


def _certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    start: datetime,
    end: datetime,
    *,
    ca: bool,
) -> x509.CertificateBuilder:
    """What the CA's and the server's certificates share. The CA's key only signs
    certificates; the server's only signs its handshakes and agrees keys (ECDHE)."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=not ca,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    )


def make_trial_certificates(
    hostnames: list[str], days: int, now: datetime | None = None
) -> TrialCertificates:
    """A fresh CA, and a server certificate it signs for each of `hostnames` (names or IP
    addresses), valid for `days`."""
    if not hostnames:
        raise ValueError("name at least one host name the parties connect to")
    start = (now or datetime.now(UTC)) - BACKDATE
    end = start + BACKDATE + timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Trial CA - NOT FOR PRODUCTION")
    ca = _certificate_builder(ca_name, ca_name, ca_key.public_key(), start, end, ca=True).sign(
        ca_key, hashes.SHA256()
    )
    key = ec.generate_private_key(ec.SECP256R1())
    # The names it is valid for are its alternative names; a host name may be too long for a
    # common name.
    server_name = _name("Trial server - NOT FOR PRODUCTION")
    certificate = (
        _certificate_builder(server_name, ca_name, key.public_key(), start, end, ca=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([_alternative_name(name) for name in hostnames]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return TrialCertificates(
        ca=ca.public_bytes(serialization.Encoding.PEM),
        certificate=certificate.public_bytes(serialization.Encoding.PEM),
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def write_trial_certificates(folder: Path, made: TrialCertificates, *, replace: bool) -> None:
    """`ca.pem`, `server.pem` and `server.key` (readable by its owner only) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    present = [name for name in FILES if (folder / name).exists()]
    if present and not replace:
        raise FileExistsError(
            f"{folder} already holds {', '.join(present)}: give --force to replace them"
        )
    for name, content, mode in (
        (CA_FILE, made.ca, 0o644),
        (CERTIFICATE_FILE, made.certificate, 0o644),
        (KEY_FILE, made.key, 0o600),
    ):
        path = folder / name
        path.unlink(missing_ok=True)
        # Created with its final mode: the key is never readable by others, not even briefly.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)


@click.group()
def tls() -> None:
    """TLS for the broker's listener that parties outside the host connect to."""


@tls.command("trial-certificates")
@click.option(
    "--out",
    default="deploy/tls",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder compose mounts into RabbitMQ (TLS_DIR).",
)
@click.option(
    "--hostname",
    "hostnames",
    multiple=True,
    default=("localhost",),
    show_default=True,
    help="A name or IP address the parties connect to; repeat for several.",
)
@click.option(
    "--days", default=30, show_default=True, type=click.IntRange(1, 365), help="Valid this long."
)
@click.option("--force", is_flag=True, help="Replace certificates already in the folder.")
def trial_certificates(out: Path, hostnames: tuple[str, ...], days: int, force: bool) -> None:
    """Make a throw-away CA and a server certificate for a trial: ca.pem (what the parties
    trust), server.pem and server.key. NEVER use them in production."""
    try:
        write_trial_certificates(out, make_trial_certificates(list(hostnames), days), replace=force)
    except FileExistsError as error:
        raise click.ClickException(str(error)) from None
    banner = "!" * 78
    click.echo(
        "\n".join(
            [
                banner,
                f"  {TRIAL_ONLY}.",
                f"  A throw-away CA and a certificate for {', '.join(hostnames)}, valid {days} "
                "days,",
                f"  written to {out}/ ({', '.join(FILES)}). Nobody outside this trial trusts",
                "  this CA, and nothing proves who holds it: in production use a certificate",
                "  from your own or a public certificate authority (docs/operators.md).",
                banner,
            ]
        ),
        err=True,
    )
