"""Who may use a node name: the rule that keeps one plugin from evicting another by announcing its name.

The registry is keyed by node name, and a second announcement under a registered name replaces the
first entry (that is how a restarted plugin takes its place back). Without a check, any admitted
plugin could announce another's name and evict it: a plugin joined for namespace ``Alpha`` started
with ``FORMAE_PLUGIN_NODE=fake-aws@host`` took the spawned FakeAWS plugin's place. So a node name is
bound to the identity that first registered it, and only the same identity may replace the entry:

- a name the PluginProcessManager gives to a plugin it spawns on this host belongs to that child:
  only a process the manager knows under that name (``Location.LOCAL``) may announce it;
- any other name belongs to its first claimant: the same namespace, the same key (the SHA-256 of
  its certificate's public key, when plugins use TLS) and the same location may replace it; anyone
  else is refused, and the entry stays. The binding ends when the registry forgets the entry. The
  key, not the certificate: a certificate the agent renewed (``agent/renewal.py``) keeps its key,
  and its plugin keeps its name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum


class Location(StrEnum):
    LOCAL = "local"
    REMOTE = "remote"


@dataclass(frozen=True)
class Claimant:
    """What proves who is announcing a node name."""

    namespace: str
    location: Location
    certificate: str | None = None
    """SHA-256 of the client certificate's public key (SubjectPublicKeyInfo, DER); None without TLS."""

    def describe(self) -> str:
        certificate = (
            f"certificate key sha256:{self.certificate[:16]}" if self.certificate else "no certificate"
        )
        return f"namespace {self.namespace}, {self.location}, {certificate}"


def fingerprint(certificate_pem: bytes | None) -> str | None:
    """The SHA-256 of the certificate's public key: the same for every renewal of one certificate."""
    if not certificate_pem:
        return None
    from cryptography import x509  # only with TLS on: cryptography is slow to import
    from cryptography.hazmat.primitives import serialization

    key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


class NodeClaimRefused(Exception):
    """The node name belongs to another plugin; the claimant is refused, the holder keeps its entry."""


def check_claim(node: str, claimant: Claimant, holder: Claimant | None, *, spawned_here: bool) -> None:
    """Raise NodeClaimRefused unless ``claimant`` may register as ``node``."""
    if spawned_here:
        if claimant.location is Location.LOCAL:
            return  # the process manager vouches for its own child, restarted or not
        raise NodeClaimRefused(
            f"node name {node} belongs to a plugin this agent spawns on its own host; "
            "a plugin started elsewhere must announce another FORMAE_PLUGIN_NODE"
        )
    if holder is not None and holder != claimant:
        raise NodeClaimRefused(
            f"node name {node} is bound to the plugin that registered it first ({holder.describe()}); "
            f"this one has {claimant.describe()}. Start it with another FORMAE_PLUGIN_NODE"
        )
