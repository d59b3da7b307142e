"""The command routes' own checks of their parameters."""

from __future__ import annotations

import pytest

from formae.api.command_routes import _iso_time

pytestmark = pytest.mark.timeout(5)


def test_updated_since_takes_only_an_iso_time_not_a_number_of_seconds() -> None:
    assert _iso_time("2026-01-31T12:00:00Z") == "2026-01-31T12:00:00Z"
    with pytest.raises(ValueError, match=r"'0\.5' is not an ISO 8601 time"):
        _iso_time("0.5")
