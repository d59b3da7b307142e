"""``{"$secret": {"env": NAME}}`` and ``{"$secret": {"file": PATH}}``: read by the agent, never by the CLI.

So that a secret need not sit in the forma, nor on the machine of whoever runs ``formae apply``.
Errors name the variable or the file, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 64 * 1024


class SecretError(ValueError):
    """A secret reference cannot be resolved; the message says which and why."""


def resolve(reference: dict[str, Any], env: Mapping[str, str]) -> str:
    source = reference["$secret"]
    if set(source) == {"env"} and isinstance(source["env"], str):
        name = source["env"]
        if name not in env:
            raise SecretError(f"secret from the environment: the agent has no variable {name}")
        return env[name]
    if set(source) == {"file"} and isinstance(source["file"], str):
        return _read(Path(source["file"]))
    raise SecretError('a "$secret" is {"env": NAME} or {"file": PATH}, nothing else')


def _read(path: Path) -> str:
    if not path.is_absolute():
        raise SecretError(f"secret from a file: {path} is not an absolute path")
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise SecretError(f"secret from a file: cannot read {path}: {error.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SecretError(f"secret from a file: {path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        return data.decode().removesuffix("\n")
    except UnicodeDecodeError:
        raise SecretError(f"secret from a file: {path} is not UTF-8 text") from None
