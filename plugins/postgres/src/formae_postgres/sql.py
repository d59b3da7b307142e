"""SQL text we must build ourselves: DDL takes no bind parameters, so names and literals are quoted here.

Every name that reaches a statement goes through ``ident``; every value that is not a name either
goes through a bind parameter (queries) or ``literal`` (DDL). Passwords never reach a statement in
clear: ``scram_verifier`` turns them into the SCRAM-SHA-256 verifier the server stores, so the
password cannot show up in the server's statement log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import quote, unquote

from formae.plugin import JsonObject

SCRAM_ITERATIONS = 4096
"""PostgreSQL's own default for SCRAM-SHA-256 verifiers."""


class Invalid(ValueError):
    """The request cannot be carried out as written; the user must change the forma."""


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    if not name or "\x00" in name:
        raise Invalid(f"{name!r} is not a valid PostgreSQL name")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"


def literal(value: str) -> str:
    """``value`` as a standard SQL string literal (standard_conforming_strings is on since 9.1)."""
    if "\x00" in value:
        raise Invalid("a PostgreSQL string cannot contain NUL")
    return "'" + value.replace("'", "''") + "'"


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The ``SCRAM-SHA-256$iter:salt$StoredKey:ServerKey`` PostgreSQL stores for ``password`` (RFC 5802)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def join_id(*parts: str) -> str:
    """A native id made of several names; each is percent-encoded, so any name survives the round trip."""
    return "/".join(quote(part, safe="") for part in parts)


def split_id(native_id: str, count: int) -> list[str]:
    parts = native_id.split("/")
    if len(parts) != count:
        raise Invalid(f"{native_id!r} is not an id of this type ({count} parts expected)")
    return [unquote(part) for part in parts]


def plain(value: Any) -> Any:
    """A value as the plugin needs it: a secret ``{"$value": …}`` is unwrapped to its value."""
    if isinstance(value, dict) and "$value" in value:
        return value["$value"]
    return value


def text(properties: JsonObject, name: str, default: str | None = None) -> str:
    """A required (or defaulted) string property, with an error that names it."""
    value = plain(properties.get(name, default))
    if value is None:
        raise Invalid(f"property {name} is required")
    if not isinstance(value, str):
        raise Invalid(f"property {name} must be a string, not {type(value).__name__}")
    return value


def optional_text(properties: JsonObject, name: str) -> str | None:
    return text(properties, name) if properties.get(name) is not None else None


def flag(properties: JsonObject, name: str, default: bool) -> bool:
    value = properties.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise Invalid(f"property {name} must be true or false, not {value!r}")
    return value


def number(properties: JsonObject, name: str, default: int) -> int:
    value = properties.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"property {name} must be an integer, not {value!r}")
    return value


def names(properties: JsonObject, name: str) -> list[str]:
    """A list-of-strings property, sorted and without duplicates (the order means nothing to PostgreSQL)."""
    value = properties.get(name) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Invalid(f"property {name} must be a list of strings")
    return sorted(set(value))
