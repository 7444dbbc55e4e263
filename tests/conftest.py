"""Fixtures shared by the tests."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI runs every property on the same examples, so a red run is reproducible by anyone:
# `HYPOTHESIS_PROFILE=ci python -m pytest`. Locally the default profile explores new examples
# on each run (and `HYPOTHESIS_PROFILE=explore` many more), which is how a rare failure is found.
# No deadline in CI: a shared machine's pauses are not the code's; speed is for benchmarks/.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


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
