"""The host core retries the plugin's startup plan as ``[network.connection_policy]`` says.

A node connects to a peer and stops; the peer is down when the node starts again: the core
dials the planned peer at once, then retries it after the configured base delay, multiplied
after each failure, capped, spread by the jitter, until ``reconnect_max_attempts`` dials failed.
The seeds are not the plan: a seed that fails is not retried this way.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hostsim.backoff import MAX_RETRY_ATTEMPTS, MIN_REDIAL_SECS, RetryPolicy
from hostsim.clock import VirtualClock
from hostsim.config import ConnectionPolicy, HostConfig
from hostsim.core import CorePolicy, NodeCore
from hostsim.errors import ScenarioError
from hostsim.host import PluginHost
from hostsim.sim.network import SimNetwork
from hostsim.sim.scenario import parse_sim_scenario

START = 1_763_700_000
PEER = "45.76.12.34:7447"
SEED = "203.0.113.1:7447"


class DownWorld:
    """Every dial fails at once; timers run on a virtual clock."""

    def __init__(self) -> None:
        self.t = 0.0
        self.dials: list[tuple[float, str, str]] = []
        self.core: NodeCore | None = None
        self._queue: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._order = itertools.count()

    def dial(self, addr: str, origin: str) -> None:
        self.dials.append((self.t, addr, origin))
        self.call_later(0.0, self._refuse, addr, origin)

    def _refuse(self, addr: str, origin: str) -> None:
        assert self.core is not None
        self.core.dial_failed(addr, origin, "connection refused")

    def request_peers(self, key: str, want: int) -> None:
        raise AssertionError("no connection to ask")

    def call_later(self, delay: float, action: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._queue, (self.t + delay, next(self._order), action, args))

    def run_until(self, t: float) -> None:
        while self._queue and self._queue[0][0] <= t:
            self.t, _, action, args = heapq.heappop(self._queue)
            action(*args)
        self.t = t


def write_config(tmp_path: Path, policy: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(
        f'bootstrap_nodes = ["{SEED}"]\n'
        '[realm]\nname = "Example"\n'
        '[node]\nid = "node-a"\nstate_dir = "state"\nlisten_addrs = ["198.51.100.5:7447"]\n'
        "[network.persistence]\nenabled = true\n"
        f"[network.connection_policy]\n{policy}"
        '[plugins]\nenabled = ["peerstore"]\n'
    )
    return path


def planned_retries(
    tmp_path: Path,
    policy: str,
    *,
    seed: int = 1,
    until: float = 9.0,
    claimed_from: str | None = None,
) -> tuple[list[float], int]:
    """Start a node whose one stored peer is down; the times it dialled that peer, and how
    many times it dialled the seed, within the first ``until`` seconds (by default 9 s, before
    the core looks for more).

    With ``claimed_from``, an inbound peer connected from that address claims the stored
    peer's address just after the first dial failed."""
    path = write_config(tmp_path, policy)
    clock = VirtualClock(START)
    first = PluginHost.from_file(path, clock=clock)
    first.start()
    first.connect(PEER, node_id="node-p")
    clock.advance(60)
    first.shutdown()

    host = PluginHost.from_file(path, clock=clock)
    world = DownWorld()
    core = NodeCore(
        host,
        policy=CorePolicy.of(HostConfig.from_file(path)),
        world=world,
        rng=random.Random(seed),
        now=lambda: world.t,
    )
    world.core = core
    dials = core.start()
    assert [d.addr for d in dials] == [PEER, SEED]  # the plan first, then the seeds
    if claimed_from is not None:
        world.run_until(0.1)
        core.connected(claimed_from, node_id="impostor", direction="inbound", listen_addr=PEER)
    world.run_until(until)
    host.shutdown()
    peer = [t for t, addr, _ in world.dials if addr == PEER]
    return peer, sum(addr == SEED for _, addr, _ in world.dials)


def test_the_plan_is_retried_at_the_configured_times_and_stops_after_max_attempts(
    tmp_path: Path,
) -> None:
    times, seed_dials = planned_retries(
        tmp_path,
        "reconnect_base_delay_ms = 250\nreconnect_multiplier = 3.0\n"
        "reconnect_max_delay_ms = 2000\nreconnect_max_attempts = 5\n"
        "reconnect_jitter_ratio = 0.0\n",
    )
    # Waits 0.25, 0.75, then 2.25 capped at 2.0, and 2.0; five dials failed: no more.
    assert times == pytest.approx([0.0, 0.25, 1.0, 3.0, 5.0])
    assert seed_dials == 1


def test_the_jitter_spreads_each_wait_within_the_configured_ratio(tmp_path: Path) -> None:
    times, _ = planned_retries(
        tmp_path,
        "reconnect_base_delay_ms = 500\nreconnect_multiplier = 2.0\n"
        "reconnect_max_delay_ms = 60000\nreconnect_max_attempts = 4\n"
        "reconnect_jitter_ratio = 0.5\n",
    )
    waits = [b - a for a, b in itertools.pairwise(times)]
    assert len(waits) == 3
    for n, wait in enumerate(waits):
        exact = 0.5 * 2.0**n
        assert 0.5 * exact <= wait <= 1.5 * exact
    assert waits != pytest.approx([0.5, 1.0, 2.0])


