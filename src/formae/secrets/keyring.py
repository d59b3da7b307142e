"""The secrets key file and the sealing it does: AES-256-GCM, deterministic, with a keyed hash.

``{home}/secrets.key`` (mode 0600) holds JSON: the keys by id, which one is current, and the hash
key. Sealing is deterministic — the nonce is an HMAC of the key id and the value (the synthetic-IV
construction) — so the same value sealed twice under one key gives the same text, and documents
holding sealed values compare equal exactly when their secrets do (the planner, the synchronizer).
Nonces can only repeat for the same value, which GCM tolerates.

The ``$hash`` is HMAC-SHA256 under a hash key that rotation keeps, so a secret sealed before a
rotation still compares by hash with the same value sealed after it. ``rotate`` makes a new
current key; older keys stay in the file to open what was sealed with them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from formae.secrets.values import OPAQUE, SET_ONCE

_AAD = b"formae secret v1"


class KeyringError(Exception):
    """The key file is unreadable or damaged, or a sealed value cannot be opened with it."""


@dataclass
class SecretKeyring:
    path: Path
    keys: dict[str, bytes] = field(repr=False)
    current: str
    hash_key: bytes = field(repr=False)

    @classmethod
    def load_or_create(cls, path: Path) -> SecretKeyring:
        if not path.exists():
            keyring = cls(path, {"k1": AESGCM.generate_key(256)}, "k1", secrets.token_bytes(32))
            keyring._write(create=True)
            return keyring
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            keys = {k: base64.b64decode(v) for k, v in data["keys"].items()}
            keyring = cls(path, keys, str(data["current"]), base64.b64decode(data["hash_key"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise KeyringError(f"the secrets key file {path} cannot be read: {error}") from None
        if keyring.current not in keys:
            raise KeyringError(f"the secrets key file {path} names a current key it does not hold")
        return keyring

    def rotate(self) -> str:
        """A new current key, kept beside the old ones; its id."""
        number = 1 + max(int(k.removeprefix("k")) for k in self.keys if k.removeprefix("k").isdigit())
        new_id = f"k{number}"
        self.keys[new_id] = AESGCM.generate_key(256)
        self.current = new_id
        self._write(create=False)
        return new_id

    def digest(self, value: Any) -> str:
        return hmac.new(self.hash_key, _canonical(value), hashlib.sha256).hexdigest()

    def seal(self, value: Any, *, set_once: bool = False) -> dict[str, Any]:
        key_id, plain = self.current, _canonical(value)
        nonce = hmac.new(self.keys[key_id], key_id.encode() + b"\0" + plain, hashlib.sha256).digest()[:12]
        sealed = nonce + AESGCM(self.keys[key_id]).encrypt(nonce, plain, _AAD)
        result: dict[str, Any] = {
            "$visibility": OPAQUE,
            "$sealed": f"{key_id}:{base64.b64encode(sealed).decode()}",
            "$hash": self.digest(value),
        }
        if set_once:
            result["$strategy"] = SET_ONCE
        return result

    def unseal(self, sealed: dict[str, Any]) -> Any:
        key_id, _, text = str(sealed["$sealed"]).partition(":")
        key = self.keys.get(key_id)
        if key is None:
            raise KeyringError(f"a secret was sealed with key {key_id!r}, which {self.path} does not hold")
        try:
            raw = base64.b64decode(text)
            return json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], _AAD))
        except (ValueError, InvalidTag):
            raise KeyringError(
                f"a secret sealed with key {key_id!r} does not open: damaged or forged"
            ) from None

    def _write(self, *, create: bool) -> None:
        data = {
            "current": self.current,
            "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
            "hash_key": base64.b64encode(self.hash_key).decode(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_suffix(".new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(data, file)
            file.flush()
            os.fsync(file.fileno())
        if create and self.path.exists():
            temporary.unlink()
            raise KeyringError(f"{self.path} appeared while it was being made")
        os.replace(temporary, self.path)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
