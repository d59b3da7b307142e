"""formae.backoff: the exponential formula the updater, process manager and plugin runtime share."""

from __future__ import annotations

import pytest

from formae.agent.process_manager import RestartPolicy
from formae.agent.updater import RetryPolicy
from formae.backoff import exponential_delay, jittered
from formae.plugin._runtime import Backoff

pytestmark = pytest.mark.timeout(10)


def test_the_delay_doubles_from_the_initial_one_up_to_the_cap() -> None:
    delays = [exponential_delay(n, initial=0.1, cap=1.0) for n in range(1, 7)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


@pytest.mark.parametrize("failures", [-3, 0, 1])
def test_no_failure_yet_waits_the_initial_delay(failures: int) -> None:
    assert exponential_delay(failures, initial=0.05, cap=5.0) == 0.05


def test_a_failure_that_lasts_forever_stays_at_the_cap() -> None:
    """A plugin crashing for days counts thousands of failures; 0.1 * 2**1100 would not fit in a float."""
    assert exponential_delay(1100, initial=0.1, cap=60.0) == 60.0
    assert exponential_delay(10**9, initial=0.1, cap=60.0) == 60.0


def test_jitter_spreads_the_delay_around_its_value() -> None:
    assert jittered(2.0, 0.25, uniform=lambda low, high: low) == pytest.approx(1.5)
    assert jittered(2.0, 0.25, uniform=lambda low, high: high) == pytest.approx(2.5)
    spread = [jittered(1.0, 0.2) for _ in range(200)]
    assert all(0.8 <= d <= 1.2 for d in spread)
    assert len(set(spread)) > 1


def test_the_process_manager_restarts_after_0_1_s_doubling_to_a_minute() -> None:
    policy = RestartPolicy()
    assert [policy.delay(n) for n in (1, 2, 3, 11, 5000)] == pytest.approx([0.1, 0.2, 0.4, 60.0, 60.0])


def test_the_updater_retries_with_25_percent_jitter_unless_the_plugin_asks_for_longer() -> None:
    policy = RetryPolicy(initial_delay=0.05, max_delay=5.0)
    for attempt, expected in ((1, 0.05), (3, 0.2), (20, 5.0)):
        assert all(0.75 * expected <= policy.backoff(attempt) <= 1.25 * expected for _ in range(50))
    assert policy.backoff(1, hint=30.0) == 30.0


def test_the_plugin_runtime_redials_with_20_percent_jitter_and_starts_over_after_a_reset() -> None:
    backoff = Backoff(initial=0.05, cap=2.0)
    expected = [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    for delay in expected:
        assert 0.8 * delay <= backoff.next() <= 1.2 * delay
    backoff.reset()
    assert 0.8 * 0.05 <= backoff.next() <= 1.2 * 0.05
