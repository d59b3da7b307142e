"""Time-sortable unique ids for commands, in the ULID layout, strictly increasing within a process.

48 bits of Unix milliseconds followed by 80 random bits, written as 26 Crockford base32
characters. Sorting ids as strings sorts them in creation order, which is what lets
``list_commands`` order by primary key: commands resume in that order and the out-of-band check
(``agent/drift.py``) reads history newest first by it.

Random bits alone would order ids only to the millisecond (half of the ids made within one sort
wrongly), so an :class:`IdSequence` makes each id the previous one plus one whenever the clock has
not moved past the previous id's millisecond — also when it stepped back. The process has one
sequence (``new_id``), as it has one clock: order is only promised between ids of one sequence.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LENGTH = 26
_RANDOM_BITS = 80
_MAX_MS = (1 << 48) - 1
_MAX_VALUE = (1 << 128) - 1


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class IdSequence:
    """Makes ids that sort in the order they were made; safe to share between threads."""

    def __init__(
        self,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        random_bits: Callable[[int], int] = secrets.randbits,
    ) -> None:
        self._clock_ms = clock_ms
        self._random_bits = random_bits
        self._last = -1
        self._lock = threading.Lock()

    def next(self) -> str:
        ms = self._clock_ms()
        if not 0 <= ms <= _MAX_MS:
            raise ValueError(f"timestamp {ms} ms does not fit in 48 bits")
        with self._lock:
            value = (ms << _RANDOM_BITS) | self._random_bits(_RANDOM_BITS)
            if ms <= self._last >> _RANDOM_BITS:
                value = self._last + 1  # same (or an earlier) millisecond: the next id after the last
            if value > _MAX_VALUE:
                raise ValueError("id space exhausted at the end of time")
            self._last = value
        return _encode(value)


_PROCESS_SEQUENCE = IdSequence()
"""The one sequence of this process: like the clock it extends, order needs a single source."""


def new_id() -> str:
    """A fresh id, greater than every id ``new_id`` returned before in this process."""
    return _PROCESS_SEQUENCE.next()


def id_timestamp_ms(identifier: str) -> int:
    """The Unix milliseconds encoded in an id (those of an earlier id when made in the same one)."""
    value = 0
    for char in identifier.upper():
        value = value * 32 + _ALPHABET.index(char)
    return value >> _RANDOM_BITS


def _encode(value: int) -> str:
    chars = []
    for _ in range(_LENGTH):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))
