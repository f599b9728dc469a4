"""TLS for ``serve``: a given certificate, or a self-signed one kept in the data directory.

Browsers give camera and microphone only to https pages (and localhost), so a pilot
on a local network needs TLS even without a reverse proxy. ``--tls-self-signed``
makes a certificate (``cryptography``) for this host's names and addresses, keeps it
under ``DATA_DIR/tls/`` (key mode 600) and makes a new one only when a name or
address is missing or it is about to expire; each device accepts it once.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import psutil
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kernel.private_files import replace_file

logger = logging.getLogger(__name__)

TLS_DIR = "tls"
CERT_FILE = "self-signed.crt"
KEY_FILE = "self-signed.key"
VALID_DAYS = 825  # the longest validity Apple's platforms accept for a server certificate
RENEW_BEFORE = dt.timedelta(days=30)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class HostNames:
    dns: tuple[str, ...]
    ips: tuple[IpAddress, ...]


def local_names(host: str) -> HostNames:
    """The names and addresses other devices may use to reach this host."""
    dns = {"localhost", socket.gethostname()}
    ips: set[IpAddress] = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    try:
        ips.add(ipaddress.ip_address(host))
    except ValueError:
        if host:
            dns.add(host)
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    ips.add(ipaddress.ip_address(address.address.split("%")[0]))
                except ValueError:
                    continue
    ips.discard(ipaddress.ip_address("0.0.0.0"))
    ips.discard(ipaddress.ip_address("::"))
    return HostNames(tuple(sorted(n for n in dns if n)), tuple(sorted(ips, key=str)))


def _covers(cert: x509.Certificate, names: HostNames, now: dt.datetime) -> bool:
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(names.dns) <= set(san.get_values_for_type(x509.DNSName)) and set(names.ips) <= set(
        san.get_values_for_type(x509.IPAddress)
    )


def self_signed(
    data_dir: Path, names: HostNames, *, now: dt.datetime | None = None
) -> tuple[Path, Path]:
    """The kept certificate and key for ``names``, made (again) when needed."""
    now = now or dt.datetime.now(dt.UTC)
    folder = data_dir / TLS_DIR
    cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
    if cert_path.exists() and key_path.exists():
        existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if _covers(existing, names, now):
            return cert_path, key_path
        logger.info("self-signed certificate does not cover this host any more: making a new one")
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Seoulbridge " + names.dns[0])])
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names.dns]
    alt_names += [x509.IPAddress(ip) for ip in names.ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    replace_file(key_path, pem_key)
    replace_file(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    logger.info("made a self-signed certificate for %s", ", ".join(_all(names)))
    return cert_path, key_path


def _all(names: HostNames) -> list[str]:
    return [*names.dns, *(str(ip) for ip in names.ips)]


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """An SSL context for aiohttp from PEM files (a clear error if they do not fit)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot use TLS certificate {cert} with key {key}: {exc}") from None
    return context


def lan_urls(names: HostNames, port: int) -> list[str]:
    """Addresses other devices on the network can open (IPv4, not loopback)."""
    return [
        f"https://{ip}:{port}"
        for ip in names.ips
        if ip.version == 4 and not ip.is_loopback and not ip.is_link_local
    ]
