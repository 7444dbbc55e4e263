"""PeerStore: the in-memory policy of the peer store. No I/O; the clock is injected.

Rules (see DESIGN.md):

- Entries are keyed by canonical address. Own addresses and own node id are never stored.
- Trust only goes up: Connected > Bootstrap > Claimed > Gossip. Gossip never downgrades an entry
  and refreshes ``last_seen`` only of entries that are still Gossip, at most once per
  ``refresh_secs``.
- Only a handshake on a connection the node dialled proves an address (Connected). An inbound
  peer's advertised listen address is a claim (Claimed) until a dial to it succeeds; the
  reconnect plan holds proven peers only.
- Entries age by the node's running time: time the node was stopped (the ``offline``
  intervals) does not count towards ``ttl_secs``, and the ``reconnect_limit`` proven peers of
  longest standing that are not failing (anchors) never expire by time alone.
- Standing, not recency, ranks proven peers (Bitcoin's anchors and test-before-evict): a proven
  entry's ``first_seen`` is when a dial to it first succeeded, and a peer that still answers
  keeps its rank against any number of newer proven peers; one that does not ranks after
  every peer that still answers, most recently connected first. So a burst of new connections
  (an attacker's addresses the node dialled) cannot take over the reconnect plan or the
  anchors, and a dead peer is replaced once a dial to it fails.
- Standing is earned by answering the node's own dials, never by connecting in: a peer still
  answers when its last judged dial did not fail and it answered a dial (``last_connected``;
  a connection the node dialled counts until it ends) within ``ttl_secs`` of running time. An
  inbound connection refreshes ``last_seen``, which keeps the entry from expiring, and nothing
  else.
- A failed dial is judged the peer's own, and costs it its standing (``last_attempt`` after
  ``last_connected``), when the node's uplink demonstrably worked at the time: the failure
  counts (below), or the node completed an outbound handshake with any peer within
  :data:`UPLINK_PROOF_SECS` of it, before or after. A failure with no such handshake near it
  (an outage: nothing the node dials answers) changes nothing, so an outage neither reorders
  nor strips the peers; a peer judged failing regains its place by answering a dial.
- The store holds at most ``max_entries``. A new entry may evict only entries of its own or a
  lower tier, Gossip oldest first, then Claimed, then Bootstrap, then Connected, so gossip can
  never push out anything but gossip; when nothing may be evicted, the new entry is dropped.
- A failed dial counts against a peer only while the node's own connectivity is proven: live
  outbound connections in at least two network groups (Bitcoin Core's rule), so an outage of
  the node's own uplink strips no peer. After a restart each proven peer gets a dial whatever
  its backoff.
- A gap the node was not running for (:meth:`PeerStore.skip`: a suspended host, a clock jump)
  ages nothing, like a stop.
- A proof names the certificate it was made with (TOFU by address). The fingerprint of the
  certificate a peer presents to the dial that proves it is remembered (``cert_fingerprint``);
  a later dial of that address that meets another certificate, or none (plaintext), has not
  reached the peer the node proved: the entry keeps its tier but is no longer proven
  (``cert_changed_to`` says what answered), so it leaves the plan and the anchors. A dial
  that meets another certificate again proves nothing (that would hand the proof to whoever
  answers there now); the remembered certificate answering again restores the proof, and so
  does the operator accepting the new one (:func:`accept_certificate`). Only the node's own
  dials judge a certificate, as only they prove: an inbound connection changes none.
- What entries hold beyond their address and times (node ids, capabilities) is bounded in all
  (``extras_budget``), proven and unproven entries each to half, so the file the store makes
  stays one its loader reads whole.
- Each tier is an ordered dict kept in ``last_seen`` order, so every mutation is O(1) amortised.
"""

from __future__ import annotations

import collections
import enum
import heapq
import itertools
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Literal

import attrs

from thenodes_peerstore.errors import AddressError, CertificateError, ClockError, Reason
from thenodes_peerstore.model import (
    DIALABLE_V4_PATTERN,
    GLOBAL_V4_PATTERN,
    NO_CERTIFICATE,
    Address,
    PeerEntry,
    PlanHead,
    Scope,
    Source,
    canonical_addr,
    network_group,
    parse_address,
    seen_first,
    valid_capabilities,
    valid_fingerprint,
    valid_node_id,
)

BACKOFF_BASE_SECS = 30
"""The wait after a first failed dial; it doubles with each further failure."""
BACKOFF_MAX_SECS = 3600
"""The longest wait between dials of a failing address."""
MAX_ADDRS_PER_MESSAGE = 1000
"""Addresses taken from one peer list; the rest are counted and dropped unread."""
GOSSIP_PER_SENDER_PER_HOUR = 128
"""New entries one sender may add per hour, unless the store is configured otherwise."""
MAX_SAMPLES = 8
"""Rejections kept, with their addresses, in one :class:`IngestReport`; the rest are counted."""
_HOUR = 3600
_MAX_SENDERS = 4096
"""Sender groups whose hourly share is tracked; past that, new groups share one bucket."""
_OVERFLOW = "*"
"""The bucket every sender group shares while the table of groups is full."""
TERRIBLE_FAILURES = 10
"""Failed dials in a row after which a proven peer no longer counts as an anchor."""
MAX_OFFLINE_INTERVALS = 32
"""Stopped intervals remembered; the oldest are forgotten first (their entries then age)."""
ONLINE_GROUPS = 2
"""Network groups the node's live outbound connections must span before a failed dial counts
against the address dialled: below that, the failure may well be the node's own."""
UPLINK_PROOF_SECS = 60
"""How near in time to a failed dial the node must complete an outbound handshake with some
peer, before or after it, for the failure to cost the peer its standing: the node's uplink
worked then, so the fault is the peer's. A minute covers the dials a start makes at once
(a refused dial fails at once, a silent one after its connect timeout, while the others
complete their handshakes); an outage that outlasts it judges nothing."""

HEAD_ENTRIES = 32
"""Proven peers a save writes first (:meth:`PeerStore.plan_head`): room for the plan's one peer
per network group to be found among them, and for its anchors."""

Direction = Literal["outbound", "inbound"]
_TIERS = tuple(Source)  # least trusted first
_ADDR = operator.attrgetter("addr")
_NEVER = 2**63  # later than any time an entry can hold
_LAST_SEEN = operator.attrgetter("last_seen")
_SEEN_THEN_ADDR = operator.attrgetter("last_seen", "addr")
_DIALABLE_V4 = re.compile(DIALABLE_V4_PATTERN)
_GLOBAL_V4 = re.compile(GLOBAL_V4_PATTERN)


@attrs.frozen
class Rejection:
    """An address that was not recorded, and why."""

    addr: object
    reason: str
    kind: Reason = Reason.MALFORMED


