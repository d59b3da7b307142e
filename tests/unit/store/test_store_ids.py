from __future__ import annotations

from collections.abc import Callable

import pytest

from formae.store.ids import IdSequence, id_timestamp_ms, new_id

pytestmark = pytest.mark.timeout(10)

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def clock(*readings: int) -> Callable[[], int]:
    values = iter(readings)
    return lambda: next(values)


def test_ids_are_26_crockford_characters_and_unique() -> None:
    ids = {new_id() for _ in range(10_000)}

    assert len(ids) == 10_000
    assert all(len(i) == 26 and set(i) <= CROCKFORD for i in ids)


def test_ids_made_back_to_back_sort_in_the_order_they_were_made() -> None:
    ids = [new_id() for _ in range(2_000)]  # most share a millisecond with their neighbours

    assert sorted(ids) == ids


def test_ids_of_one_millisecond_sort_in_order_whatever_the_random_bits() -> None:
    falling = iter(range(1000, 0, -1))  # each draw smaller than the last: random order would invert
    sequence = IdSequence(clock_ms=lambda: 1_700_000_000_000, random_bits=lambda _: next(falling))

    ids = [sequence.next() for _ in range(500)]

    assert sorted(ids) == ids
    assert {id_timestamp_ms(i) for i in ids} == {1_700_000_000_000}


def test_a_clock_stepping_back_does_not_break_the_order() -> None:
    sequence = IdSequence(clock_ms=clock(1_700_000_000_005, 1_700_000_000_001, 1_700_000_000_009))

    first, after_step_back, later = sequence.next(), sequence.next(), sequence.next()

    assert first < after_step_back < later
    assert id_timestamp_ms(after_step_back) == 1_700_000_000_005
    assert id_timestamp_ms(later) == 1_700_000_000_009


def test_ids_carry_their_time() -> None:
    sequence = IdSequence(clock_ms=clock(1_700_000_000_000, 1_700_000_000_001))

    earlier, later = sequence.next(), sequence.next()

    assert earlier < later
    assert id_timestamp_ms(earlier) == 1_700_000_000_000


def test_a_time_beyond_48_bits_is_refused() -> None:
    with pytest.raises(ValueError, match="48 bits"):
        IdSequence(clock_ms=lambda: 1 << 48).next()
