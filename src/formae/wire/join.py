"""Join tokens: how a plugin on another host gets its certificate, once.

``formae plugin token create --namespace AWS`` gives the operator one string to hand to the
plugin's host. It carries everything the plugin needs to find and *verify* the agent — its
address and its CA certificate —, the one-time secret that earns a certificate for the
namespaces the token names, and a bootstrap client certificate (valid as long as the token,
allowing no namespace) because the agent's TLS port only talks to clients with a certificate.
The agent keeps only a hash of the secret.

    fmj1.<base64url(JSON {"agent": "host:port", "id": "…", "secret": "…", "ca": "<PEM>",
                          "cert": "<PEM>", "key": "<PEM>"})>
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from formae._proto.formae.plugin.v1 import plugin_pb2 as pb

PREFIX = "fmj1."


class JoinTokenError(ValueError):
    pass


@dataclass(frozen=True)
class JoinToken:
    agent_address: str
    token_id: str
    secret: str
    ca_certificate: bytes
    bootstrap_certificate: bytes
    bootstrap_key: bytes

    def __repr__(self) -> str:  # the secret must never reach a log line
        return f"JoinToken(id={self.token_id!r}, agent={self.agent_address!r})"

    def encode(self) -> str:
        body = {
            "agent": self.agent_address,
            "id": self.token_id,
            "secret": self.secret,
            "ca": self.ca_certificate.decode(),
            "cert": self.bootstrap_certificate.decode(),
            "key": self.bootstrap_key.decode(),
        }
        return PREFIX + base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> JoinToken:
        text = text.strip()
        if not text.startswith(PREFIX):
            raise JoinTokenError(f"a join token starts with {PREFIX!r}; this one does not")
        payload = text[len(PREFIX) :]
        try:
            body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            return cls(
                str(body["agent"]),
                str(body["id"]),
                str(body["secret"]),
                str(body["ca"]).encode(),
                str(body["cert"]).encode(),
                str(body["key"]).encode(),
            )
        except (binascii.Error, ValueError, KeyError, TypeError) as error:
            raise JoinTokenError(f"the join token is damaged: {type(error).__name__}") from None


@dataclass(frozen=True)
class JoinAsk:
    """A plugin's request to join, as the agent's join handler sees it."""

    token_id: str
    secret: str
    certificate_request: bytes
    node: str
    peer: str

    def __repr__(self) -> str:
        return f"JoinAsk(token={self.token_id!r}, node={self.node!r}, peer={self.peer!r})"


@dataclass(frozen=True)
class JoinGrant:
    """What the agent gives a plugin that joined: its certificate, the agent's CA, the cookie."""

    certificate: bytes
    ca_certificate: bytes
    cookie: str
    namespaces: tuple[str, ...]

    def __repr__(self) -> str:
        return f"JoinGrant(namespaces={self.namespaces!r})"


def encode_request(token: JoinToken, csr: bytes, node: str) -> pb.JoinRequest:
    return pb.JoinRequest(token_id=token.token_id, secret=token.secret, certificate_request=csr, node=node)


def encode_grant(grant: JoinGrant) -> pb.JoinResponse:
    return pb.JoinResponse(
        certificate=grant.certificate,
        ca_certificate=grant.ca_certificate,
        cookie=grant.cookie,
        namespaces=list(grant.namespaces),
    )


def decode_grant(response: pb.JoinResponse) -> JoinGrant:
    return JoinGrant(
        response.certificate, response.ca_certificate, response.cookie, tuple(response.namespaces)
    )
