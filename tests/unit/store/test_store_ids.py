from __future__ import annotations

import pytest

from formae.store.ids import id_timestamp_ms, new_id

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_ids_are_26_crockford_characters_and_unique() -> None:
    ids = {new_id() for _ in range(10_000)}

    assert len(ids) == 10_000
    assert all(len(i) == 26 and set(i) <= CROCKFORD for i in ids)


def test_ids_sort_by_time_and_carry_it() -> None:
    earlier, later = new_id(now_ms=1_700_000_000_000), new_id(now_ms=1_700_000_000_001)

    assert earlier < later
    assert id_timestamp_ms(earlier) == 1_700_000_000_000


def test_a_time_beyond_48_bits_is_refused() -> None:
    with pytest.raises(ValueError, match="48 bits"):
        new_id(now_ms=1 << 48)
