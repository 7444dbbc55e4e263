"""A model-based test: every operation on a persistent store, in any order, keeps the rules.

Hypothesis drives a :class:`PersistentPeerStore` through each hook's effect (seeds, peer
lists, outbound and inbound connects, disconnects, failed dials), the clock, saves, clean
reloads, crashes and long stops, and after every step checks the store against a simple model
of what it must hold: entries age only while the node runs, the proven peers of longest
standing are kept whatever their age, and only addresses the node dialled itself reach the plan.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tests.support.clocks import FakeClock
from thenodes_peerstore import PersistenceConfig, PersistentPeerStore
from thenodes_peerstore.codec import decode
from thenodes_peerstore.model import PeerEntry, Source, network_group
from thenodes_peerstore.persistent import MAX_TICK_GAP_SECS
from thenodes_peerstore.store import ONLINE_GROUPS, TERRIBLE_FAILURES

START = 1_763_700_000
REALM = "example"
CAP = 4
TTL = 7200
INTERVAL = 60
# Few addresses in few /16 groups, so entries collide, evict each other and share groups.
POOL = [f"{a}.{b}.0.{c}:7447" for a in (11, 12) for b in (1, 2) for c in (1, 2, 3)]
SENDERS = ["45.76.12.34:7447", "91.121.5.6:51000", "192.168.1.20:7447"]
OWN = "198.51.100.5:7447"
LIMIT = 3

addrs = st.sampled_from(POOL)
batches = st.lists(st.one_of(addrs, st.sampled_from([OWN, "10.0.0.1:7447", "junk"])), max_size=6)


class PeerStoreMachine(RuleBasedStateMachine):
    """The store under test, and the model it is checked against."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="peerstore-stateful-"))
        self.path = self.dir / "peers" / f"{REALM}.toml"
        self.clock = FakeClock()
        self.config = PersistenceConfig(
            enabled=True,
            max_entries=CAP,
            ttl_secs=TTL,
            save_interval_secs=INTERVAL,
            reconnect_limit=LIMIT,
            gossip_per_sender_per_hour=4,
        )
        self.book = self._open()
        self.live: list[str] = []
        """Open connections, as the host sees them."""
        self.saved: dict[str, PeerEntry] = {}
        """The model of the file: what the last successful save wrote."""
        self.ranks: dict[str, int] = {}
        """The model of trust: the rank each address in memory has reached."""
        self.dialled: set[str] = set()
        """Addresses the node completed an outbound handshake with, ever."""
        self.saved_at: int | None = None
        """When the file was last written: a restart counts the time since as stopped."""
        self.offline: list[tuple[int, int]] = []
        """The model of when the node was stopped."""
        self.last_tick: int | None = None
        """When this process last ticked: a longer gap than MAX_TICK_GAP_SECS is not running."""

    def _open(self) -> PersistentPeerStore:
        return PersistentPeerStore.open(
            path=self.path,
            realm=REALM,
            clock=self.clock,
            config=self.config,
            own_addrs=[OWN],
            own_node_id="node-a",
        )

    def teardown(self) -> None:
        self.book.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def now(self) -> int:
        return self.clock.t

    def entries(self) -> dict[str, PeerEntry]:
        return {e.addr: e for e in self.book.store}

    def running_age(self, entry: PeerEntry) -> int:
        """How long the node has run since it last saw ``entry``."""
        return self.age_at(entry.last_seen)

    def age_at(self, when: int) -> int:
        """How long the node has run since ``when``."""
        return self.now - when - self.stopped_since(when)

    def stopped_since(self, since: int) -> int:
        """Seconds the node was stopped between ``since`` and now. Stopped intervals overlap
        when a start follows a stop that saved nothing (each start counts from the file's
        ``saved_at``), so their union is counted, never their sum."""
        stopped = 0
        reached = since
        for a, b in sorted(self.offline):
            lo, hi = max(a, reached), min(b, self.now)
            if hi > lo:
                stopped += hi - lo
                reached = hi
        return stopped

    def kept(
        self, entries: dict[str, PeerEntry], among: dict[str, PeerEntry] | None = None
    ) -> dict[str, PeerEntry]:
        """What a load or a save keeps of ``entries``: unseen for at most TTL of running time,
        or among the LIMIT proven peers of longest standing that are not failing (of
        ``among``, all the entries held, when given): those that still answer (no failed
        last dial, a dial answered within the TTL) by their proof's age, oldest first, then
        the others most recently connected first."""

        def standing(e: PeerEntry) -> tuple[int, int, str]:
            answered = max(e.first_seen, e.last_connected or 0)
            failed = e.failures > 0 or (e.last_attempt or 0) > answered
            if not failed and self.age_at(answered) <= TTL:
                return (0, e.first_seen, e.addr)
            return (1, -(e.last_connected or 0), e.addr)

        proven = sorted(
            (
                e
                for e in (entries if among is None else among).values()
                if e.proven and e.failures < TERRIBLE_FAILURES
            ),
            key=standing,
        )
        anchors = {e.addr for e in proven[:LIMIT]}
        return {a: e for a, e in entries.items() if self.running_age(e) <= TTL or a in anchors}

    def _stopped_until_now(self) -> None:
        if self.saved_at is not None and self.saved_at < self.now:
            self.offline.append((self.saved_at, self.now))

    def file_entries(self) -> dict[str, PeerEntry]:
        decoded = decode(self.path.read_bytes(), realm=REALM)
        assert decoded.intact, decoded.problems
        return {e.addr: e for e in decoded.entries}

    # -- the hooks' effects ---------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        self.book.store.record_bootstrap(POOL[:2])

    @rule(batch=batches)
    def seeds(self, batch: list[str]) -> None:
        self.book.store.record_bootstrap(batch)

    @rule(batch=batches, sender=st.sampled_from([*SENDERS, None]))
    def peer_list(self, batch: list[str], sender: str | None) -> None:
        connected = {e.addr for e in self.book.store if e.source is Source.CONNECTED}
        known = set(self.entries())
        self.book.store.record_gossip(batch, sender=sender)
        if sender is not None and not sender.startswith("192.168."):
            assert "10.0.0.1:7447" in known or "10.0.0.1:7447" not in self.entries()
        kept = {e.addr for e in self.book.store if e.source is Source.CONNECTED}
        assert connected <= kept, "gossip evicted a Connected entry"

    @rule(addr=addrs, node=st.integers(min_value=0, max_value=3))
    def connect(self, addr: str, node: int) -> None:
        self.book.store.record_connected(addr, node_id=f"node-{node}")
        self.live.append(addr)
        self.dialled.add(addr)
        entry = self.book.store.get(addr)
        assert entry is not None, "a new connection was not recorded"
        assert entry.proven, "an outbound handshake did not prove the address"

    @rule(addr=addrs)
    def connect_inbound(self, addr: str) -> None:
        """A peer connects in from an ephemeral port, advertising ``addr`` on its own IP."""
        before = self.book.store.get(addr)
        observed = addr.replace(":7447", ":50123")
        self.book.store.record_connected(observed, listen_addr=addr, direction="inbound")
        self.book.store.record_disconnected(observed, listen_addr=addr, direction="inbound")
        after = self.book.store.get(addr)
        if after is not None:
            assert after.source >= Source.CLAIMED
            assert after.proven == (before is not None and before.proven)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        addr = data.draw(st.sampled_from(self.live))
        self.live.remove(addr)
        self.book.store.record_disconnected(addr)

    @rule(addr=addrs)
    def dial_failed(self, addr: str) -> None:
        before = self.book.store.get(addr)
        after = self.book.store.record_dial_failed(addr)
        if before is None:
            assert after is None
        else:
            assert after is not None
            online = len({network_group(a) for a in self.live}) >= ONLINE_GROUPS
            assert after.failures == before.failures + online

    @rule(secs=st.sampled_from([1, 30, INTERVAL, 600, 3600, TTL + 1]))
    def advance(self, secs: int) -> None:
        self.clock.t += secs
        if self.last_tick is not None and self.now - self.last_tick > MAX_TICK_GAP_SECS:
            self.offline.append((self.last_tick + MAX_TICK_GAP_SECS, self.now))
        self.last_tick = self.now
        if self.book.tick():
            self._saved_now()

    # -- saving, reloading, crashing ------------------------------------------------------------

    @rule()
    def save(self) -> None:
        held = self.entries()
        before = {a: e for a, e in held.items() if a not in self.live}
        assert self.book.save()
        self._saved_now()
        kept = set(self.kept(before, among=held))
        assert not (set(before) - kept) & set(self.saved), "saved a stale entry"
        assert kept <= set(self.saved), "a save dropped a peer it must keep"

    def _saved_now(self) -> None:
        self.saved = self.file_entries()
        self.saved_at = self.now
        assert self.saved == self.entries(), "the file differs from what was in memory"

    @rule()
    def reload(self) -> None:
        """A clean restart: the node closes (saving) and opens its file again."""
        self.reload_after(0)

    @rule(secs=st.sampled_from([3600, TTL + 1, 30 * TTL]))
    def stop_for(self, secs: int) -> None:
        """A clean stop, ``secs`` stopped, a start: time stopped ages nothing."""
        self.reload_after(secs)

    def reload_after(self, secs: int) -> None:
        dirty = self.book.dirty or bool(self.live)
        self.book.close()
        if self.path.exists():
            self.saved = self.file_entries()
            if dirty:
                self.saved_at = self.now
        assert self.saved == self.entries(), "closing did not save what was in memory"
        before = self.kept(self.saved)
        self.live.clear()
        self.clock.t += secs
        self.last_tick = None
        self.book = self._open()
        self._stopped_until_now()
        assert self.entries() == self.kept(self.saved), "a restart changed the peers"
        assert set(before) <= set(self.entries()), "time stopped aged a peer"

    @rule()
    def crash(self) -> None:
        """The process dies: nothing is saved, the kernel releases the lock."""
        self.book.file.close()
        self.live.clear()
        self.last_tick = None  # a new process has not ticked yet
        self.book = self._open()
        self._stopped_until_now()
        expected = self.kept(self.saved)
        assert self.entries() == expected, "a crash lost or invented a saved peer"
        self.ranks = {a: e.source.rank for a, e in expected.items()}

    # -- what must hold after every step --------------------------------------------------------

    @invariant()
    def never_over_the_cap(self) -> None:
        assert len(self.book.store) <= CAP

    @invariant()
    def trust_never_goes_down(self) -> None:
        current = self.entries()
        for addr, entry in current.items():
            assert entry.source.rank >= self.ranks.get(addr, 0), f"{addr} lost trust"
        self.ranks = {a: e.source.rank for a, e in current.items()}

    @invariant()
    def never_its_own_address(self) -> None:
        assert OWN not in self.entries()

    @invariant()
    def the_plan_is_proven_diverse_and_short(self) -> None:
        plan = self.book.store.reconnect_plan()
        assert len(plan) <= 3
        for addr in plan:
            entry = self.book.store.get(addr)
            assert entry is not None
            assert entry.source is Source.CONNECTED
            assert addr not in self.live
            assert addr in self.dialled, "a peer the node never dialled is in the plan"


PeerStoreMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None
)
TestPeerStoreMachine = pytest.mark.slow(PeerStoreMachine.TestCase)


def test_stops_that_saved_nothing_count_their_overlapping_stopped_time_once() -> None:
    """The shortest sequence that once made the model count a stopped interval twice: after a
    start that saved nothing, the next start counts again from the same ``saved_at``."""
    machine = PeerStoreMachine()
    try:
        machine.start()
        machine.stop_for(3600)
        machine.save()
        machine.stop_for(3600)
        machine.stop_for(3600)
        machine.advance(TTL + 1)
        machine.save()
        machine.trust_never_goes_down()
        machine.the_plan_is_proven_diverse_and_short()
    finally:
        machine.teardown()
