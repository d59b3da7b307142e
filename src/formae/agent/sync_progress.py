"""A sync run's progress in the store, so that a sync whose agent dies is continued by another.

Reads run 64 at a time and end in any order, so "how far it got" is the longest prefix of the
run's resources (in key order) that have all been read: its last key is the *checkpoint*, and the
counts stored with it are those of that prefix only. The next leader continues the run from the
resources after the checkpoint, adding to those counts, so each resource is counted once; the
few read after the checkpoint before the death are read again (a read changes nothing in the
cloud, and a write of what it found is a compare-and-append).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from formae.model import ResourceKey

SAVE_EVERY = 50
"""Prefix advances between two saves: about one small write per 50 reads."""


def key_text(key: ResourceKey) -> str:
    """A resource's place in the run's order: stack, type and label joined by tabs."""
    return "\t".join(key)


class Prefix:
    """The resources of a run in order, which are done, and the counts of the done prefix."""

    def __init__(self, keys: Sequence[ResourceKey], counts: dict[str, int]) -> None:
        self._keys = [key_text(k) for k in keys]
        self._outcomes: list[str | None] = [None] * len(keys)
        self._next = 0
        self._unsaved = 0
        self.counts = dict(counts)
        """Counts of every resource up to the checkpoint, those of earlier runs of it included."""
        self.checkpoint: str | None = None

    def done(self, index: int, outcome: StrEnum) -> bool:
        """Record one read; True when enough of the prefix advanced to be worth a save."""
        self._outcomes[index] = outcome.value
        while self._next < len(self._keys) and self._outcomes[self._next] is not None:
            finished = self._outcomes[self._next]
            assert finished is not None
            self.counts[finished] = self.counts.get(finished, 0) + 1
            self.checkpoint = self._keys[self._next]
            self._next += 1
            self._unsaved += 1
        if self._unsaved >= SAVE_EVERY:
            self._unsaved = 0
            return True
        return False


def after(keys: Sequence[ResourceKey], checkpoint: str | None) -> list[int]:
    """The indexes of the keys a continued run still has to read."""
    if checkpoint is None:
        return list(range(len(keys)))
    return [i for i, key in enumerate(keys) if key_text(key) > checkpoint]
