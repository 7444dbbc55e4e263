"""Counting what hostile or broken peers do, and logging it, boundedly.

Every incident is counted. The first of each (peer, kind) is logged as a warning, while the
pair is among the :data:`REMEMBERED` most recent; and at most :data:`LOG_BURST` warnings at
once, :data:`LOG_PER_SEC` a second after that, whatever the number of peers: the rest are
summed up in one "not logged" line when the rate allows. Peer-supplied text is escaped and
cut (:func:`~hostsim.limits.printable`), so a peer can neither forge a log line nor make one
long.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Final, Literal, TypeAlias

from hostsim.limits import TokenBucket, printable

__all__ = ["KINDS", "Incidents", "Kind"]

logger = logging.getLogger(__name__)

Kind: TypeAlias = Literal[
    "line_too_long",
    "slow_line",
    "bad_utf8",
    "bad_json",
    "bad_message",
    "bad_hello",
    "realm_mismatch",
    "own_node_id",
    "handshake_timeout",
    "tls_handshake",
    "tls_untrusted",
    "handshake_evicted",
    "silent_peer",
    "huge_peer_list",
    "bad_address",
    "request_flood",
    "list_flood",
    "inbound_cap",
    "slow_reader",
    "off_loopback",
]
KINDS: Final[dict[Kind, str]] = {
    "line_too_long": "sent a line longer than the bound; connection closed",
    "slow_line": "did not end a line within the bound of its first byte; connection closed",
    "bad_utf8": "sent a line that is not UTF-8; connection closed",
    "bad_json": "sent a line that is not JSON; connection closed",
    "bad_message": "sent a malformed message; connection closed",
    "bad_hello": "sent a HELLO with missing or wrong fields, or no HELLO; connection closed",
    "realm_mismatch": "is of another realm or realm version; connection closed",
    "own_node_id": "has this node's own node id; connection closed",
    "handshake_timeout": "did not complete the handshake in time; connection closed",
    "tls_handshake": "failed the TLS handshake (or did not finish it in time); connection closed",
    "tls_untrusted": "showed a certificate the trust policy refuses; connection closed",
    "handshake_evicted": "was still in its handshake when every inbound slot was taken and a"
    " new connection came; connection closed",
    "silent_peer": "answered probes, then was silent for the heartbeat timeout, or its TCP"
    " connection died; connection closed",
    "huge_peer_list": "sent a peer list longer than the bound; the rest was dropped unread",
    "bad_address": "sent a peer list with strings that are not IP literal addresses; skipped",
    "request_flood": "asked for peers faster than a connection is answered; not answered",
    "list_flood": "sent peer lists unasked faster than a connection is read; dropped unread",
    "inbound_cap": "connected while every inbound slot was taken; connection refused",
    "slow_reader": "does not read what it is sent; connection closed",
    "off_loopback": "is not a loopback address and this node is bound to loopback; not dialled",
}
"""Every kind of incident, and what it means, for the log."""
REMEMBERED: Final = 4096
"""(peer, kind) pairs remembered as logged, least recent out."""
LOG_BURST: Final = 20
LOG_PER_SEC: Final = 1.0
PEER_CHARS: Final = 64
DETAIL_CHARS: Final = 160


class Incidents:
    """Counts by kind; logs the first incident of each (peer, kind), at a bounded rate.

    :param clock: Seconds, for the rate (monotonic).
    """

    def __init__(self, node_id: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.node_id = node_id
        self.counts: Counter[Kind] = Counter()
        self.unlogged: Counter[Kind] = Counter()
        """Incidents the rate kept out of the log since the last summary, by kind."""
        self._logged: OrderedDict[tuple[str, Kind], None] = OrderedDict()
        self._rate = TokenBucket(LOG_PER_SEC, LOG_BURST)
        self._clock = clock

    def __call__(self, kind: Kind, peer: str, detail: str = "") -> None:
        """Count one incident of ``kind`` from ``peer`` (an IP, or an address)."""
        self.counts[kind] += 1
        key = (peer, kind)
        if key in self._logged:
            self._logged.move_to_end(key)
            return
        now = self._clock()
        if self.unlogged and self._rate.take(now):
            self._summary()
        if not self._rate.take(now):
            self.unlogged[kind] += 1
            return
        self._logged[key] = None
        if len(self._logged) > REMEMBERED:
            self._logged.popitem(last=False)
        logger.warning(
            "node %s: %s %s%s (logged once for this peer; counted as %r)",
            self.node_id,
            printable(peer, PEER_CHARS),
            KINDS[kind],
            f": {printable(detail, DETAIL_CHARS)}" if detail else "",
            kind,
        )

    def flush(self) -> None:
        """Log the summary of what was not logged, if the rate allows (the node's timer)."""
        if self.unlogged and self._rate.take(self._clock()):
            self._summary()

    def _summary(self) -> None:
        kinds = ", ".join(f"{kind} {n}" for kind, n in self.unlogged.most_common())
        logger.warning(
            "node %s: %d more incidents not logged (log rate bound): %s",
            self.node_id,
            self.unlogged.total(),
            kinds,
        )
        self.unlogged.clear()