@attrs.frozen
class IngestReport:
    """What recording a batch of addresses did.

    ``counts`` has every rejection by kind; ``rejected`` keeps the first :data:`MAX_SAMPLES`
    of them with their addresses, so a flood costs no memory to report.
    """

    added: int = 0
    refreshed: int = 0
    rejected: tuple[Rejection, ...] = ()
    counts: Mapping[Reason, int] = attrs.field(factory=dict)

    @property
    def rejected_total(self) -> int:
        """How many addresses were not recorded."""
        return sum(self.counts.values())


class DropReason(enum.Enum):
    """Why loading did not keep an entry."""

    OWN = "own"
    """The node's own address or id: it never stores itself."""
    EXPIRED = "expired"
    """Not seen within ``ttl_secs`` of the node's running time (and not an anchor)."""
    DUPLICATE = "duplicate"
    """Another entry for the same address stays: the more trusted, more recently seen one."""
    OVER_CAP = "over the cap"
    """Beyond ``max_entries``: the most trusted, most recently seen entries stay."""


@attrs.frozen
class Dropped:
    """An entry loading did not keep, and why."""

    index: int
    """Its position among the entries loaded."""
    entry: PeerEntry
    """The entry as it was given (its times not yet clamped)."""
    reason: DropReason


@attrs.frozen
class LoadReport:
    """What loading entries into the store did.

    The counts tally the load's passes in order (expiry, own addresses, repeated addresses,
    the cap), each entry counted by the first that removes it. :attr:`dropped` names every
    entry not kept, in the order given, with the reason that explains it best: an entry whose
    address another entry keeps is a duplicate whatever else it is; one whose address no entry
    keeps is the node's own, else past its TTL; an entry kept for its address that the cap
    pushes out (and any exact copy of it) is over the cap.
    """

    loaded: int = 0
    clamped: int = 0
    expired: int = 0
    evicted: int = 0
    own: int = 0
    duplicates: int = 0
    dropped: tuple[Dropped, ...] = ()


def last_proof(entry: PeerEntry) -> int:
    """When a proven peer last answered one of the node's dials, as far as its entry tells:
    ``last_connected``, or, for an entry vouched for without one (``peerstore add --source
    Connected``), the time it was proven, ``first_seen``."""
    if entry.last_connected is None:
        return entry.first_seen
    return max(entry.last_connected, entry.first_seen)


def last_dial_failed(entry: PeerEntry) -> bool:
    """Whether the last dial of a peer that the node could judge failed: a failure counts
    against it, or its last recorded attempt came after its last answer."""
    if entry.failures > 0:
        return True
    return entry.last_attempt is not None and entry.last_attempt > last_proof(entry)


def retry_at(entry: PeerEntry) -> int | None:
    """When a failing address may be dialled again, or None when it is not backing off."""
    if entry.failures <= 0 or entry.last_attempt is None:
        return None
    delay: int = min(BACKOFF_BASE_SECS << min(entry.failures - 1, 32), BACKOFF_MAX_SECS)
    return entry.last_attempt + delay


class CertVerdict(enum.Enum):
    """What the certificate a dial met says of the peer an entry was proven as."""

    NONE = "none"
    """No certificate remembered and none met: a proof on plaintext, as ever."""
    FIRST = "first"
    """A certificate where none is remembered: the peer's from this proof on (trust on first
    use), whether the address was proven before on plaintext or is proven now."""
    SAME = "same"
    """The certificate the peer was proven with: the proof stands."""
    CHANGED = "changed"
    """Another certificate, or none, where one is remembered: not the peer the node proved.
    The dial proves nothing, and the entry is not proven until :data:`RESTORED` or accepted."""
    RESTORED = "restored"
    """The certificate the peer was proven with, after a dial met another: the peer the node
    proved answers again, and its proof is back as it stood."""


@attrs.frozen
class CertificateCheck:
    """The certificate an outbound handshake met, against what the address's entry remembers."""

    addr: str
    verdict: CertVerdict
    remembered: str | None
    """The fingerprint the peer was proven with (``cert_fingerprint``), or None."""
    presented: str
    """What the dial met: a fingerprint, or :data:`~thenodes_peerstore.model.NO_CERTIFICATE`."""
    recorded: str | None = None
    """What the entry recorded as met instead before this dial (``cert_changed_to``)."""

    @property
    def news(self) -> bool:
        """Whether the dial tells what the entry does not say yet: a proof lost now, or another
        certificate than the one met last."""
        return self.verdict is CertVerdict.CHANGED and self.presented != self.recorded


def check_certificate(
    addr: str, entry: PeerEntry | None, fingerprint: str | None
) -> CertificateCheck:
    """What a completed outbound handshake with the peer at ``addr`` says, the peer having
    presented the certificate of ``fingerprint`` (None: none, a plaintext connection), against
    the address's ``entry`` (None for a new address).

    Raise :class:`CertificateError` for a ``fingerprint`` that is not a SPKI SHA-256 in hex.
    """
    presented = NO_CERTIFICATE
    if fingerprint is not None:
        valid = valid_fingerprint(fingerprint)
        if valid is None:
            raise CertificateError(
                f"{addr}: certificate fingerprint {fingerprint!r} is not a SPKI SHA-256 in hex"
            )
        presented = valid
    remembered = None if entry is None else entry.cert_fingerprint
    recorded = None if entry is None else entry.cert_changed_to
    if remembered is None:
        verdict = CertVerdict.NONE if fingerprint is None else CertVerdict.FIRST
    elif presented != remembered:
        verdict = CertVerdict.CHANGED
    else:
        verdict = CertVerdict.SAME if recorded is None else CertVerdict.RESTORED
    return CertificateCheck(addr, verdict, remembered, presented, recorded)


def accept_certificate(entry: PeerEntry, fingerprint: str | None = None) -> PeerEntry:
    """``entry`` with the certificate a dial of it met last taken as the peer's own: the
    operator has checked that the peer changed its certificate. Its proof, lost to the change,
    is back as it stood (its standing, times and failures); a dial answered without a
    certificate (:data:`~thenodes_peerstore.model.NO_CERTIFICATE`) leaves the entry with no
    fingerprint, as a peer proven on plaintext.

    ``fingerprint``, when given, must be what that dial met (a fingerprint in hex of either case,
    or ``"none"``), so that what is accepted is exactly what the operator checked. Raise
    :class:`CertificateError` when no dial met another certificate, or another than
    ``fingerprint``.
    """
    met = entry.cert_changed_to
    if met is None:
        held = entry.cert_fingerprint
        raise CertificateError(
            f"{entry.addr}: no dial of it met another certificate than "
            + ("none: it has no certificate remembered" if held is None else f"its own, {held}")
            + "; nothing to accept"
        )
    if fingerprint is not None:
        wanted = NO_CERTIFICATE if fingerprint == NO_CERTIFICATE else valid_fingerprint(fingerprint)
        if wanted != met:
            raise CertificateError(
                f"{entry.addr}: the certificate a dial of it met last is {met}, not {fingerprint}"
                "; nothing accepted"
            )
    return entry.replace(
        cert_fingerprint=None if met == NO_CERTIFICATE else met, cert_changed_to=None
    )


