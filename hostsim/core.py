"""The host core: one node's lifecycle, written once for every world it runs in.

A world (the simulated network, or the live node on TCP) moves bytes and time; the core
decides. It owns, for one node:

- **Startup order.** Every plugin's ``on_startup`` list, in registration order and without
  repeats, then the seeds (:meth:`NodeCore.start`); each is dialled at once, and together they
  become the node's in-memory address book. A restarted process remembers nothing else.
- **Retrying the plan.** A failed dial of a plugin's address is retried with TheNodes 0.4's
  ``[network.connection_policy]`` backoff (:class:`~hostsim.backoff.RetryPolicy`: 1 s,
  doubling, at most 60 s, at most 8 attempts, 20% jitter). Other addresses that failed are
  skipped for 30 s, doubling per failure up to 10 minutes. Both schedules live in
  :mod:`hostsim.backoff`.
- **Anchors.** The plugins' addresses are the run's anchors: once the retries of one have run
  out, or after a connection to it ended, it is dialled again at most once per the retry
  policy's longest wait (60 s, with its jitter) for as long as the process runs, whether or
  not the outbound target is met (none with ``reconnect_max_attempts = 0``). So a node whose
  slots an attacker took while its proven peers were unreachable reaches them again.
- **The outbound target.** Every ``maintain_interval_secs``, and when a peer list arrives, a
  node below ``target_outbound`` dials addresses from its book it is not connected to;
  seeds only while it has no connection at all (they are for bootstrapping). Dials of the
  plugins' addresses still in flight do not count towards the target, so a plan of dead
  peers costs no timeout. With :attr:`CorePolicy.book_dials_per_sec` set (the live node),
  dials from the book are bounded overall: a burst of ``target_outbound``, then that many a
  second, whatever peers list.
- **Claims.** An inbound peer's listen address is only a claim: anyone can advertise any
  address. A claim on the IP the connection came from is learned, handed out to peers that
  ask, and keeps the node from dialling that address from its book (as Bitcoin Core dials no
  address whose IP it is already connected to); it never holds back a dial of the plugins'
  addresses or their retries, since only a dial proves who is at an address. A claim of an
  address on another IP is none of these: not learned, not handed out, never dialled for.
- **The book's two tiers.** ``TOLD`` holds the plan, the seeds, the addresses the node dialled
  and what a peer it dialled answered to its request (at most ``told_new_per_answer``, 4,
  addresses new to ``TOLD`` from one answer); ``PUSHED`` holds every other address a peer
  named: lists pushed unasked, lists heard on inbound connections, the rest of an answer,
  inbound peers' listen addresses. ``PUSHED`` is dialled only when ``TOLD`` has no candidate
  left and is never handed on; each tier keeps at most ``book_limit`` (1,000), oldest out.
- **Peer lists.** A node asks every peer it dialled for peers as soon as the handshake
  completes, then asks one connection every ``peer_list_interval_secs`` (TheNodes'
  ``[discovery]``: 90 s, want 16; no request at all when ``[discovery] enabled`` is false;
  TheNodes sends its first request only after a full interval). Each connection has a
  budget of addresses it may hand the node (a token bucket, after Bitcoin Core's: one list's
  worth, 16, when it opens, then 0.1 a second, at most 1,000; each request the node sends on
  it adds the ``want`` it asked for); what a PEER_LIST holds beyond it is dropped unread.
  ``on_peer_list`` gets the rest, whichever side asked, and its first ``want`` addresses go
  into the book. A request is answered with up to ``want`` addresses, half from the
  connections, the rest from ``TOLD``, never the asker's own.
- **Stop.** A graceful stop calls ``on_shutdown``; a crash calls no hook, and the host releases
  what the process held (:meth:`~hostsim.host.PluginHost.crash`). Either way the world closes
  the node's connections, and each peer calls ``on_disconnect`` as its connection ends.
- **Ticks.** The world calls :meth:`NodeCore.tick`, ``on_tick``, about once a second of host
  time (the simulator's ``tick_interval_secs`` may space them out).
- **Hooks.** Every hook is called with keyword arguments, plugin by plugin, through
  :class:`~hostsim.host.PluginHost` (a plugin that raises in ``on_startup`` stops the start;
  in any other hook it is logged and the node carries on).

The core does no I/O and reads no clock of its own: the world hands it a
:class:`World` (dial, ask for peers, run later) and the random stream it draws from.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import attrs

from hostsim.backoff import BOOK_RETRY_BASE_SECS, BOOK_RETRY_MAX_SECS, RetryPolicy, backoff_secs
from hostsim.config import HostConfig
from hostsim.host import SEED_ORIGIN, Dial, Direction, Peer, PluginHost
from hostsim.limits import TokenBucket

__all__ = [
    "BOOK_ORIGIN",
    "Connection",
    "CorePolicy",
    "NodeCore",
    "World",
    "own_claim",
]

logger = logging.getLogger(__name__)

BOOK_ORIGIN = "book"
"""The origin of a dial a node makes from its address book, after its start."""
TOLD, PUSHED = 0, 1
"""The tiers of a node's address book, most trusted first (see :attr:`NodeCore.tiers`)."""


