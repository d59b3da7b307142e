"""SecretIntake: the secrets of a submitted forma sealed before the command is stored or planned.

The API hands every forma here first. A forma without secrets passes untouched and costs one walk;
one with secrets is sealed against the desired properties and target config already stored, so
that an unchanged secret keeps its stored sealed form (and plans nothing) and a changed one does
not. A reference that cannot be resolved rejects the command, naming the variable or file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from formae.agent.commands import Rejected
from formae.secrets import Redactor, SecretError, SecretKeyring, contains_secrets, seal_forma
from formae.store import Datastore


class SecretIntake:
    def __init__(
        self,
        keyring: SecretKeyring,
        redactor: Redactor,
        store: Datastore,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.keyring = keyring
        self.redactor = redactor
        self._store = store
        self._env = os.environ if env is None else env

    async def seal(self, forma: Any) -> Any:
        if not contains_secrets(forma):
            return forma
        resources = {tuple(r.key): r.desired_properties for r in await self._store.current_resources()}
        targets = {t.label: t.config for t in await self._store.list_targets()}
        try:
            return seal_forma(forma, self.keyring, self.redactor, self._env, resources, targets)  # type: ignore[arg-type]
        except SecretError as error:
            raise Rejected([str(error)]) from None
