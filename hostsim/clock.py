"""Host time: a protocol for clocks and the virtual clock a simulated node runs on."""

from __future__ import annotations

import math
from typing import Protocol

DEFAULT_START = 1_763_700_000.0
"""The virtual clock's default start, in seconds since the epoch (November 2025)."""


class Clock(Protocol):
    """Anything that tells the time in seconds since the epoch."""

    def now(self) -> float:
        """The current time, in seconds since the epoch."""


class VirtualClock:
    """A clock that only moves when told to, so simulated runs are exact and fast."""

    __slots__ = ("_now",)

    def __init__(self, start: float = DEFAULT_START) -> None:
        """Start the clock at ``start`` seconds since the epoch."""
        if (
            isinstance(start, bool)
            or not isinstance(start, int | float)
            or not math.isfinite(start)
        ):
            raise ValueError(f"start must be a finite number of seconds, got {start!r}")
        self._now = float(start)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r})"

    def now(self) -> float:
        """The current virtual time, in seconds since the epoch."""
        return self._now

    def advance(self, secs: float) -> None:
        """Move the clock forward by ``secs`` seconds; time never goes backwards."""
        if isinstance(secs, bool) or not isinstance(secs, int | float) or not math.isfinite(secs):
            raise ValueError(f"secs must be a finite number of seconds, got {secs!r}")
        if secs < 0:
            raise ValueError(f"secs must not be negative, got {secs!r}")
        self._now += secs

    def move_to(self, when: float) -> None:
        """Set the clock to ``when`` seconds since the epoch; time never goes backwards.

        A caller that keeps its own timeline sets the clock rather than advancing it, so
        rounding errors do not pile up over a long run.
        """
        if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
            raise ValueError(f"when must be a finite number of seconds, got {when!r}")
        if when < self._now:
            raise ValueError(f"cannot move the clock back from {self._now!r} to {when!r}")
        self._now = float(when)