@attrs.frozen
class CorePolicy:
    """The numbers the core runs by; TheNodes' defaults."""

    target_outbound: int = 8
    peer_requests: bool = True
    """Whether the node sends peer requests at all (``[discovery] enabled``)."""
    peer_list_interval_secs: float = 90.0
    peer_list_want: int = 16
    maintain_interval_secs: float = 10.0
    book_limit: int = 1000
    """Addresses a node keeps in memory, oldest out (also the bound of what it remembers
    about addresses: their failures, and which ones it may not dial)."""
    book_dials_per_sec: float | None = None
    """Dials from the book a second, after a burst of ``target_outbound``; None: no bound."""
    addr_budget_start: float = 16.0
    """Addresses a connection may hand us unasked as soon as it opens: one list of
    ``peer_list_want``'s default (Bitcoin Core: 1, for a peer's own address)."""
    addr_budget_per_sec: float = 0.1
    """Addresses a connection earns a second towards what it may hand us (Bitcoin Core: 0.1)."""
    addr_budget_max: float = 1000.0
    """The most a connection can earn by waiting (Bitcoin Core: 1,000). Each request we send
    adds ``peer_list_want`` at once, so the answer fits."""
    told_new_per_answer: int = 4
    """Addresses new to the book's upper tier that one answer to our request may add to it;
    the rest of the answer goes to the lowest tier."""
    book_retry_base_secs: float = BOOK_RETRY_BASE_SECS
    book_retry_max_secs: float = BOOK_RETRY_MAX_SECS
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)

    @classmethod
    def of(cls, config: HostConfig, **overrides: Any) -> CorePolicy:
        """A node's policy from its host config's ``[discovery]`` and
        ``[network.connection_policy]``; ``overrides`` set the numbers no config table holds."""
        discovery = config.discovery
        values: dict[str, Any] = {
            "peer_requests": discovery.enabled,
            "peer_list_interval_secs": float(discovery.request_interval_secs),
            "peer_list_want": discovery.request_want,
            "retry": RetryPolicy.of(config.connection_policy),
        }
        values.update(overrides)
        return cls(**values)


class World(Protocol):
    """What a world does for a node's core: move bytes and time."""

    def dial(self, addr: str, origin: str) -> None:
        """Start a dial; report back with :meth:`NodeCore.connected` or
        :meth:`NodeCore.dial_failed` (or :meth:`NodeCore.dial_abandoned`)."""

    def request_peers(self, key: str, want: int) -> None:
        """Send a PEER_REQUEST on the connection ``key``."""

    def call_later(self, delay: float, action: Callable[..., None], *args: Any) -> None:
        """Run ``action(*args)`` ``delay`` seconds from now."""


@attrs.define(slots=True)
class Connection:
    """One established connection, as the core keeps it."""

    peer: Peer
    dialable: str | None
    """The address to dial this peer at: the dialled one, or the inbound peer's listen address."""
    since: float
    handle: object = None
    """Whatever the world keeps for this connection (a simulated node, a socket writer)."""
    asked: bool = False
    """Whether a peer request of ours on this connection still awaits its answer."""
    budget: TokenBucket | None = None
    """The addresses this peer may still hand us (made at its first peer list or request)."""

    @property
    def outbound(self) -> bool:
        """Whether this node dialled the peer."""
        return self.peer.direction == "outbound"


