"""Time-sortable unique ids for commands, in the ULID layout.

48 bits of Unix milliseconds followed by 80 random bits, written as 26 Crockford base32
characters. Sorting ids as strings sorts them by creation time (to the millisecond), which is
what lets ``list_commands`` order by primary key instead of by a timestamp column.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LENGTH = 26
_RANDOM_BITS = 80
_MAX_MS = (1 << 48) - 1


def new_id(now_ms: int | None = None) -> str:
    """A fresh id; ``now_ms`` (Unix milliseconds) is for tests that need a fixed clock."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    if not 0 <= ms <= _MAX_MS:
        raise ValueError(f"timestamp {ms} ms does not fit in 48 bits")
    value = (ms << _RANDOM_BITS) | secrets.randbits(_RANDOM_BITS)
    chars = []
    for _ in range(_LENGTH):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def id_timestamp_ms(identifier: str) -> int:
    """The Unix milliseconds encoded in an id made by ``new_id``."""
    value = 0
    for char in identifier.upper():
        value = value * 32 + _ALPHABET.index(char)
    return value >> _RANDOM_BITS
