"""What the host core does with the addresses peers hand it, in either world.

A peer's budget bounds what it can hand the node (generous for the answer to our own request);
an answer to our request on a connection we dialled goes to the book's upper tier (a few new
addresses an answer), anything else a peer says to the lower one, which is dialled only when
the upper tier has nothing left and never handed on; the plan's peers are anchors, dialled
again once a minute after their retries run out.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hostsim.clock import VirtualClock
from hostsim.config import HostConfig
from hostsim.core import BOOK_ORIGIN, PUSHED, TOLD, CorePolicy, NodeCore
from hostsim.host import PluginHost
from hostsim.testing import RecordingPlugin

START = 1_763_700_000.0
SEEDS = ("203.0.113.1:7447", "203.0.113.2:7447")
OWN = "198.51.100.5:7447"


class World:
    """Dials stay in flight until the test settles them; requests are recorded; timers run
    on a virtual clock the test moves."""

    def __init__(self) -> None:
        self.t = 0.0
        self.dials: list[tuple[float, str, str]] = []
        self.requests: list[str] = []
        self._queue: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._order = itertools.count()

    def dial(self, addr: str, origin: str) -> None:
        self.dials.append((self.t, addr, origin))

    def request_peers(self, key: str, want: int) -> None:
        self.requests.append(key)

    def call_later(self, delay: float, action: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._queue, (self.t + delay, next(self._order), action, args))

    def run_until(self, t: float) -> None:
        while self._queue and self._queue[0][0] <= t:
            self.t, _, action, args = heapq.heappop(self._queue)
            action(*args)
        self.t = t

    def dialled(self, since: float = 0.0, origin: str | None = None) -> list[str]:
        return [a for t, a, o in self.dials if t >= since and (origin is None or o == origin)]


def node(
    tmp_path: Path, *, plan: tuple[str, ...] = (), **policy: Any
) -> tuple[NodeCore, World, RecordingPlugin]:
    """A started node with ``plan`` as its plugin's startup list, and the world it runs in."""
    config = HostConfig.from_mapping(
        {
            "bootstrap_nodes": list(SEEDS),
            "realm": {"name": "Example"},
            "node": {"id": "node-a", "listen_addrs": [OWN]},
        },
        base_dir=tmp_path,
    )
    recorder = RecordingPlugin(dial_first=plan)
    host = PluginHost(
        config,
        clock=VirtualClock(START),
        extra_plugins_factory=lambda: {"recorder": recorder},
        entry_points=[],
    )
    world = World()
    core = NodeCore(
        host,
        policy=CorePolicy.of(config, **policy),
        world=world,
        rng=random.Random(1),
        now=lambda: world.t,
    )
    core.start()
    return core, world, recorder


def dial_in(core: NodeCore, ip: str) -> str:
    """An inbound connection from ``ip`` (listening on 7447); its key."""
    key = f"{ip}:50000"
    core.connected(key, node_id=f"in-{ip}", direction="inbound", listen_addr=f"{ip}:7447")
    return key


def dial_out(core: NodeCore, addr: str) -> str:
    """The node's dial of ``addr`` succeeds; its key."""
    core.connected(addr, node_id=f"out-{addr}", direction="outbound")
    return addr


def addrs(first: int, count: int) -> list[str]:
    """``count`` public addresses, each in its own /16 (``first``.0/16 and up)."""
    return [f"{first + i}.0.0.1:7447" for i in range(count)]


def heard(recorder: RecordingPlugin) -> list[list[str]]:
    return [list(call.kwargs["peers"]) for call in recorder.hooks("on_peer_list")]


def test_a_peer_that_pushes_lists_unasked_is_heard_at_a_tenth_of_an_address_a_second(
    tmp_path: Path,
) -> None:
    core, world, recorder = node(tmp_path, peer_list_interval_secs=3600.0)  # we never ask
    key = dial_in(core, "45.1.0.1")
    flood = addrs(60, 100)
    core.peer_list(key, flood)  # one list's worth when the connection opens
    core.peer_list(key, flood)  # nothing earned in between
    world.run_until(100.0)
    core.peer_list(key, flood[20:])
    assert heard(recorder) == [flood[:16], [], flood[20:30]]
    assert core.book.keys() >= {*flood[:16], *flood[20:30]}
    assert core.book.keys().isdisjoint(flood[16:20] + flood[30:])
    assert all(core.book[a] == PUSHED for a in flood[:16] + flood[20:30])
    assert core.book["45.1.0.1:7447"] == PUSHED  # an inbound peer's own claim


