"""Clocks a test moves by hand."""

from __future__ import annotations

START = 1_763_700_000
"""When the tests' clocks start, in seconds since the epoch (2025-11-21)."""


class FakeClock:
    """A clock that stands still until a test moves it: seconds since the epoch."""

    t: float

    def __init__(self, t: float = float(START)) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, secs: float) -> None:
        """Move the clock forward by ``secs`` seconds."""
        self.t += secs