class NodeCore:
    """One node's lifecycle on top of its plugin host; see the module's description.

    :param host: The node's plugin host (it calls the hooks).
    :param policy: The numbers.
    :param world: Moves bytes and time for this node.
    :param rng: The node's random stream (sampling, jitter).
    :param now: Seconds on the world's clock (virtual or real).
    :param may_dial: Whether an address may be dialled at all; a refused address stays in
        the book and in what plugins hear, and is kept in :attr:`refused`.

    Everything the core keeps per address is bounded by ``book_limit``: the book, its failures
    and the refused addresses each drop their oldest beyond it.
    """

    def __init__(
        self,
        host: PluginHost,
        *,
        policy: CorePolicy,
        world: World,
        rng: random.Random,
        now: Callable[[], float],
        may_dial: Callable[[str], bool] | None = None,
    ) -> None:
        self.host = host
        self.policy = policy
        self.world = world
        self.rng = rng
        self.now = now
        self.may_dial = may_dial
        self.own = frozenset(host.config.listen_addrs)
        self.seeds: frozenset[str] = frozenset()
        """The seeds of this start, host names resolved."""
        self.up = False
        self.life = 0
        """Counts starts and stops, so timers of an earlier process do nothing."""
        self.conns: dict[str, Connection] = {}
        """Connection key (the remote socket address) -> connection."""
        self.by_node: dict[str, str] = {}
        """Remote node id -> connection key."""
        self.by_addr: dict[str, str] = {}
        """Dialled address of an outbound connection -> connection key."""
        self.claims: dict[str, str] = {}
        """Listen address an inbound peer claims on its own IP -> connection key."""
        self.outbound = 0
        self.dialing: set[str] = set()
        self.book: dict[str, int] = {}
        """Every address the node knows -> its tier in :attr:`tiers`."""
        self.tiers: tuple[dict[str, None], dict[str, None]] = ({}, {})
        """The book by tier, each oldest first. :data:`TOLD`: the plan, the seeds, the
        addresses the node dialled, and what outbound peers answered to its requests (at most
        ``told_new_per_answer`` new ones an answer). :data:`PUSHED`: every other address a
        peer named (lists pushed unasked, lists heard on inbound connections, the rest of an
        answer, inbound peers' listen addresses), dialled only when :data:`TOLD` has no
        candidate and never handed on in an answer."""
        self.anchors: dict[str, str] = {}
        """The plugins' addresses of this start -> the plugin that planned each (see
        :meth:`fill`)."""
        self.anchor_due: dict[str, float] = {}
        """Anchor -> when it may be dialled again, once its retries have run out."""
        self.failures: dict[str, tuple[int, float]] = {}
        """Address -> (failed dials in a row, not before this time)."""
        self.planned: set[str] = set()
        """The plugins' addresses of this start: retried with :attr:`CorePolicy.retry`."""
        self.refused: dict[str, None] = {}
        """Addresses ``may_dial`` refused (they stay in the book and are never dialled)."""
        self.book_dials: TokenBucket | None = None
        if policy.book_dials_per_sec is not None:
            self.book_dials = TokenBucket(policy.book_dials_per_sec, policy.target_outbound)

    def __repr__(self) -> str:
        state = "up" if self.up else "down"
        return f"<NodeCore {self.host.node_id} {state}, {len(self.conns)} connections>"

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, before_dials: Callable[[list[Dial]], None] | None = None) -> list[Dial]:
        """Start the node's process: the plugins' lists, then the seeds, each dialled at once.

        :param before_dials: Called with the dial order before the first dial.
        :raises HostsimError: the plugins could not be loaded or one refused to start.
        """
        dials = self.host.start()
        if before_dials is not None:
            before_dials(dials)
        self.up = True
        self.life += 1
        self.seeds = frozenset(self.host.seeds)
        self.book, self.tiers, self.anchor_due = {}, ({}, {}), {}
        self.failures = {}
        self.planned = {d.addr for d in dials if d.origin != SEED_ORIGIN}
        self.anchors = {d.addr: d.origin for d in dials if d.origin != SEED_ORIGIN}
        self.learn(d.addr for d in dials)
        for dial in dials:
            self.dial(dial.addr, dial.origin)
        life = self.life
        if self.policy.peer_requests:
            self.world.call_later(self.policy.peer_list_interval_secs, self._gossip, life)
        self.world.call_later(self.policy.maintain_interval_secs, self._maintain, life)
        return dials

    def stop(self, *, graceful: bool) -> list[Connection]:
        """Stop the process: ``on_shutdown`` when graceful, no hook for a crash.

        Return the connections it had, for the world to close; no ``on_disconnect`` is called
        for them on this node (its process is gone).
        """
        closed = list(self.conns.values())
        self.conns.clear()
        self.by_node.clear()
        self.by_addr.clear()
        self.claims.clear()
        self.outbound = 0
        self.dialing.clear()
        self.up = False
        self.life += 1
        if graceful:
            self.host.shutdown()
        else:
            self.host.crash()
        return closed

    def tick(self) -> None:
        """The host's timer: ``on_tick``."""
        self.host.tick()

    # -- dials -----------------------------------------------------------------------------------

    def dial(self, addr: str, origin: str) -> bool:
        """Dial ``addr`` unless it is in flight, our own, dialled and connected, or not
        allowed (an inbound claim of it does not hold a dial back: :meth:`fill` skips those)."""
        if addr in self.dialing or addr in self.own or addr in self.by_addr:
            return False
        if addr in self.refused:
            return False
        if self.may_dial is not None and not self.may_dial(addr):
            self.refused[addr] = None
            if len(self.refused) > self.policy.book_limit:
                del self.refused[next(iter(self.refused))]
            return False
        self.dialing.add(addr)
        self.world.dial(addr, origin)
        return True

    def dial_failed(self, addr: str, origin: str, error: str) -> None:
        """A dial failed: ``on_dial_failed``, then back the address off or retry it."""
        self.dialing.discard(addr)
        self.host.dial_failed(addr, error)
        count = self.failures.get(addr, (0, 0.0))[0] + 1
        policy = self.policy
        retry = None
        if addr in self.planned:
            retry = policy.retry.delay(count, self.rng.random())
        self.failures.pop(addr, None)  # re-inserted last: the oldest failure goes first
        if retry is not None:
            self.failures[addr] = (count, self.now() + retry)
            self.world.call_later(retry, self._retry, self.life, addr, origin)
            return
        wait = backoff_secs(
            count,
            base_secs=policy.book_retry_base_secs,
            multiplier=2.0,
            max_secs=policy.book_retry_max_secs,
        )
        self.failures[addr] = (count, self.now() + wait)
        if len(self.failures) > policy.book_limit:
            del self.failures[next(iter(self.failures))]

    def dial_abandoned(self, addr: str) -> None:
        """A dial ended without a connection or a failure (the peer dialled us meanwhile)."""
        self.dialing.discard(addr)

    def _retry(self, life: int, addr: str, origin: str) -> None:
        if life == self.life and self.up:
            self.dial(addr, origin)

    # -- connections ------------------------------------------------------------------------------

    def refusal(self, node_id: str) -> str | None:
        """Why a handshake with ``node_id`` must end, or None when it may complete."""
        if node_id == self.host.node_id:
            return "peer has our own node id"
        if node_id in self.by_node:
            return "already connected to that node"
        return None

    def connected(
        self,
        key: str,
        *,
        node_id: str,
        direction: Direction,
        listen_addr: str | None = None,
        capabilities: Iterable[str] = (),
        handle: object = None,
        cert_fingerprint: str | None = None,
    ) -> Connection:
        """A handshake completed: ``on_connect``; ask a peer we dialled for peers at once.

        For an outbound connection ``key`` is the dialled address; for an inbound one the
        remote socket address, whose IP tells whether ``listen_addr`` is a claim on the
        peer's own IP (:func:`own_claim`). The world checks :meth:`refusal` first.
        ``cert_fingerprint``: the peer's TLS certificate's, if any.
        """
        peer = self.host.connect(
            key,
            node_id=node_id,
            direction=direction,
            listen_addr=listen_addr,
            capabilities=capabilities,
            cert_fingerprint=cert_fingerprint,
        )
        if direction == "outbound":
            dialable: str | None = key
        else:
            dialable = own_claim(key, listen_addr)
        conn = Connection(peer, dialable, self.now(), handle)
        self.conns[key] = conn
        self.by_node[node_id] = key
        if direction == "outbound":
            self.by_addr[key] = key
        elif dialable is not None:
            self.claims.setdefault(dialable, key)
        if direction == "outbound":
            self.dialing.discard(key)
            self.outbound += 1
            self.failures.pop(key, None)
            self.learn((key,))
            if self.policy.peer_requests:
                self._ask(key, conn)
        elif dialable is not None:
            self.learn((dialable,), PUSHED)
        return conn

    def disconnected(self, key: str, reason: str) -> Connection | None:
        """A connection ended: ``on_disconnect``; return it (None when it is not known)."""
        conn = self.conns.get(key)
        if conn is None or not self.up:
            return None
        self.host.disconnect(key, reason)
        del self.conns[key]
        if self.by_node.get(conn.peer.node_id) == key:
            del self.by_node[conn.peer.node_id]
        if conn.dialable is not None:
            held = self.by_addr if conn.outbound else self.claims
            if held.get(conn.dialable) == key:
                del held[conn.dialable]
        if conn.outbound:
            self.outbound -= 1
        return conn

    # -- peer lists -------------------------------------------------------------------------------

    def peer_list(self, key: str, addrs: list[str]) -> None:
        """A PEER_LIST arrived on ``key``: ``on_peer_list`` with what the sender's budget admits
        (:meth:`admitted`); of that, the first ``want`` addresses go into the book (an answer
        to our request on a connection we dialled as :meth:`_learn_answer` says, any other
        list into :data:`PUSHED`); then dial towards the target."""
        conn = self.conns.get(key)
        if conn is None:
            self.host.peer_list(key, addrs)  # refused: not connected
            return
        solicited = conn.asked and conn.outbound
        conn.asked = False
        taken = self.admitted(conn, addrs)
        self.host.peer_list(key, taken)
        head = taken[: self.policy.peer_list_want]
        if solicited:
            self._learn_answer(head)
        else:
            self.learn(head, PUSHED)
        self.fill()

    def _learn_answer(self, addrs: list[str]) -> None:
        """An outbound peer's answer to our request: up to ``told_new_per_answer`` addresses
        :data:`TOLD` does not hold join it, the rest go to :data:`PUSHED`. Honest peers
        mostly name what others name too; a peer with thousands of fresh addresses of its own
        adds a few an answer, not a book."""
        told = self.tiers[TOLD]
        room = self.policy.told_new_per_answer
        up: list[str] = []
        down: list[str] = []
        for addr in addrs:
            if addr in told:
                continue
            if room > 0:
                room -= 1
                up.append(addr)
            else:
                down.append(addr)
        self.learn(up, TOLD)
        self.learn(down, PUSHED)

    def admitted(self, conn: Connection, addrs: list[str]) -> list[str]:
        """The head of ``addrs`` that ``conn``'s address budget admits, spent from it.

        A token bucket per connection, after Bitcoin Core's: it holds
        ``addr_budget_start`` when the connection opens and earns ``addr_budget_per_sec``, up
        to ``addr_budget_max``; each request we send on it adds ``peer_list_want``. What is
        beyond it is dropped unread (neither the plugins nor the book see it), so a peer that
        pushes lists unasked is heard at a tenth of an address a second however much it sends.
        """
        budget = self._budget(conn)
        room = budget.available(self.now())
        if room <= 0:
            return []
        taken = addrs[:room]
        budget.take(self.now(), len(taken))
        return taken

    def _budget(self, conn: Connection) -> TokenBucket:
        budget = conn.budget
        if budget is None:
            policy = self.policy
            budget = conn.budget = TokenBucket(policy.addr_budget_per_sec, policy.addr_budget_max)
            budget.tokens = policy.addr_budget_start
            budget.at = conn.since
        return budget

    def _ask(self, key: str, conn: Connection) -> None:
        """Send a peer request on ``conn`` (its key ``key``), with budget for its answer."""
        want = self.policy.peer_list_want
        budget = self._budget(conn)
        budget.available(self.now())  # earn what is due before the grant
        budget.tokens += want
        conn.asked = True
        self.world.request_peers(key, want)

    def answer(self, want: int, exclude: str | None) -> list[str]:
        """Up to ``want`` addresses for a peer that asked, never ``exclude`` (the asker's own):
        half from the connections (the addresses dialled, inbound peers' listen addresses),
        the rest from the book's :data:`TOLD` tier; never what only :data:`PUSHED` holds. Draws
        first, then filters, so a node with a thousand connections pays for the few it hands
        out."""
        half = want // 2
        conns = list(self.conns.values())
        if len(conns) > half + 1:
            conns = self.rng.sample(conns, half + 1)
        dialable = (c.dialable for c in conns if c.dialable is not None and c.dialable != exclude)
        chosen = list(dict.fromkeys(dialable))[:half]  # a claim and a dial of one address
        taken = {*chosen, exclude}
        room = want - len(chosen)
        pool = list(self.tiers[TOLD])
        if len(pool) > room + len(taken):
            pool = self.rng.sample(pool, room + len(taken))
        chosen += [addr for addr in pool if addr not in taken][:room]
        return chosen

    def learn(self, addrs: Iterable[str], tier: int = TOLD) -> None:
        """Add addresses to ``tier`` of the in-memory book (:attr:`tiers`); an address only
        ever moves up. Each tier holds at most ``book_limit``, oldest out, so nothing learnt
        into :data:`PUSHED` takes the place of what :data:`TOLD` holds."""
        book = self.book
        tiers = self.tiers
        into = tiers[tier]
        own = self.own
        limit = self.policy.book_limit
        for addr in addrs:
            known = book.get(addr)
            if addr in own or (known is not None and known <= tier):
                continue
            if known is not None:
                del tiers[known][addr]
            book[addr] = tier
            into[addr] = None
            if len(into) > limit:
                oldest = next(iter(into))
                del into[oldest], book[oldest]

    def _gossip(self, life: int) -> None:
        if life != self.life:
            return
        if self.conns:
            keys = list(self.conns)
            key = keys[self.rng.randrange(len(keys))]
            self._ask(key, self.conns[key])
        self.world.call_later(self.policy.peer_list_interval_secs, self._gossip, life)

    # -- the outbound target ----------------------------------------------------------------------

    def fill(self) -> None:
        """Dial known addresses until the dials in flight could reach the outbound target.

        Candidates come from the book's :data:`TOLD` tier, and only when it has too few from
        its :data:`PUSHED` tier. Anchors (the plan's addresses) that are neither connected nor
        being dialled are dialled whatever the target, once their retries have run out at
        most once per ``retry.max_secs``.
        """
        now = self.now()
        if self.anchors:
            self._dial_anchors(now)
        # A dial of a plugin's address may be to a peer long gone (a stale file): it does not
        # hold back dials of what the node hears now, or a stale plan would cost a timeout.
        in_flight = len(self.dialing) - len(self.dialing & self.planned)
        deficit = self.policy.target_outbound - self.outbound - in_flight
        if self.book_dials is not None:
            deficit = min(deficit, self.book_dials.available(now))
        if deficit <= 0:
            return
        chosen = self._candidates(self.tiers[TOLD], deficit, now)
        if len(chosen) < deficit:
            chosen += self._candidates(self.tiers[PUSHED], deficit - len(chosen), now)
        for addr in chosen:
            if self.dial(addr, BOOK_ORIGIN) and self.book_dials is not None:
                self.book_dials.take(self.now())

    def _candidates(self, tier: dict[str, None], count: int, now: float) -> list[str]:
        """Up to ``count`` addresses of ``tier`` to dial, drawn at random among those not in
        flight, not connected, not refused, not backing off (and not the seeds while the node
        has a connection: they are for bootstrapping)."""
        seeds = self.seeds if self.conns else frozenset()
        # One set to look each address up in, not five: 64 against 227 us for a tier of 1,000
        # (of a tenth of the host's own time at 10,000 nodes, benchmarks/bench_sim.py).
        held = self.dialing.union(seeds, self.by_addr, self.refused, self.claims)
        candidates = [addr for addr in tier if addr not in held]
        failures = self.failures
        if failures:
            candidates = [
                addr
                for addr in candidates
                if (failure := failures.get(addr)) is None or failure[1] <= now
            ]
        if len(candidates) > count:
            candidates = self.rng.sample(candidates, count)
        return candidates

    def _dial_anchors(self, now: float) -> None:
        """Dial each anchor that is neither connected nor being dialled and whose retries
        (:attr:`CorePolicy.retry`) have run out, at most once per ``retry.max_secs`` (with the
        policy's jitter); none with a policy that never retries (``max_attempts`` 0)."""
        retry = self.policy.retry
        if retry.max_attempts <= 0:
            return
        for addr, origin in self.anchors.items():
            if addr in self.dialing or addr in self.by_addr:
                continue
            failure = self.failures.get(addr)
            if failure is not None and failure[0] < retry.max_attempts:
                continue  # its retries still run
            if self.anchor_due.get(addr, now) > now:
                continue
            spread = 1.0 + retry.jitter * (2.0 * self.rng.random() - 1.0)
            self.anchor_due[addr] = now + retry.max_secs * spread
            self.dial(addr, origin)

    def _maintain(self, life: int) -> None:
        if life != self.life:
            return
        self.fill()
        self.world.call_later(self.policy.maintain_interval_secs, self._maintain, life)


def own_claim(key: str, listen_addr: str | None) -> str | None:
    """``listen_addr`` when it is on the IP of ``key`` (an inbound connection's remote
    address, ``"ip:port"``), else None: an address on another IP is not the peer's to claim."""
    if listen_addr is None or listen_addr.rpartition(":")[0] != key.rpartition(":")[0]:
        return None
    return listen_addr