def test_the_answer_to_our_request_is_taken_whole_and_told_at_most_four_new(
    tmp_path: Path,
) -> None:
    core, world, recorder = node(tmp_path, told_new_per_answer=4)
    key = dial_out(core, SEEDS[0])
    assert world.requests == [key]  # asked at once
    answer = addrs(60, 16)
    core.peer_list(key, answer)
    assert heard(recorder) == [answer]
    assert [a for a in answer if core.book[a] == TOLD] == answer[:4]
    assert all(core.book[a] == PUSHED for a in answer[4:])
    # A list nobody asked for, on the same connection: what is left of the budget, unasked.
    core.peer_list(key, addrs(90, 30))
    assert heard(recorder)[1] == addrs(90, 16)
    assert all(core.book[a] == PUSHED for a in addrs(90, 16))
    # The answer to the next request may name what the lower tier holds: it moves up.
    world.run_until(90.0)
    assert world.requests == [key, key]  # the periodic request, on its only connection
    core.peer_list(key, answer[4:8])
    assert all(core.book[a] == TOLD for a in answer[:8])


def test_what_peers_pushed_is_dialled_only_when_nothing_outbound_peers_told_is_left(
    tmp_path: Path,
) -> None:
    core, world, _ = node(tmp_path, target_outbound=3)
    out = [dial_out(core, SEEDS[0]), dial_out(core, SEEDS[1]), dial_out(core, "45.9.0.1:7447")]
    pushed = addrs(100, 16)
    core.peer_list(dial_in(core, "45.1.0.1"), pushed)
    told = addrs(60, 2)
    core.peer_list(out[0], told)
    assert world.dialled(origin=BOOK_ORIGIN) == []  # the target is met
    for key in out:
        core.disconnected(key, "closed by peer")
    world.run_until(10.0)  # the next look at the target: three slots free
    first = world.dialled(origin=BOOK_ORIGIN)
    assert sorted(first) == sorted([*told, out[2]])  # what outbound peers told, and the
    # one the node dialled itself; the seeds wait while it has a connection
    for addr in first:
        core.dial_failed(addr, BOOK_ORIGIN, "connection refused")
    world.run_until(20.0)
    second = world.dialled(since=10.5, origin=BOOK_ORIGIN)
    assert len(second) == 3
    assert set(second) <= set(pushed)  # nothing told is left to try: the pushed, at last


def test_an_answer_names_connections_and_what_outbound_peers_told_never_what_was_pushed(
    tmp_path: Path,
) -> None:
    core, _, _ = node(tmp_path)
    seed = dial_out(core, SEEDS[0])
    pushed = addrs(100, 16)
    core.peer_list(dial_in(core, "45.1.0.1"), pushed)
    core.peer_list(seed, addrs(60, 4))
    answer = core.answer(16, exclude=None)
    assert set(answer) == {SEEDS[0], "45.1.0.1:7447", SEEDS[1], *addrs(60, 4)}
    assert set(answer).isdisjoint(pushed)


@pytest.mark.parametrize("target_met", [False, True])
def test_the_plans_peers_are_anchors_dialled_again_once_a_minute_after_their_retries(
    tmp_path: Path, target_met: bool
) -> None:
    plan = ("45.76.12.34:7447",)
    core, world, _ = node(tmp_path, plan=plan)
    if target_met:
        for i in range(8):
            dial_out(core, f"{80 + i}.0.0.1:7447")
    retry = core.policy.retry
    failures = 0
    while world.t < 3600:
        world.run_until(world.t + 1.0)
        while plan[0] in core.dialing:
            failures += 1
            core.dial_failed(plan[0], "recorder", "connection refused")
    times = [t for t, a, _ in world.dials if a == plan[0]]
    assert len(times) > retry.max_attempts  # the retries, then once a minute
    late = [b - a for a, b in itertools.pairwise(times[retry.max_attempts :])]
    low, high = retry.max_secs * (1 - retry.jitter), retry.max_secs * (1 + retry.jitter)
    assert all(low <= wait <= high + core.policy.maintain_interval_secs for wait in late)
    assert 3000 / high <= len(late) <= 3600 / low
    # Connected at last: no more dials of it while the connection lasts.
    dial_out(core, plan[0])
    world.run_until(world.t + 600)
    assert plan[0] not in world.dialled(since=world.t - 600)
