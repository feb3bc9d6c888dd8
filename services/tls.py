"""TLS for the hub's gRPC servers and clients, member certificate pinning, and throwaway development certificates.

Servers: ``server_credentials(settings)`` (None: plain text). Clients: ``ClientTLS.from_settings(settings)``
(None: plain text), handed to ``services.client.channel``. ``peer_cert_sha256`` is what a member's directory
entry pins (``cert_sha256``). ``write_dev_certs`` is `apihub dev certs`: a CA of its own, never for production.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from prometheus_client import Gauge

from services.config import HubSettings
from services.errors import ConfigError

_PEM = b"-----BEGIN "

# When the certificates a process presents or trusts stop being valid (alert ApihubCertificateExpiring). Label
# `certificate`: grpc_server (APIHUB_TLS_CERT_FILE, set when a server binds), grpc_client_ca
# (APIHUB_TLS_CLIENT_CA_FILE), kafka_client and kafka_ca (APIHUB_KAFKA_SSL_CERT_FILE, _CA_FILE, set when a Kafka
# client connects). A file of several certificates (a chain, a CA bundle) counts its soonest notAfter.
CERTIFICATE_EXPIRY = Gauge(
    "apihub_tls_certificate_expiry_seconds",
    "Unix time the soonest-expiring certificate of a PEM file this process uses stops being valid (notAfter)",
    ["certificate"],
)


def certificates_not_after(pem: bytes) -> float | None:
    """Unix time the first of the PEM's certificates to expire stops being valid; None without a readable one."""
    from cryptography import x509

    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        return None
    return min(c.not_valid_after_utc.timestamp() for c in certificates) if certificates else None


def record_certificate_expiry(certificate: str, pem: bytes | Path) -> None:
    """Set apihub_tls_certificate_expiry_seconds{certificate} from a PEM (bytes or a file); an unreadable one is
    left to the code that uses it to report."""
    try:
        data = pem if isinstance(pem, bytes) else Path(pem).read_bytes()
    except OSError:
        return
    not_after = certificates_not_after(data)
    if not_after is not None:
        CERTIFICATE_EXPIRY.labels(certificate=certificate).set(not_after)


def read_pem(path: Path, setting: str) -> bytes:
    """The content of a PEM file named by ``setting`` (e.g. "tls_cert_file"); ConfigError naming it otherwise."""
    env = f"APIHUB_{setting.upper()}"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{env}={path}: cannot read it ({exc.strerror})") from None
    if _PEM not in data:
        raise ConfigError(f"{env}={path}: not a PEM file (expected '-----BEGIN ...')")
    return data


def _check_pair(chain: bytes, key: bytes, cert_setting: str, key_setting: str) -> None:
    """A certificate and a key that do not belong together fail at the first handshake, obscurely: say so now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    names = f"APIHUB_{cert_setting.upper()} / APIHUB_{key_setting.upper()}"
    try:
        leaf = x509.load_pem_x509_certificate(chain)
    except ValueError as exc:
        raise ConfigError(f"APIHUB_{cert_setting.upper()}: no readable certificate ({exc})") from None
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"APIHUB_{key_setting.upper()}: no readable unencrypted private key ({exc})") from None
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(*raw) != private.public_key().public_bytes(*raw):
        raise ConfigError(f"{names}: the key does not belong to the certificate (the first one in the file)")


def server_credentials(settings: HubSettings) -> grpc.ServerCredentials | None:
    """TLS credentials of the gRPC servers; client certificates required when tls_client_ca_file is set."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    chain = read_pem(settings.tls_cert_file, "tls_cert_file")
    key = read_pem(settings.tls_key_file, "tls_key_file")
    _check_pair(chain, key, "tls_cert_file", "tls_key_file")
    record_certificate_expiry("grpc_server", chain)
    client_ca = read_pem(settings.tls_client_ca_file, "tls_client_ca_file") if settings.tls_client_ca_file else None
    if client_ca is not None:
        record_certificate_expiry("grpc_client_ca", client_ca)
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


@dataclass(frozen=True)
class ClientTLS:
    """What a client channel needs for TLS: roots to verify the hub (None: the system's), an optional identity."""

    root_certificates: bytes | None = None
    private_key: bytes | None = None
    certificate_chain: bytes | None = None
    # Overrides the name checked in the hub's certificate (the dialled host otherwise).
    server_name: str = ""

    @classmethod
    def from_settings(cls, settings: HubSettings) -> ClientTLS | None:
        """None when the settings ask for no TLS (APIHUB_TLS, APIHUB_TLS_CA_FILE, APIHUB_TLS_CLIENT_CERT_FILE)."""
        if not settings.client_tls:
            return None
        roots = read_pem(settings.tls_ca_file, "tls_ca_file") if settings.tls_ca_file else None
        key = chain = None
        if settings.tls_client_cert_file is not None and settings.tls_client_key_file is not None:
            chain = read_pem(settings.tls_client_cert_file, "tls_client_cert_file")
            key = read_pem(settings.tls_client_key_file, "tls_client_key_file")
            _check_pair(chain, key, "tls_client_cert_file", "tls_client_key_file")
        return cls(roots, key, chain, settings.tls_server_name)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


def is_loopback(listen: str) -> bool:
    """Whether a "host:port" listen address only accepts connections from this machine."""
    host = listen.rsplit(":", 1)[0].strip("[]") if ":" in listen else listen
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "0.0.0.0" parses; a host name or an empty host may mean every interface


# -- member certificate pinning ------------------------------------------------------------------------------
def cert_sha256(pem: bytes | str) -> str:
    """SHA-256 of a certificate's DER encoding, lower-case hex: the fingerprint the directory lists."""
    text = pem.decode() if isinstance(pem, bytes) else pem
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(text)).hexdigest()


