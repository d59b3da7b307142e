"""A sync's checkpoint is the end of the longest prefix read, with the counts of that prefix only."""

from __future__ import annotations

from formae.agent.sync_progress import Prefix, after, key_text
from formae.agent.synchronizer import Outcome
from formae.model import ResourceKey

KEYS = [ResourceKey("s", "T::S::K", label) for label in "abcd"]


def test_the_checkpoint_waits_for_the_reads_before_it() -> None:
    prefix = Prefix(KEYS, {"changed": 2})  # two read by an earlier agent's run of it

    prefix.done(1, Outcome.UNCHANGED)
    assert prefix.checkpoint is None
    prefix.done(0, Outcome.GONE)
    prefix.done(3, Outcome.UNCHANGED)

    assert prefix.checkpoint == key_text(KEYS[1])
    assert prefix.counts == {"changed": 2, "gone": 1, "unchanged": 1}


def test_a_continued_run_reads_only_what_follows_the_checkpoint() -> None:
    assert after(KEYS, None) == [0, 1, 2, 3]
    assert after(KEYS, key_text(KEYS[1])) == [2, 3]