def dialable_addr(addr: str, listen_addr: str | None, direction: Direction) -> str:
    """The address that reaches a connected peer; raise :class:`AddressError` when there is none.

    An outbound connection proves the dialled address. An inbound connection comes from an
    ephemeral port, so only the advertised listen address counts, and only when it is on the
    IP the connection came from (anything else is an unproven claim).
    """
    if direction == "outbound":
        return canonical_addr(addr)
    if direction != "inbound":
        raise AddressError(addr, f"unknown direction {direction!r}")
    if listen_addr is None:
        raise AddressError(addr, "inbound peer advertised no listen address", Reason.NO_LISTEN_ADDR)
    listen = parse_address(listen_addr)
    if listen.packed != parse_address(addr).packed:
        raise AddressError(
            listen_addr,
            f"advertised listen address is not on the peer's IP ({addr})",
            Reason.NO_LISTEN_ADDR,
        )
    return str(listen)


class PeerStore:
    """Known peers of one node in one realm, in memory."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        max_entries: int = 1024,
        ttl_secs: int = 604_800,
        reconnect_limit: int = 5,
        own_addrs: Iterable[str] = (),
        own_node_id: str | None = None,
        gossip_per_sender_per_hour: int = GOSSIP_PER_SENDER_PER_HOUR,
        max_addrs_per_message: int = MAX_ADDRS_PER_MESSAGE,
        extras_budget: int | None = None,
    ) -> None:
        if min(max_entries, ttl_secs, gossip_per_sender_per_hour, max_addrs_per_message) < 1:
            raise ValueError(
                "max_entries, ttl_secs, gossip_per_sender_per_hour and max_addrs_per_message "
                "must be positive"
            )
        if reconnect_limit < 0:
            raise ValueError("reconnect_limit must be zero or more")
        self._clock = clock
        self.max_entries = max_entries
        self.ttl_secs = ttl_secs
        self.reconnect_limit = reconnect_limit
        self.gossip_per_sender_per_hour = min(gossip_per_sender_per_hour, max(1, max_entries // 8))
        """New entries one sender may add per hour: as configured, and never over an eighth of
        ``max_entries``, so no one sender can fill the store."""
        self.max_addrs_per_message = max_addrs_per_message
        self.refresh_secs = max(1, ttl_secs // 64)
        """How stale an entry's ``last_seen`` must be before hearing of it again (a seed or a
        peer list) moves it: an hour or two is nothing against a TTL of days, and a node that
        hears the same addresses every minute then writes its file for what it learned, not
        to move times along."""
        self._senders: dict[str, tuple[float, int]] = {}
        """Each sender group's hourly bucket, least recently used first."""
        self.rejections: collections.Counter[Reason] = collections.Counter()
        """Every address not recorded since the store was made, by kind."""
        self._own_addrs = frozenset(_canonical_or_none(a) for a in own_addrs) - {None}
        self._own_node_id = own_node_id
        self._tiers: tuple[collections.OrderedDict[str, PeerEntry], ...] = tuple(
            collections.OrderedDict() for _ in _TIERS
        )
        """One ordered dict per tier, indexed by :class:`Source`, oldest recorded first. An
        address is in one tier only; finding it costs at most one lookup per tier, which keeps
        no second index of every address in memory.

        Ordered dicts, not plain ones in insertion order: a plain dict would hold an entry in 52
        bytes less, but it keeps the slots of the entries taken from its oldest end until it
        next grows, and every search from that end walks past them: at the largest cap, a
        new gossip address that evicts the oldest cost 9.3 us with plain dicts, where it costs
        3.9 here, and 3.6 at the default cap (``python -m benchmarks.bench_paths``, evict).
        """
        self.offline: tuple[tuple[int, int], ...] = ()
        """When the node was stopped: ``(stopped, started)`` pairs in Unix seconds, oldest
        first. Entries do not age while the node is stopped."""
        self._oldest_seen = _NEVER
        """No entry has a ``last_seen`` before this (a lower bound, exact after a full scan)."""
        self._connected: collections.Counter[str] = collections.Counter()
        self._outbound: collections.Counter[str] = collections.Counter()
        """Live outbound connections by dialled address."""
        self._failed_here: set[str] = set()
        """Addresses whose dial failed in this process: only their backoff holds back the plan,
        so a restart gives every other proven peer a dial."""
        self._last_handshake: int | None = None
        """When this process last completed an outbound handshake: its uplink worked then."""
        self._unjudged: collections.OrderedDict[str, int] = collections.OrderedDict()
        """Failed dials not judged yet (no outbound handshake near them so far), by address,
        with when they failed, oldest first: an outbound handshake within
        :data:`UPLINK_PROOF_SECS` judges them. At most one per stored address."""
        self._extras_cap = None if extras_budget is None else max(0, extras_budget) // 2
        """What the proven entries, and the unproven ones, may each hold in node ids and
        capabilities (:func:`extras_size`), or None for no bound."""
        self._extras = [0, 0]
        """What the unproven [0] and proven [1] entries hold now, by :func:`extras_size`."""
        self.changes = 0
        """Counts mutations; a persistence layer compares it to know whether it must save."""

    # -- reading -----------------------------------------------------------------------------

    def now(self) -> int:
        """The clock, in whole seconds; raise :class:`ClockError` when it is not a time."""
        when = self._clock()
        try:
            now = int(when)
        except (TypeError, ValueError, OverflowError):  # NaN, infinity, not a number
            raise ClockError(
                f"the host clock returned {when!r}, not a time in Unix seconds"
            ) from None
        if not 0 <= now < _NEVER:
            raise ClockError(f"the host clock returned {when!r}, outside 0 to 2**63 seconds")
        return now

    def __len__(self) -> int:
        return sum(map(len, self._tiers))

    def __contains__(self, addr: object) -> bool:
        return any(addr in tier for tier in self._tiers)

    def __iter__(self) -> Iterator[PeerEntry]:
        for tier in _TIERS:
            yield from self._tiers[tier].values()

    def get(self, addr: str) -> PeerEntry | None:
        """The entry for a canonical address, or None."""
        for tier in self._tiers:
            entry = tier.get(addr)
            if entry is not None:
                return entry
        return None

    def entries(self) -> list[PeerEntry]:
        """Every entry, most trusted and most recently seen first."""
        ordered: list[PeerEntry] = []
        for tier in reversed(_TIERS):
            # Two stable passes with C-level keys: newest first, ties by address. Each tier is
            # kept close to last_seen order, so the second pass is nearly linear.
            entries = sorted(self._tiers[tier].values(), key=_ADDR)
            entries.sort(key=_LAST_SEEN, reverse=True)
            ordered += entries
        return ordered

    def by_tier(self, first: Sequence[PeerEntry] = ()) -> list[PeerEntry]:
        """Every entry, most trusted first and, within a tier, most recently recorded first;
        ``first``, ``Connected`` entries of the store (:meth:`plan_head`'s), before all.

        Close to :meth:`entries` (recording an entry moves it to the front of its tier) but
        without sorting: this is the order a save writes, once a minute, on every node.
        """
        ordered = list(first)
        chosen = {id(entry) for entry in first}
        for tier in reversed(_TIERS):
            entries = reversed(self._tiers[tier].values())
            if chosen and tier is Source.CONNECTED:  # only this tier can hold them
                ordered += [entry for entry in entries if id(entry) not in chosen]
            else:
                ordered += entries
        return ordered

    def count(self, source: Source) -> int:
        """How many entries have this source."""
        return len(self._tiers[source])

    def suspended(self) -> int:
        """How many ``Connected`` entries are not proven: a dial met another certificate at
        their address than the one they were proven with."""
        return sum(not e.proven for e in self._tiers[Source.CONNECTED].values())

    # -- recording ---------------------------------------------------------------------------

    def record_bootstrap(self, addrs: Iterable[object]) -> IngestReport:
        """Record the configured seeds as Bootstrap entries."""
        return self._ingest(addrs, Source.BOOTSTRAP)

    def record_gossip(self, addrs: Iterable[object], *, sender: str | None = None) -> IngestReport:
        """Record addresses from a peer list (untrusted) as Gossip entries.

        At most ``max_addrs_per_message`` are read. With ``sender`` (the ``ip:port`` the list came
        from), addresses of a narrower scope than the sender's are refused (a public sender's
        private, link-local or loopback addresses; a private sender's loopback ones), and the
        sender may add at most ``gossip_per_sender_per_hour`` new entries per hour.
        """
        return self._ingest(addrs, Source.GOSSIP, sender)

    def check_certificate(self, addr: str, fingerprint: str | None) -> CertificateCheck:
        """What an outbound handshake with ``addr`` that met the certificate of ``fingerprint``
        (None: none) says against the address's entry (:func:`check_certificate`), before
        :meth:`record_connected` records it. Raise :class:`AddressError` for an address that
        cannot be stored, :class:`CertificateError` for a fingerprint that is not one."""
        key = canonical_addr(addr)
        return check_certificate(key, self.get(key), fingerprint)

    def record_connected(
        self,
        addr: str,
        *,
        listen_addr: str | None = None,
        direction: Direction = "outbound",
        node_id: object = None,
        capabilities: object = (),
        cert_fingerprint: str | None = None,
    ) -> str:
        """Record a completed handshake; return the dialable address recorded.

        ``cert_fingerprint`` is the SPKI SHA-256 of the certificate the peer presented, or None
        (plaintext): an outbound handshake proves the address only as the peer it was proven
        as (:func:`check_certificate`); one that met another certificate, or none where one is
        remembered, proves nothing, and the entry is no longer proven (see the module's rules).
        Inbound handshakes judge no certificate.

        Raise :class:`AddressError` when the connection has no storable dialable address, and
        :class:`CertificateError` for a fingerprint that is not one; either records nothing.
        """
        key = dialable_addr(addr, listen_addr, direction)
        if key in self._own_addrs:
            raise AddressError(key, "one of this node's own addresses", Reason.OWN)
        if self._own_node_id is not None and node_id == self._own_node_id:
            raise AddressError(key, "a connection to this node itself", Reason.OWN)
        now = self.now()
        outbound = direction == "outbound"
        known = self.get(key)
        check = check_certificate(key, known, cert_fingerprint) if outbound else None
        if check is not None and check.verdict is CertVerdict.CHANGED:
            # Not the peer the node proved: someone answered there (seen), and nothing else of
            # the entry is taken from it, its claims of id and capabilities neither.
            assert known is not None  # only an entry remembers a certificate
            self._put(known.replace(last_seen=now, cert_changed_to=check.presented))
            self._connected[key] += 1
            self._outbound[key] += 1
            self._uplink_proven(now)  # the node's uplink worked all the same
            return key
        entry = known or PeerEntry.new(key, Source.CLAIMED, now)
        changes: dict[str, object] = {
            "last_seen": now,
            "node_id": valid_node_id(node_id) or entry.node_id,
            "capabilities": valid_capabilities(capabilities),
        }
        if check is not None:  # the node dialled this address and the handshake completed: proof
            changes.update(
                source=Source.CONNECTED, last_connected=now, last_attempt=now, failures=0
            )
            if entry.source is not Source.CONNECTED:
                # A proven entry's standing counts from its proof, not from when the address
                # was first heard of: gossiping an address early buys it no standing. A proof
                # restored by its certificate keeps the standing it had.
                changes["first_seen"] = now
            if check.verdict is CertVerdict.FIRST:
                changes["cert_fingerprint"] = check.presented
            if entry.cert_changed_to is not None:
                changes["cert_changed_to"] = None
        elif entry.source < Source.CLAIMED:  # a claim outranks gossip, and nothing else
            changes["source"] = Source.CLAIMED
        entry = entry.replace(**changes)
        if key in self:
            self._put(entry)
        else:
            self._insert(entry)  # a new peer respects the cap and evicts its tier or lower
        self._connected[key] += 1
        if outbound:
            self._outbound[key] += 1
            self._uplink_proven(now)
        return key

    def record_disconnected(
        self, addr: str, *, listen_addr: str | None = None, direction: Direction = "outbound"
    ) -> str | None:
        """A connection ended: refresh ``last_seen``; return the address refreshed, if stored."""
        try:
            key = dialable_addr(addr, listen_addr, direction)
        except AddressError:
            return None
        tallies = [self._connected] + ([self._outbound] if direction == "outbound" else [])
        for live in tallies:
            if live[key] > 1:
                live[key] -= 1
            else:
                live.pop(key, None)
        entry = self.get(key)
        if entry is None:
            return None
        self._put(entry.replace(last_seen=max(entry.last_seen, self.now())))
        return key

    def record_dial_failed(self, addr: str) -> PeerEntry | None:
        """Record a failed dial of a stored address; return the entry.

        While the node is :meth:`online` the failure counts: ``failures`` goes up and the
        address backs off. Otherwise it only costs the peer its standing, and only once judged
        (see the module's rules): at once when the node completed an outbound handshake within
        :data:`UPLINK_PROOF_SECS`, else when it completes one within that time after. Until
        then, and for good in an outage, the entry is unchanged (the fault may be the node's
        own uplink).
        """
        key = _canonical_or_none(addr)
        entry = None if key is None else self.get(key)
        if entry is None:
            return entry
        now = self.now()
        if self.online():
            entry = entry.replace(failures=entry.failures + 1, last_attempt=now)
            self._failed_here.add(entry.addr)
            self._put(entry, refresh=False)
            return entry
        last = self._last_handshake
        if last is not None and abs(now - last) <= UPLINK_PROOF_SECS:
            return self._judge_failed(entry, now)
        unjudged = self._unjudged
        unjudged.pop(entry.addr, None)
        unjudged[entry.addr] = now  # the newest last
        while unjudged and now - next(iter(unjudged.values())) > UPLINK_PROOF_SECS:
            unjudged.popitem(last=False)  # too old for any later handshake to judge
        return entry

    def _uplink_proven(self, now: int) -> None:
        """An outbound handshake completed at ``now``: judge the failed dials near it."""
        self._last_handshake = now
        while self._unjudged:
            addr, failed = self._unjudged.popitem(last=False)
            entry = self.get(addr)
            if entry is not None and abs(now - failed) <= UPLINK_PROOF_SECS:
                self._judge_failed(entry, failed)

    def _judge_failed(self, entry: PeerEntry, when: int) -> PeerEntry:
        """Record that a dial of ``entry`` failed at ``when`` by the peer's fault, unless the
        entry records a later answer or attempt already."""
        later = (entry.last_attempt, entry.last_connected)
        if any(t is not None and t >= when for t in later):
            return entry
        entry = entry.replace(last_attempt=when)
        self._put(entry, refresh=False)
        return entry

    def online(self) -> bool:
        """Whether the node's own connectivity is proven: live outbound connections in at least
        :data:`ONLINE_GROUPS` network groups."""
        if len(self._outbound) < ONLINE_GROUPS:
            return False
        groups = {network_group(addr) for addr in self._outbound}
        return len(groups) >= ONLINE_GROUPS

    def is_connected(self, addr: str) -> bool:
        """Whether the node has a live connection to this canonical address."""
        return addr in self._connected

    # -- maintenance -------------------------------------------------------------------------

    def touch_connected(self) -> None:
        """Mark every peer the node is connected to right now as seen now, and every one it
        dialled and is still connected to as having answered now (``last_connected``): a
        connection the node dialled proves the peer for as long as it lasts."""
        now = self.now()
        outbound = self._outbound
        touched = 0
        for key in self._connected:
            entry = self.get(key)
            if entry is None:
                continue
            seen = entry.last_seen < now
            if key in outbound and entry.proven and (entry.last_connected or 0) < now:
                changed = (
                    {"last_seen": now, "last_connected": now} if seen else {"last_connected": now}
                )
                entry = entry.replace(**changed)
            elif seen:
                entry = entry.replace(last_seen=now)
            else:
                continue
            # What _put does with an entry whose times alone changed: it stays in its tier,
            # at the newest end, holding the same extras; no entry is seen earlier than before.
            tier = self._tiers[entry.source]
            tier[key] = entry
            tier.move_to_end(key)
            touched += 1
        self.changes += touched

    def expire(self) -> int:
        """Drop entries not seen for longer than ``ttl_secs`` of running time; return how many.

        A peer the node is connected to right now is seen now, so it never expires; nor do the
        anchors (:meth:`anchors`).
        """
        self.touch_connected()
        cutoff = self.cutoff()
        if self._oldest_seen >= cutoff:
            return 0  # no entry was seen before _oldest_seen: none can be due
        # A full scan, not just each tier's oldest end: a wall clock that steps back can leave
        # a tier slightly out of order. It runs only when an entry may be due, at most once per
        # save, and saves are O(n) anyway.
        anchors = self.anchors(self._tiers[Source.CONNECTED].values(), cutoff=cutoff)
        expired = [
            entry.addr
            for tier in self._tiers
            for entry in tier.values()
            if entry.last_seen < cutoff and entry.addr not in anchors
        ]
        for addr in expired:
            self._remove(addr)
        self._oldest_seen = min(
            (entry.last_seen for tier in self._tiers for entry in tier.values()),
            default=_NEVER,
        )
        return len(expired)

    def expire_due(self) -> int:
        """:meth:`expire`, but only when an entry may be due: cheap enough for every tick."""
        if self._oldest_seen >= self.cutoff():
            return 0
        return self.expire()

    def skip(self, since: int, until: int) -> None:
        """The node did not run from ``since`` to ``until`` (a suspended host, or a clock that
        jumped ahead): like a stop, the gap ages no entry."""
        if not 0 <= since < until:
            return
        merged = sorted((*self.offline, (since, until)))
        kept: list[tuple[int, int]] = []
        for stopped, started in merged:
            if kept and stopped <= kept[-1][1]:
                kept[-1] = (kept[-1][0], max(kept[-1][1], started))
            else:
                kept.append((stopped, started))
        self.offline = tuple(kept[-MAX_OFFLINE_INTERVALS:])
        self.changes += 1

    def cutoff(self) -> int:
        """The ``last_seen`` before which an entry has not been seen for ``ttl_secs`` of the
        node's running time: the wall clock less ``ttl_secs``, less every stopped interval
        since."""
        when, left = self.now(), self.ttl_secs
        for stopped, started in reversed(self.offline):
            if started >= when:  # an interval after now: a clock that stepped back
                when = min(when, stopped)
                continue
            if when - started > left:
                break  # the cutoff falls in running time after this interval
            left -= when - started
            when = stopped
        return when - left

    def anchors(self, entries: Iterable[PeerEntry], *, cutoff: int | None = None) -> frozenset[str]:
        """The ``reconnect_limit`` proven peers of longest standing that are not failing
        (:meth:`standing`; ``cutoff`` is :meth:`cutoff`'s, given when it is known).

        They never expire by time alone, so that a node that ran long without any peer still
        has someone to dial first; a newer peer that still answers takes the place of one
        whose dials fail.
        """
        key = self.standing(self.cutoff() if cutoff is None else cutoff)
        proven = [e for e in entries if e.proven and e.failures < TERRIBLE_FAILURES]
        proven.sort(key=key)
        return frozenset(e.addr for e in proven[: self.reconnect_limit])

    @staticmethod
    def standing(cutoff: int) -> Callable[[PeerEntry], tuple[int, int, str]]:
        """The sort key of proven peers, longest standing first.

        A peer that still answers (its last judged dial did not fail, :func:`last_dial_failed`,
        and it last answered a dial, :func:`last_proof`, at or after ``cutoff``) ranks by how
        long it has been proven (``first_seen``, the time of its proof), oldest first; after
        every such peer come the others, most recently connected first. A newer proven peer
        never outranks an established one that still answers (test-before-evict), and one that
        stops answering is replaced. Only the node's own dials count: a peer that connects in
        is seen, not proven.
        """

        def key(entry: PeerEntry) -> tuple[int, int, str]:
            # not last_dial_failed(entry) and last_proof(entry) >= cutoff, inlined: a save
            # ranks every proven entry (plan_head), in 46 ms at 65,536 where calling the two
            # took 62.
            first_seen = entry.first_seen
            connected = entry.last_connected
            proof = first_seen if connected is None or connected < first_seen else connected
            attempt = entry.last_attempt
            if entry.failures <= 0 and (attempt is None or attempt <= proof) and proof >= cutoff:
                return (0, first_seen, entry.addr)
            return (1, -(connected or 0), entry.addr)

        return key

    def load(
        self, entries: Iterable[PeerEntry], *, offline: Iterable[tuple[int, int]] = ()
    ) -> LoadReport:
        """Replace the store's contents with stored entries, applying every rule.

        ``offline`` are the intervals the node was stopped (:attr:`offline`). Times in the
        future are clamped to now, entries past their TTL (of running time, anchors excepted)
        and own addresses are dropped, a repeated address keeps its most trusted, most recent
        entry, and the cap keeps the most trusted, most recently seen entries.
        """
        now = self.now()
        self._failed_here.clear()
        self._unjudged.clear()
        self._last_handshake = None
        self.offline = _intervals(offline, now)
        cutoff = self.cutoff()
        originals = list(entries)
        fixed_entries = [entry.clamped(now) for entry in originals]
        anchors = self.anchors(fixed_entries, cutoff=cutoff)
        best: dict[str, PeerEntry] = {}
        chosen: dict[str, int] = {}
        """The position of the entry kept for each address in ``best``."""
        expired = own = duplicates = 0
        clamped = sum(map(operator.is_not, fixed_entries, originals))
        for index, fixed in enumerate(fixed_entries):
            if fixed.last_seen < cutoff and fixed.addr not in anchors:
                expired += 1
            elif self._is_itself(fixed):
                own += 1
            elif (seen := best.get(fixed.addr)) is not None:
                duplicates += 1
                if (fixed.source.rank, fixed.last_seen) > (seen.source.rank, seen.last_seen):
                    best[fixed.addr] = fixed
                    chosen[fixed.addr] = index
            else:
                best[fixed.addr] = fixed
                chosen[fixed.addr] = index
        for tier in self._tiers:
            tier.clear()
        self._extras = [0, 0]
        kept = sorted(best.values(), key=_SEEN_THEN_ADDR)
        # Within the cap no entry can evict another: put each without asking. A full file at
        # the default cap loads in 3.2 us an entry so, 4.0 through the cap's check
        # (``python -m benchmarks.bench_paths``, load).
        put = self._put if len(kept) <= self.max_entries else None
        for entry in kept:
            if put is not None:
                put(entry, new=True)
            else:
                self._insert(entry)
        self.changes += 1
        return LoadReport(
            loaded=len(self),
            clamped=clamped,
            expired=expired,
            evicted=len(best) - len(self),
            own=own,
            duplicates=duplicates,
            dropped=tuple(self._dropped(originals, fixed_entries, best, chosen)),
        )

    def _is_itself(self, entry: PeerEntry) -> bool:
        """Whether an entry is the node itself: one of its addresses, or its id."""
        return entry.addr in self._own_addrs or (
            self._own_node_id is not None and entry.node_id == self._own_node_id
        )

    def _dropped(
        self,
        originals: Sequence[PeerEntry],
        fixed_entries: Sequence[PeerEntry],
        best: Mapping[str, PeerEntry],
        chosen: Mapping[str, int],
    ) -> Iterator[Dropped]:
        """The entries :meth:`load` did not keep, in the order given (see :class:`LoadReport`)."""
        if len(self) == len(fixed_entries):
            return  # every entry kept: nothing to look for
        over_cap = {addr for addr in best if addr not in self} if len(self) < len(best) else set()
        for index, fixed in enumerate(fixed_entries):
            addr = fixed.addr
            at = chosen.get(addr)
            if at == index and addr not in over_cap:
                continue  # kept
            if at is None:
                reason = DropReason.OWN if self._is_itself(fixed) else DropReason.EXPIRED
            elif addr in over_cap and (at == index or fixed == best[addr]):
                reason = DropReason.OVER_CAP
            else:
                reason = DropReason.DUPLICATE
            yield Dropped(index, originals[index], reason)

    def reconnect_plan(self) -> list[str]:
        """Up to ``reconnect_limit`` proven peers to dial first, longest standing first
        (:meth:`standing`): a burst of newer proven peers cannot displace the established ones
        that still answer.

        Own addresses, live connections and entries still backing off from a dial that failed
        in this process are skipped: a restart gives each proven peer a dial, whatever its
        backoff was. The plan prefers one peer per network group (/16 IPv4, /32 IPv6), and
        fills any room left with the next peers in standing.
        """
        now = self.now()
        key = self.standing(self.cutoff())
        candidates = sorted(
            (
                e
                for e in self._tiers[Source.CONNECTED].values()
                if e.proven
                and e.addr not in self._own_addrs
                and e.addr not in self._connected
                and ((retry_at(e) or 0) <= now or e.addr not in self._failed_here)
            ),
            key=key,
        )
        chosen: list[PeerEntry] = []
        groups: set[str] = set()
        for entry in candidates:
            if len(chosen) >= self.reconnect_limit:
                break
            group = network_group(entry.addr)
            if group not in groups:
                groups.add(group)
                chosen.append(entry)
        if len(chosen) < self.reconnect_limit:
            picked = set(map(id, chosen))
            rest = [e for e in candidates if id(e) not in picked]
            chosen += rest[: self.reconnect_limit - len(chosen)]
        return [e.addr for e in sorted(chosen, key=key)]

    def plan_head(self) -> PlanHead:
        """What a save writes first, for the next start to plan from before the rest of the
        file is read: the proven peers of longest standing (:meth:`standing`), at least
        :data:`HEAD_ENTRIES` and four plans' worth, and a bound on the others
        (:class:`~thenodes_peerstore.model.PlanHead`; :func:`plan_from_head` reads it)."""
        connected = self._tiers[Source.CONNECTED]
        proven = [e for e in connected.values() if e.proven]
        size = max(HEAD_ENTRIES, 4 * self.reconnect_limit)
        first = heapq.nsmallest(size, proven, key=self.standing(self.cutoff()))
        chosen = set(map(id, first))
        others = [e for e in proven if id(e) not in chosen]
        return PlanHead.of(first, others, len(connected) - len(proven))

    # -- internals ---------------------------------------------------------------------------

    def _ingest(  # noqa: PLR0915 - one loop over a list's addresses, its steps inlined
        self, addrs: Iterable[object], source: Source, sender: str | None = None
    ) -> IngestReport:
        tally = _Tally()
        now = self.now()
        if source is Source.GOSSIP:
            addrs = self._taken_from_message(addrs, tally)
        sender_key, sender_scope = _sender(sender)
        # Once per list, not per address. An IPv4 address the pattern matches is canonical,
        # dialable and within the sender's scope as it is: it needs no parse. With the share
        # and the room counted once per list and the entry made without validators, a full
        # store at the default cap records a new gossip address in 4.1 us, 7.0 when it must be
        # parsed (``python -m benchmarks.bench_paths``, gossip).
        taken_as_is = (_DIALABLE_V4 if sender_scope is None else _GLOBAL_V4).fullmatch
        own = self._own_addrs
        gossip, claimed, bootstrap, connected = self._tiers
        tier = self._tiers[source]
        room = self.max_entries - len(self)
        # New entries, and those of them put in ``tier`` as _put puts a new entry without
        # extras; the sender group's share left, taken out of its bucket at the first of them.
        added = fresh = 0
        tokens: float | None = None
        try:
            for raw in addrs:
                if type(raw) is not str or taken_as_is(raw) is None:
                    key = self._parsed_key(raw, sender_scope, tally)
                    if key is None:
                        continue
                elif raw in own:
                    tally.reject(raw, "one of this node's own addresses", Reason.OWN)
                    continue
                else:
                    key = raw
                entry = (
                    gossip.get(key) or claimed.get(key) or bootstrap.get(key) or connected.get(key)
                )
                if entry is not None:
                    tally.refreshed += self._heard_again(entry, source, now)
                    continue
                if sender_key is not None:
                    if tokens is None:
                        tokens = self._sender_tokens(sender_key, now)
                    if tokens is None:
                        allowed = self._take_sender_token(sender_key, now)
                    elif allowed := tokens >= 1.0:
                        tokens -= 1.0
                    if not allowed:
                        tally.reject(
                            raw, f"sender {sender} added its share this hour", Reason.SENDER_CAP
                        )
                        continue
                if room > 0:
                    tier[key] = seen_first(key, source, now)
                    room -= 1
                    fresh += 1
                elif not self._evict_for(seen_first(key, source, now)):  # full: room <= 0
                    tally.reject(raw, "store is full of more trusted peers", Reason.FULL)
                    continue
                added += 1
        finally:
            if tokens is not None and sender_key is not None:
                self._senders[sender_key] = (tokens, now)
            if fresh:
                self._oldest_seen = min(self._oldest_seen, now)
                self.changes += fresh
        tally.added = added
        if tally.counts:
            self.rejections.update(tally.counts)
        return tally.report()

    def _taken_from_message(self, addrs: Iterable[object], tally: _Tally) -> Iterable[object]:
        """The first ``max_addrs_per_message`` addresses; the rest are counted, never parsed."""
        limit = self.max_addrs_per_message
        if type(addrs) is list or (
            isinstance(addrs, Sequence) and not isinstance(addrs, str | bytes)
        ):
            over = len(addrs) - limit
            taken: Iterable[object] = addrs[:limit] if over > 0 else addrs
        else:
            iterator = iter(addrs)
            taken = list(itertools.islice(iterator, limit))
            over = sum(1 for _ in iterator)
        if over > 0:
            tally.counts[Reason.MESSAGE_CAP] += over
        return taken

    def _parsed_key(self, raw: object, sender_scope: Scope | None, tally: _Tally) -> str | None:
        """The key of an address of a list, parsed, or None when it is refused (counted)."""
        try:
            parsed = Address.parse(raw)
        except AddressError as exc:
            tally.reject(raw, exc.reason, exc.kind)
            return None
        if parsed.text in self._own_addrs:
            tally.reject(raw, "one of this node's own addresses", Reason.OWN)
            return None
        if sender_scope is not None and parsed.scope < sender_scope:
            tally.reject(
                raw,
                f"a {parsed.scope.name.lower()} address from a {sender_scope.name.lower()} sender",
                Reason.SCOPE,
            )
            return None
        return parsed.text

    def _heard_again(self, entry: PeerEntry, source: Source, now: int) -> bool:
        """A stored address heard of again from ``source``: it climbs to that tier, or is
        refreshed no more than once per ``refresh_secs``; return whether it was of that tier
        or below."""
        if entry.source < source:
            self._put(entry.replace(source=source, last_seen=max(entry.last_seen, now)))
        elif entry.source == source and now - entry.last_seen >= self.refresh_secs:
            self._put(entry.replace(last_seen=now))
        return entry.source <= source

    def _sender_tokens(self, group: str, now: int) -> float | None:
        """The share the sender group has left now, its bucket taken out of the table, for a
        list to spend and put back (:meth:`_ingest`); None while the table is full and the
        group has no bucket, when each new address takes its token by itself.

        Spending a list's tokens so is what :meth:`_take_sender_token` does address by
        address: at one ``now`` no bucket refills and no other group's moves.
        """
        senders = self._senders
        if group not in senders and len(senders) >= _MAX_SENDERS:
            return None
        cap = float(self.gossip_per_sender_per_hour)
        tokens, since = senders.pop(group, (cap, now))
        return min(cap, tokens + max(0, now - since) * cap / _HOUR)

    def _take_sender_token(self, group: str, now: int) -> bool:
        """Spend one of the sender group's new entries for this hour; False when none is left.

        A token bucket per network group of the sender (/16 IPv4, /32 IPv6): a group may add
        ``gossip_per_sender_per_hour`` at once, and earns them back evenly over an hour. A
        bucket is forgotten only once it has refilled, when forgetting it changes nothing; while
        the table of groups is full of buckets that have not, new groups share one bucket. So no
        sequence of senders, however many, gives a group its share back before its time.
        """
        cap = float(self.gossip_per_sender_per_hour)
        senders = self._senders
        if group not in senders and len(senders) >= _MAX_SENDERS:
            idlest = next(iter(senders))
            tokens, since = senders[idlest]
            if tokens + (now - since) * cap / _HOUR >= cap or now - since >= _HOUR:
                del senders[idlest]
            else:
                group = _OVERFLOW
        tokens, since = senders.pop(group, (cap, now))
        tokens = min(cap, tokens + max(0, now - since) * cap / _HOUR)
        allowed = tokens >= 1.0
        senders[group] = (tokens - 1.0 if allowed else tokens, now)
        return allowed

    def _insert(self, entry: PeerEntry) -> bool:
        """Add a new entry, evicting one of its own or a lower tier if the store is full."""
        if len(self) >= self.max_entries:
            return self._evict_for(entry)
        self._put(entry, new=True)
        return True

    def _evict_for(self, entry: PeerEntry) -> bool:
        """Add a new entry to the full store in place of one of its own or a lower tier;
        False when there is none it may evict."""
        victim = self._victim(entry.source)
        if victim is None:
            return False
        self._remove(victim)
        self._put(entry, new=True)
        return True

    def _victim(self, newcomer: Source) -> str | None:
        """The entry to evict for a newcomer: the oldest of the lowest tier it may evict.

        Peers the node is connected to right now are passed over while there is another choice.
        A node has few of them, but a seed may be connected to nearly every peer it stores, and
        then each newcomer passes over them all: the search runs in C (``filterfalse``), and an
        inbound handshake at a seed connected to all of its 1,024 takes 41 us where a Python
        loop makes it 60 (``python -m benchmarks.bench_paths``, victim).
        """
        tiers = [tier for tier in self._tiers[: newcomer.rank + 1] if tier]  # indexed by rank
        passed_over = self._connected.__contains__
        for tier in tiers:
            for addr in itertools.filterfalse(passed_over, tier):
                return addr
        return next(iter(tiers[0])) if tiers else None

    def _put(self, entry: PeerEntry, *, refresh: bool = True, new: bool = False) -> None:
        """Store ``entry``; with ``refresh`` it moves to the newest end of its tier.

        ``new`` says that no tier holds the address yet (the caller has looked).
        """
        addr = entry.addr
        tier = self._tiers[entry.source]
        old = None
        if not new:
            old = tier.get(addr)
            if old is None:
                for other in self._tiers:
                    old = other.pop(addr, None) or old
        if old is not None:
            self._extras[old.proven] -= extras_size(old)
        proven = entry.proven
        size = extras_size(entry)
        cap = self._extras_cap
        if size and cap is not None and self._extras[proven] + size > cap:
            # Over its class's share: keep the peer, not what it said about itself.
            keep = old if old is not None and old.proven == proven else None
            kept = (keep.node_id, keep.capabilities) if keep is not None else (None, ())
            entry = entry.replace(node_id=kept[0], capabilities=kept[1])
            size = extras_size(entry)
            if self._extras[proven] + size > cap:
                entry = entry.replace(node_id=None, capabilities=())
                size = 0
        self._extras[proven] += size
        tier[addr] = entry
        if refresh and not new:
            tier.move_to_end(addr)
        self._oldest_seen = min(self._oldest_seen, entry.last_seen)
        self.changes += 1

    def _remove(self, addr: str) -> None:
        self._failed_here.discard(addr)
        self._unjudged.pop(addr, None)
        for tier in self._tiers:
            old = tier.pop(addr, None)
            if old is not None:
                self._extras[old.proven] -= extras_size(old)
                break
        self.changes += 1


