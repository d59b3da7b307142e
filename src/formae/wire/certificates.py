"""Keys, certificate requests and the namespaces a certificate allows (``cryptography``).

Imported only where needed: by the agent's CA and hub, and by a plugin at the moment it joins.
"""

from __future__ import annotations

from cryptography import x509
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


def allows(namespaces: frozenset[str], namespace: str) -> bool:
    return ANY_NAMESPACE in namespaces or namespace in namespaces
