"""TLS between agent and plugins: the names both sides agree on and the gRPC credentials.

The agent presents a certificate valid for ``formae-agent`` and plugins verify it under that
name whatever address they dial, so a plugin on another host needs only the agent's CA, not a
certificate issued for the address it happens to use. Making keys and reading certificates lives
in ``formae.wire.certificates``, apart, because ``cryptography`` costs a plugin ~35 ms to import
and only a plugin that joins needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

AGENT_SERVER_NAME = "formae-agent"
NAMESPACE_URI_PREFIX = "formae:namespace:"
ANY_NAMESPACE = "*"


@dataclass(frozen=True)
class ClientCredentials:
    """What a plugin presents and trusts: its certificate and key, and the agent's CA (all PEM)."""

    certificate: bytes
    key: bytes = b""
    ca_certificate: bytes = b""

    def __repr__(self) -> str:  # the key must never reach a log line
        return "ClientCredentials(…)"

    @classmethod
    def from_files(cls, certificate: Path, key: Path, ca_certificate: Path) -> ClientCredentials:
        return cls(certificate.read_bytes(), key.read_bytes(), ca_certificate.read_bytes())

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_certificate, private_key=self.key, certificate_chain=self.certificate
        )


def channel_options() -> list[tuple[str, str]]:
    """Verify the agent as ``formae-agent`` rather than as the address dialled."""
    return [("grpc.ssl_target_name_override", AGENT_SERVER_NAME)]


def server_credentials(certificate: bytes, key: bytes, ca_certificate: bytes) -> grpc.ServerCredentials:
    """The agent's side: its own certificate, and every client must present one of its CA's.

    A joining plugin presents the bootstrap certificate in its token, which allows no namespace:
    good for the Join call and nothing else.
    """
    return grpc.ssl_server_credentials(
        [(key, certificate)], root_certificates=ca_certificate, require_client_auth=True
    )