class _Tally:
    """Counts what one batch did; keeps a few rejections with their addresses."""

    def __init__(self) -> None:
        self.added = 0
        self.refreshed = 0
        self.samples: list[Rejection] = []
        self.counts: collections.Counter[Reason] = collections.Counter()

    def reject(self, addr: object, reason: str, kind: Reason) -> None:
        self.counts[kind] += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(Rejection(addr, reason, kind))

    def report(self) -> IngestReport:
        return IngestReport(
            added=self.added,
            refreshed=self.refreshed,
            rejected=tuple(self.samples),
            counts=dict(self.counts),
        )


def extras_size(entry: PeerEntry) -> int:
    """What an entry holds besides its address and times, in characters as a file spells them
    (a little over: each field's name, quotes and separators)."""
    size = 0 if entry.node_id is None else len(entry.node_id) + 16
    if entry.capabilities:
        size += 20 + sum(len(c) + 4 for c in entry.capabilities)
    return size


def _sender(sender: str | None) -> tuple[str | None, Scope | None]:
    """The key a sender's hourly cap is kept under (its network group), and its scope.

    A sender whose address cannot be read is held to the strictest rules: global scope, and
    one cap shared by every such sender.
    """
    if sender is None:
        return None, None
    if type(sender) is str and _GLOBAL_V4.fullmatch(sender):
        # Canonical and global as written: its group is its first two numbers' /16, read off
        # the text: 0.66 us a peer list, where parsing it took 2.6.
        first, second, _ = sender.split(".", 2)
        return f"{first}.{second}.0.0/16", Scope.GLOBAL
    try:
        parsed = parse_address(sender)
    except AddressError:
        return "?", Scope.GLOBAL
    return parsed.group, parsed.scope


