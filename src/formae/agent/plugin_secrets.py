"""SecretGate: where sealed secrets turn clear on the way to a plugin, and back on the way out.

Every call to a plugin passes through ``PluginLink.call``, and the link passes it through here: the
request's properties, patch, prior properties and target config have each sealed secret replaced by
formae's clear shape ``{"$value": …, "$visibility": "Opaque"}``, in memory, for that one message.
The answer is concealed before the link returns it: a clear-shaped secret is sealed again, a
string equal to a secret the request carried becomes that secret sealed, and the secret's text
anywhere in a message becomes ``(secret)``. So nothing upstream of the link — records, the store,
the log, the API — ever holds a clear value, whichever actor made the call.

A ``SetOnce`` secret is sent on create only: update requests leave it out.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from formae.secrets import Redactor, SecretKeyring
from formae.secrets.values import (
    OPAQUE,
    contains_secrets,
    is_clear,
    is_sealed,
    is_set_once,
    replace_secrets,
)
from formae.wire.types import (
    ListResult,
    OperationRequest,
    OperationResult,
    ProgressResult,
    TargetInfo,
    UpdateRequest,
)

Revealed = dict[str, dict[str, Any]]
"""The secrets one request carried: their clear value as canonical JSON → their sealed form."""


class SecretGate:
    def __init__(self, keyring: SecretKeyring, redactor: Redactor) -> None:
        self._keyring = keyring
        self._redactor = redactor

    def reveal(self, request: OperationRequest) -> tuple[OperationRequest, Revealed]:
        revealed: Revealed = {}
        changes: dict[str, Any] = {}
        drop_set_once = isinstance(request, UpdateRequest)
        for name in ("properties", "prior_properties", "desired_properties", "patch"):
            value = getattr(request, name, None)
            if value is not None:
                changes[name] = self._open(value, revealed, drop_set_once)
        target: TargetInfo = request.target
        if target.config:
            changes["target"] = dataclasses.replace(target, config=self._open(target.config, revealed, False))
        return (dataclasses.replace(request, **changes) if changes else request), revealed

    def conceal(self, result: OperationResult, revealed: Revealed) -> OperationResult:
        if isinstance(result, ProgressResult):
            return dataclasses.replace(
                result,
                properties=self._close(result.properties, revealed),
                message=self._redactor.redact(result.message),
            )
        if isinstance(result, ListResult):
            listed = [
                dataclasses.replace(r, properties=self._close(r.properties, revealed))
                if hasattr(r, "properties")
                else r
                for r in result.resources
            ]
            return dataclasses.replace(result, resources=listed)
        return result

    def _open(self, value: Any, revealed: Revealed, drop_set_once: bool) -> Any:
        if drop_set_once and isinstance(value, dict):
            value = {k: v for k, v in value.items() if not (is_sealed(v) and is_set_once(v))}

        def clear(secret: dict[str, Any]) -> Any:
            if not is_sealed(secret):
                return secret
            plain = self._keyring.unseal(secret)
            self._redactor.learn(plain)
            revealed[_canonical(plain)] = secret
            shown = {"$value": plain, "$visibility": OPAQUE}
            return {**shown, "$strategy": secret["$strategy"]} if is_set_once(secret) else shown

        return replace_secrets(value, clear) if contains_secrets(value) else value

    def _close(self, value: Any, revealed: Revealed) -> Any:
        if isinstance(value, dict):
            if is_clear(value):
                plain = value["$value"]
                self._redactor.learn(plain)
                return revealed.get(_canonical(plain)) or self._keyring.seal(plain)
            return {k: self._close(v, revealed) for k, v in value.items()}
        if isinstance(value, list):
            return [self._close(v, revealed) for v in value]
        if isinstance(value, str):
            known = revealed.get(_canonical(value)) if revealed else None
            return known if known is not None else self._redactor.redact(value)
        return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
