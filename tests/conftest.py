"""Fixtures shared by the tests."""

from __future__ import annotations

import pytest


class FakeClock:
    """A clock that stands still until a test moves it: seconds since the epoch."""

    t: float

    def __init__(self, t: float = 1_763_700_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, secs: float) -> None:
        """Move the clock forward by ``secs`` seconds."""
        self.t += secs


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock, to inject wherever the code under test reads the time."""
    return FakeClock()