def _intervals(offline: Iterable[tuple[int, int]], now: int) -> tuple[tuple[int, int], ...]:
    """Well-formed stopped intervals, oldest first, at most :data:`MAX_OFFLINE_INTERVALS`."""
    merged: list[tuple[int, int]] = []
    for stopped, started in sorted((a, b) for a, b in offline if 0 <= a < b <= now):
        if merged and stopped <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], started))
        else:
            merged.append((stopped, started))
    return tuple(merged[-MAX_OFFLINE_INTERVALS:])


def _canonical_or_none(addr: object) -> str | None:
    try:
        return canonical_addr(addr)
    except AddressError:
        return None


def plan_from_head(
    store: PeerStore, head: PlanHead, *, offline: Iterable[tuple[int, int]] = ()
) -> list[str] | None:
    """The plan ``store`` would make after loading a whole file, told from the file's head alone
    (:meth:`PeerStore.plan_head`, as the file says it); None when only the whole file can tell.

    ``store`` is empty, with the node's settings, and ``offline`` what its load would be given;
    it is left holding the head's entries. Every rule of the load holds for them (clamping,
    TTL, anchors, own addresses and id), and the file's other proven peers, of whom the head
    says only that none stands before :attr:`~thenodes_peerstore.model.PlanHead.rest`, are
    shown to change nothing: the cap cannot reach a proven peer, none of them is clamped, the
    anchors all stand before them, and either none of them outlives the TTL or the plan is
    full, one peer per network group, every one standing before them. The standing of an
    entry must not get better as one of its times gets worse than ``rest``'s
    (``tests/peerstore/test_plan_first.py`` holds the plan to a whole load's).
    """
    if head.proven + head.suspended > store.max_entries:
        return None  # the cap could drop proven peers: only the whole file tells which
    store.load(head.entries, offline=offline)
    plan = store.reconnect_plan()
    rest = head.rest
    if rest is None:
        return plan  # the head holds every proven peer of the file
    now, cutoff = store.now(), store.cutoff()
    if max(rest.last_seen, rest.last_connected or 0, rest.last_attempt or 0) > now:
        return None  # another proven peer would be clamped to now, which moves its standing
    key = store.standing(cutoff)
    floor = key(rest)
    fixed = {entry.addr: entry.clamped(now) for entry in head.entries}
    anchors = store.anchors(fixed.values(), cutoff=cutoff)
    if len(anchors) < store.reconnect_limit or any(key(fixed[a]) >= floor for a in anchors):
        return None  # another proven peer could be an anchor
    if rest.last_seen < cutoff:
        return plan  # no other proven peer outlives the TTL
    planned = [store.get(addr) for addr in plan]
    if (
        len(plan) == store.reconnect_limit
        and len({network_group(addr) for addr in plan}) == len(plan)
        and all(entry is not None and key(entry) < floor for entry in planned)
    ):
        return plan  # found before any other proven peer could be reached
    return None
