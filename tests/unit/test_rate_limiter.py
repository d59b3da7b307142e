"""RateLimiter: a token bucket per namespace, reserved ahead so waiters sleep once and in order."""

from __future__ import annotations

import asyncio

import pytest

from formae.agent.rate_limiter import RateLimiter
from tests.unit.fakes import FakeClock

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def limiter(clock: FakeClock) -> RateLimiter:
    return RateLimiter(clock=clock)


def test_unconfigured_namespace_is_unlimited(limiter: RateLimiter) -> None:
    assert [limiter.reserve("FakeAWS") for _ in range(100)] == [0.0] * 100
    assert limiter.rate("FakeAWS") == 0.0


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_rate_zero_or_less_is_unlimited(limiter: RateLimiter, rate: float) -> None:
    limiter.configure("FakeAWS", rate)
    assert [limiter.reserve("FakeAWS") for _ in range(1000)] == [0.0] * 1000


def test_burst_then_spacing(limiter: RateLimiter, clock: FakeClock) -> None:
    limiter.configure("FakeAWS", rate=4)
    assert [limiter.reserve("FakeAWS") for _ in range(4)] == [0.0] * 4  # a second's worth at once
    assert limiter.reserve("FakeAWS") == pytest.approx(0.25)
    clock.advance(10)  # long idle refills only up to the burst
    assert [limiter.reserve("FakeAWS") for _ in range(4)] == [0.0] * 4
    assert limiter.reserve("FakeAWS") == pytest.approx(0.25)


def test_tokens_refill_at_the_rate(limiter: RateLimiter, clock: FakeClock) -> None:
    limiter.configure("FakeAWS", rate=10, burst=1)
    assert limiter.reserve("FakeAWS") == 0.0
    clock.advance(0.1)
    assert limiter.reserve("FakeAWS") == pytest.approx(0.0, abs=1e-9)
    clock.advance(0.05)
    assert limiter.reserve("FakeAWS") == pytest.approx(0.05)


def test_reservations_for_n_callers_are_one_over_rate_apart(limiter: RateLimiter) -> None:
    limiter.configure("FakeAWS", rate=5, burst=1)
    delays = [limiter.reserve("FakeAWS") for _ in range(6)]
    assert delays == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_waiting_callers_are_released_later_as_time_passes(limiter: RateLimiter, clock: FakeClock) -> None:
    limiter.configure("FakeAWS", rate=2, burst=1)
    assert [limiter.reserve("FakeAWS") for _ in range(3)] == pytest.approx([0.0, 0.5, 1.0])
    clock.advance(1.0)  # the two waiters have used their slots; the next is 0.5s after the last
    assert limiter.reserve("FakeAWS") == pytest.approx(0.5)


def test_slow_rates_get_a_burst_of_one(limiter: RateLimiter) -> None:
    limiter.configure("Slow", rate=0.5)
    assert [limiter.reserve("Slow") for _ in range(3)] == pytest.approx([0.0, 2.0, 4.0])


def test_namespaces_are_independent(limiter: RateLimiter) -> None:
    limiter.configure("A", rate=1)
    limiter.configure("B", rate=100)
    assert [limiter.reserve("A") for _ in range(3)] == pytest.approx([0.0, 1.0, 2.0])
    assert [limiter.reserve("B") for _ in range(100)] == [0.0] * 100
    assert limiter.reserve("C") == 0.0
    assert (limiter.rate("A"), limiter.rate("B"), limiter.rate("C")) == (1, 100, 0.0)


def test_configure_resets_the_bucket(limiter: RateLimiter) -> None:
    limiter.configure("FakeAWS", rate=1)
    assert [limiter.reserve("FakeAWS") for _ in range(3)] == pytest.approx([0.0, 1.0, 2.0])
    limiter.configure("FakeAWS", rate=2)
    assert limiter.rate("FakeAWS") == 2
    assert [limiter.reserve("FakeAWS") for _ in range(3)] == pytest.approx([0.0, 0.0, 0.5])
    limiter.configure("FakeAWS", rate=0)
    assert limiter.reserve("FakeAWS") == 0.0


async def test_acquire_sleeps_only_for_the_reserved_delay(
    limiter: RateLimiter, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr("formae.agent.rate_limiter.asyncio.sleep", fake_sleep)
    limiter.configure("FakeAWS", rate=10, burst=2)
    await asyncio.gather(*(limiter.acquire("FakeAWS") for _ in range(5)))
    assert slept == pytest.approx([0.1, 0.2, 0.3])  # two from the burst never sleep


async def test_a_cancelled_waiter_gives_its_slot_back(limiter: RateLimiter) -> None:
    limiter.configure("FakeAWS", rate=1, burst=1)
    assert limiter.reserve("FakeAWS") == 0.0  # the burst is used: the next waiter sleeps a second
    waiter = asyncio.create_task(limiter.acquire("FakeAWS"))
    await asyncio.sleep(0)  # the waiter has reserved its slot and sleeps
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # its slot is free again: the next caller waits one second, not two
    assert limiter.reserve("FakeAWS") == pytest.approx(1.0)
