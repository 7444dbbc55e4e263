"""How long a node waits before it dials an address again: every backoff schedule of the host.

One shape serves both (:func:`backoff_secs`): a base wait, multiplied per failure in a row,
capped.

- **The plan.** An address a plugin returned from ``on_startup`` is retried with TheNodes 0.4's
  ``[network.connection_policy]`` reconnect delay (:class:`RetryPolicy`: 1 s, doubling, at most
  60 s, 20% jitter; no retry after 8 failed dials in a row). Whatever the table says, two dials
  of one address are at least :data:`MIN_REDIAL_SECS` (0.25 s) apart and at most
  :data:`MAX_RETRY_ATTEMPTS` (1,000) fail in a row before the plan gives the address up.
- **The book.** Any other address that failed is not dialled again for
  :data:`BOOK_RETRY_BASE_SECS` (30 s), doubling per failure in a row up to
  :data:`BOOK_RETRY_MAX_SECS` (10 minutes), without jitter and without end.

:class:`~hostsim.core.NodeCore` applies both; see :mod:`hostsim.core` for the node's lifecycle.
"""

from __future__ import annotations

import attrs

from hostsim.config import ConnectionPolicy

__all__ = [
    "BOOK_RETRY_BASE_SECS",
    "BOOK_RETRY_MAX_SECS",
    "MAX_RETRY_ATTEMPTS",
    "MIN_REDIAL_SECS",
    "RetryPolicy",
    "backoff_secs",
]

MIN_REDIAL_SECS = 0.25
"""The shortest wait between two dials of one planned address, whatever the config says: at
most 241 dials of one address in any minute. TheNodes' own floor is a millisecond, so a table with
``reconnect_base_delay_ms = 0`` and ``reconnect_multiplier = 1`` would have a node dial a dead
peer hundreds of times a second, each a status line, a hook call and a store record."""
MAX_RETRY_ATTEMPTS = 1000
"""The most dials of one planned address that fail in a row before its retries stop, whatever
``reconnect_max_attempts`` says (TheNodes takes up to 2**32 - 1). At the floor that is a little
over four minutes of dials; at TheNodes' default delays about 16 hours. The address stays in
the book, where it is retried as any other (:data:`BOOK_RETRY_BASE_SECS`)."""
BOOK_RETRY_BASE_SECS = 30.0
"""The wait after an address from the book first fails."""
BOOK_RETRY_MAX_SECS = 600.0
"""The longest wait after an address from the book failed, however often."""


def backoff_secs(failures: int, *, base_secs: float, multiplier: float, max_secs: float) -> float:
    """The wait after the ``failures``-th failure in a row: ``base_secs * multiplier **
    (failures - 1)``, at most ``max_secs``."""
    try:
        return min(base_secs * multiplier ** (failures - 1), max_secs)
    except OverflowError:
        return max_secs


@attrs.frozen
class RetryPolicy:
    """How a failed dial of a planned address is retried: TheNodes 0.4's connection policy.

    The wait after the ``n``-th failure in a row is ``base_secs * multiplier ** (n - 1)``, at
    most ``max_secs``, then spread by +/- ``jitter`` (so it may exceed ``max_secs`` by that
    much); after ``max_attempts`` failures in a row (the first dial counts) no retry is made.
    As TheNodes' ``ConnectionPolicy::reconnect_delay``, with hostsim's bounds on what one
    address gets, which hold however the policy was made: never a wait under
    :data:`MIN_REDIAL_SECS` (TheNodes: a millisecond), never more than
    :data:`MAX_RETRY_ATTEMPTS` failures in a row.
    """

    base_secs: float = 1.0
    multiplier: float = 2.0
    max_secs: float = 60.0
    max_attempts: int = 8
    jitter: float = 0.2

    def delay(self, failures: int, draw: float) -> float | None:
        """The wait before the next attempt after ``failures`` failed ones, or None: give up.

        :param draw: A uniform number in [0, 1) for the jitter.
        """
        if failures >= min(self.max_attempts, MAX_RETRY_ATTEMPTS):
            return None
        wait = backoff_secs(
            failures, base_secs=self.base_secs, multiplier=self.multiplier, max_secs=self.max_secs
        )
        return max(wait * (1.0 + self.jitter * (2.0 * draw - 1.0)), MIN_REDIAL_SECS)

    @classmethod
    def of(cls, policy: ConnectionPolicy) -> RetryPolicy:
        """The retry part of a ``[network.connection_policy]`` table, with TheNodes' lower limits
        (``ConnectionPolicy::from_config``): a base of at least 1 ms, a multiplier of at least
        1, a cap of at least the base. :meth:`delay` adds hostsim's bounds."""
        base_ms = max(policy.reconnect_base_delay_ms, 1)
        return cls(
            base_secs=base_ms / 1000,
            multiplier=max(policy.reconnect_multiplier, 1.0),
            max_secs=max(policy.reconnect_max_delay_ms, base_ms) / 1000,
            max_attempts=policy.reconnect_max_attempts,
            jitter=policy.reconnect_jitter_ratio,
        )