def normalize_fingerprint(value: str) -> str:
    """Accepts `openssl x509 -fingerprint -sha256` output ("AB:CD:...", with or without its prefix) too."""
    return value.strip().lower().removeprefix("sha256 fingerprint=").replace(":", "")


def peer_cert_sha256(context: grpc.ServicerContext) -> str | None:
    """Fingerprint of the certificate the caller presented over mutual TLS; None without one."""
    pems = (context.auth_context() or {}).get("x509_pem_cert")
    return cert_sha256(pems[0]) if pems else None


# -- `apihub dev certs` ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DevFile:
    path: Path
    what: str
    sha256: str = ""  # certificates: their fingerprint


def _write(path: Path, data: bytes, private: bool) -> None:
    if not private:
        path.write_bytes(data)
        return
    # Created 0600 (never readable by others, not even for a moment), and tightened if it already existed.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _dev_cert_names(members: Sequence[str], carriers: Sequence[str]) -> list[str]:
    """The files write_dev_certs writes; ConfigError for a code that cannot be a common name and a file name."""
    names = ["ca.pem", "server.pem", "server-key.pem"]
    for kind, codes in (("member", members), ("carrier", carriers)):
        for code in codes:
            # The code is the common name and part of a file name: letters and digits only.
            if not (2 <= len(code) <= 3 and code.isascii() and code.isalnum()):
                raise ConfigError(f"{kind} code '{code}': 2 or 3 letters or digits (FJ, FJI)")
            names += [f"{kind}-{code}.pem", f"{kind}-{code}-key.pem"]
    return names


class _DevCA:
    """A throwaway CA that issues leaf certificates valid for ``days`` and writes them into ``out``."""

    def __init__(self, out: Path, days: int) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.out, self.days, self.now = out, days, datetime.now(UTC)
        self.written: list[DevFile] = []
        self.org = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pacific API Hub (development only)")
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([self.org, x509.NameAttribute(NameOID.COMMON_NAME, "apihub dev CA")])
        signing = x509.KeyUsage(False, False, False, False, False, True, True, False, False)  # cert and CRL signing
        basic = x509.BasicConstraints(ca=True, path_length=0)
        self.cert = self._issue(self.name, self.key.public_key(), [(basic, True), (signing, True)])
        self.aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())

    def _issue(self, subject, public_key, extensions):  # cryptography types: imported lazily
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - timedelta(minutes=5))
            .not_valid_after(self.now + timedelta(days=self.days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical=critical)
        return builder.sign(self.key, hashes.SHA256())

    def leaf(self, common_name: str, usage, sans: list) -> tuple:
        """A certificate for common_name with this extended key usage (and subject alternative names), and its
        private key in PEM."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        extensions = [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.KeyUsage(True, False, False, False, False, False, False, False, False), True),  # signature
            (x509.ExtendedKeyUsage([usage]), False),
            (self.aki, False),
        ]
        if sans:
            extensions.append((x509.SubjectAlternativeName(sans), False))
        subject = x509.Name([self.org, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return self._issue(subject, key.public_key(), extensions), pem

    def save(self, name: str, cert, key: bytes | None, what: str) -> None:
        from cryptography.hazmat.primitives import hashes, serialization

        path = self.out / name
        _write(path, cert.public_bytes(serialization.Encoding.PEM), private=False)
        self.written.append(DevFile(path, what, cert.fingerprint(hashes.SHA256()).hex()))
        if key is not None:
            key_path = self.out / name.replace(".pem", "-key.pem")
            _write(key_path, key, private=True)
            self.written.append(DevFile(key_path, f"private key of {name} (mode 0600)"))


def write_dev_certs(
    out: Path,
    members: Sequence[str] = (),
    carriers: Sequence[str] = (),
    hosts: Sequence[str] = (),
    days: int = 30,
    force: bool = False,
) -> list[DevFile]:
    """A throwaway CA, a server certificate for localhost, 127.0.0.1, ::1 (and ``hosts``), and one client
    certificate per member and carrier code (common name = the code). Private keys are written only into
    ``out``, mode 0600; the CA's key is not kept at all (run again for more certificates, and restart)."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    if days < 1:
        raise ConfigError(f"days must be at least 1 (got {days})")
    members = [m.strip().upper() for m in members]
    carriers = [c.strip().upper() for c in carriers]
    names = _dev_cert_names(members, carriers)
    out.mkdir(parents=True, exist_ok=True)
    existing = [n for n in names if (out / n).exists()]
    if existing and not force:
        raise ConfigError(f"{out}: would overwrite {', '.join(existing)} (pass --force to replace them)")
    ca = _DevCA(out, days)
    ca.save(
        "ca.pem", ca.cert, None, "CA certificate: APIHUB_TLS_CA_FILE (clients), APIHUB_TLS_CLIENT_CA_FILE (servers)"
    )
    sans: list[x509.GeneralName] = []
    for host in ["localhost", "127.0.0.1", "::1", *hosts]:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    server, server_key = ca.leaf(hosts[0] if hosts else "localhost", ExtendedKeyUsageOID.SERVER_AUTH, sans)
    ca.save("server.pem", server, server_key, "server certificate: APIHUB_TLS_CERT_FILE / APIHUB_TLS_KEY_FILE")
    for kind, codes in (("member", members), ("carrier", carriers)):
        for code in codes:
            cert, key = ca.leaf(code, ExtendedKeyUsageOID.CLIENT_AUTH, [])
            what = f"{kind} {code}: APIHUB_TLS_CLIENT_CERT_FILE / APIHUB_TLS_CLIENT_KEY_FILE"
            ca.save(f"{kind}-{code}.pem", cert, key, what)
    return ca.written
