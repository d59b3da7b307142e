"""A submitted forma with every secret sealed, before the agent stores or plans anything with it.

For each secret in a resource's properties or a target's config, the value is resolved (a
reference) and hashed. Where the same place of what is stored already holds a sealed secret with
that hash — or any sealed value, for a ``SetOnce`` secret of a resource that exists — the stored
one is kept as it is, so an unchanged secret plans nothing even across key rotations, and a
changed one differs and plans an update.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from formae.secrets.keyring import SecretKeyring
from formae.secrets.redaction import Redactor
from formae.secrets.resolution import resolve
from formae.secrets.values import is_clear, is_sealed, is_secret, is_set_once

StoredProperties = Mapping[tuple[str, str, str], Mapping[str, Any]]
"""Desired properties as stored, by (stack, type, label)."""


def seal_forma(
    forma: Any,
    keyring: SecretKeyring,
    redactor: Redactor,
    env: Mapping[str, str],
    stored_resources: StoredProperties,
    stored_targets: Mapping[str, Mapping[str, Any]],
) -> Any:
    """``forma`` (formae's JSON shape) with its secrets sealed; anything malformed is left for validation."""
    if not isinstance(forma, dict):
        return forma
    sealer = _Sealer(keyring, redactor, env)
    sealed = dict(forma)
    if isinstance(forma.get("resources"), list):
        sealed["resources"] = [
            _with(r, "properties", lambda p, r=r: sealer.seal(p, stored_resources.get(_key(r))))
            for r in forma["resources"]
        ]
    if isinstance(forma.get("targets"), list):
        sealed["targets"] = [
            _with(t, "config", lambda c, t=t: sealer.seal(c, stored_targets.get(str(t.get("label")))))
            for t in forma["targets"]
        ]
    return sealed


class _Sealer:
    def __init__(self, keyring: SecretKeyring, redactor: Redactor, env: Mapping[str, str]) -> None:
        self._keyring = keyring
        self._redactor = redactor
        self._env = env

    def seal(self, value: Any, stored: Any) -> Any:
        if isinstance(value, dict) and is_secret(value):
            return self._secret(value, stored)
        if isinstance(value, dict):
            return {
                k: self.seal(v, stored.get(k) if isinstance(stored, dict) else None) for k, v in value.items()
            }
        if isinstance(value, list):
            olds = stored if isinstance(stored, list) else []
            return [self.seal(v, olds[i] if i < len(olds) else None) for i, v in enumerate(value)]
        return value

    def _secret(self, secret: dict[str, Any], stored: Any) -> Any:
        if is_sealed(secret):
            return secret  # already sealed by this agent (an extracted or re-sent forma)
        once = is_set_once(secret)
        clear = secret["$value"] if is_clear(secret) else resolve(secret, self._env)
        self._redactor.learn(clear)
        if is_sealed(stored) and (once or stored.get("$hash") == self._keyring.digest(clear)):
            return stored
        return self._keyring.seal(clear, set_once=once)


def _with(item: Any, field: str, seal: Any) -> Any:
    if not isinstance(item, dict) or not isinstance(item.get(field), dict):
        return item
    return {**item, field: seal(item[field])}


def _key(resource: dict[str, Any]) -> tuple[str, str, str]:
    return (str(resource.get("stack")), str(resource.get("type")), str(resource.get("label")))
