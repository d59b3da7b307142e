"""Secret values in formas: marked, resolved, sealed, revealed only to the plugin, masked everywhere else.

A value is secret when a forma writes it as formae renders one, ``{"$value": …, "$visibility":
"Opaque"}``, or by reference to the agent's environment or a file, ``{"$secret": {"env": NAME}}``,
``{"$secret": {"file": PATH}}``. The agent seals it as soon as it arrives (before the command is
stored) into ``{"$visibility": "Opaque", "$sealed": …, "$hash": …}``: AES-GCM under a key in
``{home}/secrets.key``, plus a keyed hash so that a changed secret still plans an update. Only the
request to the plugin carries it in clear again; whatever comes back is sealed before anything else
sees it. Everything shown to a person or a log says ``(secret)``.

- ``values``: recognising, walking and masking the shapes (pure);
- ``keyring``: the key file, sealing, unsealing, rotation;
- ``resolution``: env and file references;
- ``sealing``: a submitted forma, sealed (reusing what is stored when the secret did not change);
- ``redaction``: known clear values scrubbed from text (logs, errors).
"""

from formae.secrets.keyring import KeyringError, SecretKeyring
from formae.secrets.redaction import RedactingFilter, Redactor
from formae.secrets.resolution import SecretError
from formae.secrets.sealing import seal_forma
from formae.secrets.values import MASK, contains_secrets, is_sealed, mask

__all__ = [
    "MASK",
    "KeyringError",
    "RedactingFilter",
    "Redactor",
    "SecretError",
    "SecretKeyring",
    "contains_secrets",
    "is_sealed",
    "mask",
    "seal_forma",
]
