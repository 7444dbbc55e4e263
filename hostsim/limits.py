"""Bounds on what peers can make a node do: a token bucket, and log-safe text.

A token bucket allows ``burst`` events at once and ``rate`` a second after that: the live node
draws on one for the dials it makes from its address book and one for its incident warnings.
:func:`printable` makes peer-supplied text safe to log: every character outside printable
ASCII escaped, and the result cut.
"""

from __future__ import annotations

import attrs

__all__ = ["TokenBucket", "printable"]


@attrs.define
class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` a second; the clock is the caller's (seconds)."""

    rate: float
    burst: float
    tokens: float = attrs.field(init=False)
    at: float | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self.tokens = self.burst

    def _refill(self, now: float) -> None:
        if self.at is not None and now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now if self.at is None else max(self.at, now)

    def available(self, now: float) -> int:
        """Whole tokens there are at ``now``."""
        self._refill(now)
        return int(self.tokens)

    def take(self, now: float, count: float = 1.0) -> bool:
        """Take ``count`` tokens if there are as many; whether it did."""
        self._refill(now)
        if self.tokens < count:
            return False
        self.tokens -= count
        return True


def printable(text: str, limit: int = 120) -> str:
    """``text`` safe for a log line: at most ``limit`` characters of it, anything outside
    printable ASCII escaped (``\\n``, ``\\x1b``, ``\\u202e``...), ``...`` where it was cut."""
    cut = text[:limit]
    if cut.isascii() and cut.isprintable():
        safe = cut
    else:
        safe = "".join(c if " " <= c <= "~" else ascii(c)[1:-1] for c in cut)
    return safe + "..." if len(text) > limit else safe
