"""Counting what hostile or broken peers do, and logging it at most once per peer and kind."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Final, Literal, TypeAlias

__all__ = ["KINDS", "Incidents", "Kind"]

logger = logging.getLogger(__name__)

Kind: TypeAlias = Literal[
    "line_too_long",
    "bad_utf8",
    "bad_json",
    "bad_message",
    "bad_hello",
    "realm_mismatch",
    "own_node_id",
    "handshake_timeout",
    "silent_peer",
    "huge_peer_list",
    "inbound_cap",
    "slow_reader",
    "off_loopback",
]
KINDS: Final[dict[Kind, str]] = {
    "line_too_long": "sent a line longer than the bound; connection closed",
    "bad_utf8": "sent a line that is not UTF-8; connection closed",
    "bad_json": "sent a line that is not JSON; connection closed",
    "bad_message": "sent a malformed message; connection closed",
    "bad_hello": "sent a HELLO with missing or wrong fields, or no HELLO; connection closed",
    "realm_mismatch": "is of another realm or realm version; connection closed",
    "own_node_id": "has this node's own node id; connection closed",
    "handshake_timeout": "did not complete the handshake in time; connection closed",
    "silent_peer": "answered probes, then was silent for the heartbeat timeout, or its TCP"
    " connection died; connection closed",
    "huge_peer_list": "sent a peer list longer than the bound; the rest was dropped unread",
    "inbound_cap": "connected while every inbound slot was taken; connection refused",
    "slow_reader": "does not read what it is sent; connection closed",
    "off_loopback": "is not a loopback address and this node is bound to loopback; not dialled",
}
"""Every kind of incident, and what it means, for the log."""
_LOGGED_LIMIT: Final = 10_000
"""At most this many (peer, kind) pairs are remembered as logged; beyond, nothing is logged."""


class Incidents:
    """Counts by kind; the first incident of each (peer, kind) is logged as a warning."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.counts: Counter[Kind] = Counter()
        self._logged: set[tuple[str, Kind]] = set()

    def __call__(self, kind: Kind, peer: str, detail: str = "") -> None:
        """Count one incident of ``kind`` from ``peer`` (an IP, or an address)."""
        self.counts[kind] += 1
        key = (peer, kind)
        if key in self._logged or len(self._logged) >= _LOGGED_LIMIT:
            return
        self._logged.add(key)
        logger.warning(
            "node %s: %s %s%s (logged once for this peer; counted as %r)",
            self.node_id,
            peer,
            KINDS[kind],
            f": {detail}" if detail else "",
            kind,
        )

    def total(self) -> int:
        """Every incident counted."""
        return sum(self.counts.values())