def test_thenodes_defaults_apply_without_the_table(tmp_path: Path) -> None:
    times, _ = planned_retries(tmp_path, "reconnect_jitter_ratio = 0.0\n")
    # 1 s, doubling: dials at 0, 1, 3, 7 s; the next wait (8 s) ends past the window.
    assert times == pytest.approx([0.0, 1.0, 3.0, 7.0])
    assert RetryPolicy.of(ConnectionPolicy()) == RetryPolicy()


@pytest.mark.parametrize("claimed_from", ["45.76.12.34:50123", "192.0.2.9:50123"])
def test_an_inbound_claim_of_the_planned_address_does_not_stop_its_retries(
    tmp_path: Path, claimed_from: str
) -> None:
    """Before: an inbound peer claiming the planned address (from its IP or another) stopped
    every retry: only a dial proves who is at an address."""
    times, _ = planned_retries(
        tmp_path, "reconnect_jitter_ratio = 0.0\n", claimed_from=claimed_from
    )
    assert times == pytest.approx([0.0, 1.0, 3.0, 7.0])


def test_a_zero_max_attempts_never_retries(tmp_path: Path) -> None:
    times, _ = planned_retries(tmp_path, "reconnect_max_attempts = 0\n")
    assert times == [0.0]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        # TheNodes' floors: a base of at least 1 ms, a multiplier of at least 1, a cap of at
        # least the base; and hostsim's: no wait under MIN_REDIAL_SECS whatever the jitter.
        ({"reconnect_base_delay_ms": 0, "reconnect_jitter_ratio": 1.0}, [0.25, 0.25]),
        ({"reconnect_multiplier": 0.5, "reconnect_jitter_ratio": 0.0}, [1.0, 1.0]),
        (
            {"reconnect_base_delay_ms": 5000, "reconnect_max_delay_ms": 10},
            [5.0 * 0.8, 5.0 * 0.8],
        ),
    ],
)
def test_the_policy_keeps_thenodes_floors(keys: dict[str, Any], expected: list[float]) -> None:
    retry = RetryPolicy.of(ConnectionPolicy(**keys))
    assert [retry.delay(n, 0.0) for n in (1, 2)] == pytest.approx(expected)


def test_no_config_makes_a_node_dial_a_dead_planned_peer_more_than_241_times_a_minute(
    tmp_path: Path,
) -> None:
    """Before: these keys (TheNodes takes them, its floor is a millisecond) made a live node
    dial a dead planned peer 659 times a second, each a status line, a hook call and a store
    record."""
    times, _ = planned_retries(
        tmp_path,
        "reconnect_base_delay_ms = 0\nreconnect_multiplier = 1\nreconnect_max_attempts = 1000000\n",
        until=300.0,
    )
    waits = [b - a for a, b in itertools.pairwise(times)]
    assert min(waits) >= MIN_REDIAL_SECS
    for start in times:  # any minute: at most one dial a quarter second, both ends included
        assert len([t for t in times if start <= t <= start + 60]) <= 60 / MIN_REDIAL_SECS + 1
    # Then the plan gives the address up: the book retries it later, as any other address.
    assert len(times) == MAX_RETRY_ATTEMPTS
    assert times[-1] < 260.0


def test_a_huge_multiplier_is_capped_not_an_overflow() -> None:
    retry = RetryPolicy.of(
        ConnectionPolicy(
            reconnect_multiplier=1e300, reconnect_max_attempts=10_000, reconnect_jitter_ratio=0.0
        )
    )
    assert retry.delay(999, 0.5) == 60.0  # 1e300 ** 998 overflows


def test_a_simulated_network_gives_every_node_the_scenarios_connection_policy(
    tmp_path: Path,
) -> None:
    scenario = parse_sim_scenario(
        {
            "nodes": 3,
            "seeds": 1,
            "network": {
                "connection_policy": {
                    "reconnect_base_delay_ms": 250,
                    "reconnect_multiplier": 3.0,
                    "reconnect_max_delay_ms": 2000,
                    "reconnect_max_attempts": 5,
                    "reconnect_jitter_ratio": 0.1,
                }
            },
        }
    )
    network = SimNetwork(scenario, seed=1, state_dir=tmp_path)
    try:
        expected = RetryPolicy(
            base_secs=0.25, multiplier=3.0, max_secs=2.0, max_attempts=5, jitter=0.1
        )
        assert {node.core.policy.retry for node in network.nodes} == {expected}
    finally:
        network.close()
    assert parse_sim_scenario({}).connection_policy == ConnectionPolicy()
    with pytest.raises(ScenarioError, match="reconnect_max_attempt"):
        parse_sim_scenario({"network": {"connection_policy": {"reconnect_max_attempt": 3}}})
