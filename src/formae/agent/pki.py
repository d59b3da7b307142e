"""The agent's small certificate authority: who may talk to it, and as which namespaces.

The CA key never leaves ``{home}/pki`` (mode 0600). It signs the agent's own server certificate
and one client certificate per plugin. A plugin's certificate names the namespaces it may claim
as URI SANs (``formae:namespace:AWS``; ``formae:namespace:*`` for plugins this agent spawned
itself, whose installation is the operator's vouching), so a compromised plugin cannot announce
itself as another cloud. Plugins verify the agent through the CA certificate they were given.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from formae.wire.certificates import key_to_pem, namespaces_of, new_private_key
from formae.wire.tls import AGENT_SERVER_NAME, ANY_NAMESPACE, NAMESPACE_URI_PREFIX

CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=365)
PLUGIN_VALIDITY = dt.timedelta(days=90)
"""Of the certificates of spawned plugins, and by default of joined ones (``FORMAE_PLUGIN_CERT_VALIDITY``)."""


class PkiError(Exception):
    pass


@dataclass(frozen=True)
class KeyPair:
    certificate_pem: bytes
    key_pem: bytes


class CertificateAuthority:
    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        self._key = key
        self.certificate = certificate

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def load_or_create(cls, directory: Path) -> CertificateAuthority:
        """The CA kept in ``directory``, created on first use."""
        key_path, cert_path = directory / "ca.key", directory / "ca.crt"
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise PkiError(f"{key_path} is not an EC private key")
            return cls(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))
        authority = cls._create()
        write_private(key_path, key_to_pem(authority._key))
        cert_path.write_bytes(authority.certificate_pem)
        return authority

    @classmethod
    def _create(cls) -> CertificateAuthority:
        key = new_private_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"formae agent CA {socket.gethostname()}")])
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def server_keypair(self, extra_names: list[str]) -> KeyPair:
        """The agent's own certificate: valid as ``formae-agent`` and this host's names and addresses."""
        key = new_private_key()
        names = [AGENT_SERVER_NAME, "localhost", socket.gethostname(), *extra_names]
        sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
        for name in dict.fromkeys(names):
            sans.append(_general_name(name))
        certificate = self._sign(
            key.public_key(), AGENT_SERVER_NAME, sans, ExtendedKeyUsageOID.SERVER_AUTH, SERVER_VALIDITY
        )
        return KeyPair(certificate.public_bytes(serialization.Encoding.PEM), key_to_pem(key))

    def plugin_keypair(self, common_name: str, namespaces: frozenset[str]) -> KeyPair:
        """Key and certificate made here, for a plugin this agent spawns itself."""
        key = new_private_key()
        certificate = self._plugin_certificate(key.public_key(), common_name, namespaces)
        return KeyPair(certificate.public_bytes(serialization.Encoding.PEM), key_to_pem(key))

    def bootstrap_keypair(self, token_id: str, validity: dt.timedelta) -> KeyPair:
        """The client certificate inside a join token: it opens the TLS port and allows no namespace."""
        key = new_private_key()
        name = f"join token {token_id}"
        certificate = self._sign(key.public_key(), name, [], ExtendedKeyUsageOID.CLIENT_AUTH, validity)
        return KeyPair(certificate.public_bytes(serialization.Encoding.PEM), key_to_pem(key))

    def sign_plugin_request(
        self, csr_pem: bytes, namespaces: frozenset[str], validity: dt.timedelta = PLUGIN_VALIDITY
    ) -> bytes:
        """The certificate for a joining plugin's CSR, allowed ``namespaces`` and nothing else."""
        csr, public_key = check_request(csr_pem)
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = str(names[0].value) if names else "formae-plugin"
        certificate = self._plugin_certificate(public_key, common_name, namespaces, validity)
        return certificate.public_bytes(serialization.Encoding.PEM)

    def renew_plugin_certificate(self, certificate_pem: bytes, validity: dt.timedelta) -> bytes:
        """A fresh certificate for the key, subject and namespaces of one this CA issued to a plugin.

        ``PkiError`` when this CA did not issue it or it holds no EC key: nothing else is renewed.
        """
        try:
            old = x509.load_pem_x509_certificate(certificate_pem)
            old.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature) as error:
            raise PkiError(
                f"not a plugin certificate of this agent's CA: {error or type(error).__name__}"
            ) from None
        public_key = old.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise PkiError("the certificate to renew does not carry an EC key")
        names = old.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = str(names[0].value) if names else "formae-plugin"
        certificate = self._plugin_certificate(
            public_key, common_name, namespaces_of(certificate_pem), validity
        )
        return certificate.public_bytes(serialization.Encoding.PEM)

    def _plugin_certificate(
        self,
        public_key: ec.EllipticCurvePublicKey,
        common_name: str,
        namespaces: frozenset[str],
        validity: dt.timedelta = PLUGIN_VALIDITY,
    ) -> x509.Certificate:
        sans: list[x509.GeneralName] = [
            x509.UniformResourceIdentifier(f"{NAMESPACE_URI_PREFIX}{namespace}")
            for namespace in sorted(namespaces)
        ]
        return self._sign(public_key, common_name, sans, ExtendedKeyUsageOID.CLIENT_AUTH, validity)

    def _sign(
        self,
        public_key: ec.EllipticCurvePublicKey,
        common_name: str,
        sans: list[x509.GeneralName],
        usage: x509.ObjectIdentifier,
        validity: dt.timedelta,
    ) -> x509.Certificate:
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self._key, hashes.SHA256())


def check_request(csr_pem: bytes) -> tuple[x509.CertificateSigningRequest, ec.EllipticCurvePublicKey]:
    """The CSR and its key, if it is one we can sign; ``PkiError`` saying what is wrong otherwise."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as error:
        raise PkiError(f"not a PEM certificate request: {error}") from None
    if not csr.is_signature_valid:
        raise PkiError("the certificate request's signature does not verify")
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise PkiError("the certificate request must carry an EC P-256 key")
    return csr, public_key


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the mode above only applies to a new file; an old one may be readable by all
    with os.fdopen(fd, "wb") as file:
        file.write(data)


class LocalPluginCredentials:
    """Certificates for the plugins this agent spawns, as files their environment points to.

    Spawned plugins may claim any namespace (``*``): installing a plugin on the agent's own host
    is the operator's vouching for it. A fresh certificate is issued at every spawn (an EC key
    costs about a millisecond), so a child restarted months into the agent's life never gets an
    expired one.
    """

    def __init__(self, authority: CertificateAuthority, directory: Path) -> None:
        self._authority = authority
        self._directory = directory

    def environment(self, name: str) -> dict[str, str]:
        pair = self._authority.plugin_keypair(f"{name} (local)", frozenset({ANY_NAMESPACE}))
        key, certificate, ca = (self._directory / f"{name}.{suffix}" for suffix in ("key", "crt", "ca.crt"))
        write_private(key, pair.key_pem)
        certificate.write_bytes(pair.certificate_pem)
        ca.write_bytes(self._authority.certificate_pem)
        return {
            "FORMAE_PLUGIN_CERT": str(certificate),
            "FORMAE_PLUGIN_KEY": str(key),
            "FORMAE_AGENT_CA": str(ca),
        }
