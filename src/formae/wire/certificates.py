"""Keys, certificate requests and the namespaces a certificate allows (``cryptography``).

Imported only where needed: by the agent's CA and hub, and by a plugin at the moment it joins.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from formae.wire.tls import ANY_NAMESPACE, NAMESPACE_URI_PREFIX


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_to_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def certificate_request(key: ec.EllipticCurvePrivateKey, common_name: str) -> bytes:
    """A CSR for ``common_name``: what a joining plugin sends; its private key stays with it."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM)


def namespaces_of(certificate_pem: bytes) -> frozenset[str]:
    """The namespaces a plugin certificate lets its holder claim."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    return frozenset(u.removeprefix(NAMESPACE_URI_PREFIX) for u in uris if u.startswith(NAMESPACE_URI_PREFIX))


def check_renewal(certificate_pem: bytes, key_pem: bytes, ca_pem: bytes) -> dt.datetime:
    """When a renewed certificate expires, if it is fit to present; ``ValueError`` saying why not.

    Fit means: for the plugin's own key (``key_pem``), issued by its agent's CA (``ca_pem``), and
    valid now. Keeping anything else would lock the plugin out at its next dial.
    """
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if certificate.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise ValueError("the renewed certificate is not for this plugin's key")
    try:
        certificate.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    except (TypeError, InvalidSignature):
        raise ValueError("the renewed certificate was not issued by the agent's CA") from None
    now = dt.datetime.now(dt.UTC)
    if not certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc:
        raise ValueError(
            f"the renewed certificate is not valid now (until {certificate.not_valid_after_utc})"
        )
    return certificate.not_valid_after_utc


def allows(namespaces: frozenset[str], namespace: str) -> bool:
    return ANY_NAMESPACE in namespaces or namespace in namespaces
