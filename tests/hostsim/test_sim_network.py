"""The simulated network: each event kind reaches the right hooks with the right arguments,
and the metrics of small networks whose timings can be worked out by hand."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hostsim.host import Peer
from hostsim.metrics import RunMetrics, StartRecord
from hostsim.sim import Churn, Distribution, SimEvent, SimNetwork, SimScenario
from hostsim.sim.network import fake_addr, node_addr
from hostsim.testing import HookCall, RecordingPlugin
from thenodes_peerstore.model import parse_address

SEED = node_addr(0)
NODE_0 = node_addr(1)
NODE_1 = node_addr(2)


def tiny(**changes: Any) -> SimScenario:
    """One seed and two nodes, all starting at t=0, every latency exactly 100 ms."""
    values: dict[str, Any] = {
        "nodes": 2,
        "seeds": 1,
        "target_outbound": 2,
        "latency_min_ms": 100.0,
        "latency_max_ms": 100.0,
        "start_spread_secs": 0.0,
        "duration_secs": 500.0,
    }
    values.update(changes)
    return SimScenario(**values)


class Journal:
    """A RecordingPlugin per node start, all writing to one journal."""

    def __init__(self) -> None:
        self.calls: list[HookCall] = []

    def __call__(self, name: str) -> Mapping[str, object]:
        return {"recorder": RecordingPlugin(name, journal=self.calls)}

    def of(self, node: str, hook: str) -> list[Mapping[str, Any]]:
        return [c.kwargs for c in self.calls if c.plugin == node and c.hook == hook]


def play(
    scenario: SimScenario, tmp_path: Path, *, until: float | None = None, seed: int = 3
) -> tuple[SimNetwork, Journal]:
    journal = Journal()
    network = SimNetwork(scenario, seed=seed, state_dir=tmp_path, extra_plugins_factory=journal)
    if until is None:
        network.run()
    else:
        network.run_until(until)
    return network, journal


def restarts_of(metrics: RunMetrics, node: str) -> list[StartRecord]:
    return [r for r in metrics.starts if r.node == node and r.cause != "initial"]


def test_node_addresses_are_public_distinct_and_four_to_a_network_group() -> None:
    addrs = [node_addr(i) for i in range(5000)]
    assert len(set(addrs)) == 5000
    groups = [parse_address(a).group for a in addrs]
    assert len(set(groups)) == 1250
    assert groups[0] == groups[3] != groups[4]
    fakes = {fake_addr(n) for n in range(100_000)}
    assert len(fakes) == 100_000
    assert not fakes & set(addrs)
    for addr in [*addrs[::97], *sorted(fakes)[::997]]:
        assert parse_address(addr).scope.name == "GLOBAL"


def test_a_handshake_calls_on_connect_on_both_sides_with_direction_and_listen_address(
    tmp_path: Path,
) -> None:
    network, journal = play(tiny(), tmp_path, until=1.0)
    outbound = journal.of("node-0000", "on_connect")[0]["peer"]
    assert outbound == Peer(node_id="seed-0", addr=SEED, direction="outbound", listen_addr=SEED)
    inbound = [c["peer"] for c in journal.of("seed-0", "on_connect")]
    mine = next(p for p in inbound if p.node_id == "node-0000")
    assert mine.direction == "inbound"
    assert mine.listen_addr == NODE_0
    ip, _, port = mine.addr.rpartition(":")
    assert ip == NODE_0.rpartition(":")[0]
    assert 49152 <= int(port) <= 65535
    assert network.clock.now() == network.engine.start + 1.0


def test_every_node_ticks_once_per_tick_interval_while_it_runs(tmp_path: Path) -> None:
    _, journal = play(tiny(tick_interval_secs=5.0), tmp_path, until=60.0)
    assert len(journal.of("node-0000", "on_tick")) == 12
    _, journal = play(tiny(), tmp_path / "1s", until=60.0)
    assert len(journal.of("node-0000", "on_tick")) == 60


def test_a_peer_list_request_is_answered_with_the_peers_connections_and_known_addresses(
    tmp_path: Path,
) -> None:
    """node-0000 connects to the seed at 0.1 s and asks it for peers at once; the answer
    (0.3 s) names node-0001, its connection, never node-0000 itself."""
    _, journal = play(tiny(), tmp_path, until=1.0)
    lists = journal.of("node-0000", "on_peer_list")
    (call,) = [c for c in lists if c["sender"].node_id == "seed-0"]
    assert call["peers"] == [NODE_1]
    assert journal.of("node-0000", "on_tick")[-1]["host"].now() == pytest.approx(1_763_700_001.0)


def test_a_graceful_restart_calls_on_shutdown_then_on_startup_and_peers_see_the_close(
    tmp_path: Path,
) -> None:
    event = SimEvent(at=300, do="restart", node="node-0000", downtime_secs=10)
    network, journal = play(tiny(events=(event,)), tmp_path, until=320.0)
    hooks = [c.hook for c in journal.calls if c.plugin == "node-0000"]
    assert hooks.count("on_shutdown") == 1
    assert hooks.count("on_startup") == 2
    assert hooks.index("on_shutdown") < len(hooks) - hooks[::-1].index("on_startup")
    (closed,) = journal.of("seed-0", "on_disconnect")
    assert closed["peer"].node_id == "node-0000"
    assert closed["reason"] == "closed by peer"
    assert network.by_name["node-0000"].host.running


def test_a_crash_calls_no_hook_and_a_dial_to_the_dead_node_fails(tmp_path: Path) -> None:
    events = (
        SimEvent(at=200, do="crash", node="node-0001", downtime_secs=1000),
        SimEvent(at=300, do="restart", node="node-0000", downtime_secs=10),
    )
    _, journal = play(tiny(events=events), tmp_path, until=320.0)
    assert journal.of("node-0001", "on_shutdown") == []
    reasons = {c["peer"].node_id: c["reason"] for c in journal.of("seed-0", "on_disconnect")}
    assert reasons["node-0001"] == "connection reset by peer"
    failed = journal.of("node-0000", "on_dial_failed")
    assert {"addr": NODE_1, "error": "connection refused"} in [
        {"addr": c["addr"], "error": c["error"]} for c in failed
    ]


def test_a_dial_to_an_address_nobody_listens_on_times_out(tmp_path: Path) -> None:
    network, journal = play(tiny(), tmp_path, until=1.0)
    node = network.by_name["node-0000"]
    network.dial(node, fake_addr(7), "book")
    network.run_until(5.9)
    assert journal.of("node-0000", "on_dial_failed") == []
    network.run_until(6.1)
    (failed,) = journal.of("node-0000", "on_dial_failed")
    assert failed["addr"] == fake_addr(7)
    assert failed["error"] == "timeout"


def test_a_node_without_a_free_inbound_slot_refuses_the_dial(tmp_path: Path) -> None:
    scenario = tiny(nodes=3, max_inbound=1, target_outbound=1)
    network, journal = play(scenario, tmp_path, until=1.0)
    third = network.by_name["node-0002"]
    network.dial(third, NODE_0, "book")
    network.dial(network.by_name["node-0001"], NODE_0, "book")
    network.run_until(2.0)
    errors = [c["error"] for c in journal.of("node-0001", "on_dial_failed") if c["addr"] == NODE_0]
    assert errors == ["connection refused: no free inbound slot"]


def test_a_full_seed_makes_room_by_dropping_an_inbound_connection_two_minutes_old(
    tmp_path: Path,
) -> None:
    scenario = tiny(nodes=3, seed_max_inbound=2, target_outbound=1)
    network, journal = play(scenario, tmp_path, until=1.0)
    refused = [c["addr"] for c in journal.of("node-0002", "on_dial_failed")]
    assert refused == [SEED]  # node-0000 and node-0001 took both slots a moment ago
    network.run_until(130.0)
    late = network.by_name["node-0002"]
    network.stop(late, graceful=True)
    network.start(late, "restart")
    network.run_until(131.0)
    assert "seed-0" in late.by_node
    (evicted,) = journal.of("seed-0", "on_disconnect")
    assert evicted["peer"].node_id == "node-0000"
    assert evicted["reason"] == "evicted: inbound slots full"
    (lost,) = journal.of("node-0000", "on_disconnect")
    assert lost["reason"] == "evicted by peer: inbound slots full"


def test_a_mass_restart_stops_every_ordinary_node_and_brings_each_back_in_its_downtime(
    tmp_path: Path,
) -> None:
    event = SimEvent(at=100, do="mass_restart", downtime_min_secs=5, downtime_max_secs=30)
    network, journal = play(tiny(nodes=6, events=(event,)), tmp_path, until=200.0)
    restarts = network.metrics.restarts("mass_restart")
    assert sorted(r.node for r in restarts) == [f"node-{i:04d}" for i in range(6)]
    assert all(105 <= r.at <= 130 for r in restarts)
    for i in range(6):
        assert len(journal.of(f"node-{i:04d}", "on_shutdown")) == 1
    assert journal.of("seed-0", "on_shutdown") == []


def test_a_seed_outage_takes_the_seeds_down_without_a_hook_until_its_end(
    tmp_path: Path,
) -> None:
    event = SimEvent(at=100, do="seed_outage", until=250)
    network, journal = play(tiny(events=(event,)), tmp_path, until=200.0)
    seed = network.by_name["seed-0"]
    assert not seed.host.running
    assert journal.of("seed-0", "on_shutdown") == []
    network.run_until(251.0)
    assert seed.host.running
    assert [r.cause for r in network.metrics.starts if r.node == "seed-0"] == [
        "initial",
        "seed_outage",
    ]


def test_a_flooding_attacker_sends_fake_addresses_to_its_connections_until_the_end(
    tmp_path: Path,
) -> None:
    event = SimEvent(at=10, do="flood", until=75, addrs_per_message=300, push_interval_secs=30)
    scenario = tiny(attackers=1, target_outbound=3, events=(event,))
    network, journal = play(scenario, tmp_path, until=10.0)
    before = len(journal.calls)  # answers to the first requests, before the flood: honest
    network.run_until(76.0)

    def from_attacker(calls: list[HookCall]) -> list[list[str]]:
        return [
            c.kwargs["peers"]
            for c in calls
            if c.hook == "on_peer_list" and c.kwargs["sender"].node_id == "attacker-0"
        ]

    flood = from_attacker(journal.calls[before:])
    assert len(flood) >= 3  # pushes at 10, 40 and 70 s to at least one connection
    # Of 300 addresses a push, each node hears what the attacker's budget on that connection
    # admits: a list's worth when it opened, what a request of the node's added, and a tenth
    # of an address a second since.
    assert all(0 < len(peers) < 300 for peers in flood)
    for name in ("seed-0", "node-0000", "node-0001"):
        heard = [
            c.kwargs["peers"]
            for c in journal.calls[before:]
            if c.plugin == name and c.hook == "on_peer_list"
            if c.kwargs["sender"].node_id == "attacker-0"
        ]
        assert 0 < sum(map(len, heard)) <= 16 + 16 + 0.1 * 76
    every = [addr for peers in flood for addr in peers]
    assert len(set(every)) == len(every)
    assert not set(every) & set(network.by_addr)
    seen = len(journal.calls)
    network.run_until(400.0)
    after = from_attacker(journal.calls[seen:])
    assert after  # the attacker still answers requests, honestly now
    assert all(len(peers) <= 16 for peers in after)


def test_churn_takes_nodes_down_and_brings_them_back(tmp_path: Path) -> None:
    churn = Churn(
        session=Distribution("exponential", mean_secs=60.0),
        downtime=Distribution("weibull", shape=0.5, scale_secs=20.0),
        crash_fraction=0.5,
    )
    network, journal = play(tiny(nodes=6, churn=churn, duration_secs=600.0), tmp_path)
    churned = network.metrics.restarts("churn")
    assert len(churned) > 10
    shutdowns = sum(len(journal.of(f"node-{i:04d}", "on_shutdown")) for i in range(6))
    assert 0 < shutdowns < len(churned)
    assert all(r.node.startswith("node-") for r in churned)


def test_by_hand_a_restart_with_the_store_reaches_its_target_with_its_first_dials(
    tmp_path: Path,
) -> None:
    """Both nodes connect to the seed at 0.1 s and ask it for peers at once; the answers
    (0.3 s) name the other node, which each dials: one connects at 0.4 s, and both now have
    their two connections. node-0000 restarts at 300 s and is back at 310 s, when its store
    plans the seed and node-0001: both dials connect 100 ms later."""
    event = SimEvent(at=300, do="restart", node="node-0000", downtime_secs=10)
    network, _ = play(tiny(events=(event,)), tmp_path)
    first = next(r for r in network.metrics.starts if r.node == "node-0000")
    assert first.first_connection == pytest.approx(0.1)
    assert first.target_reached == pytest.approx(0.4)
    (restart,) = restarts_of(network.metrics, "node-0000")
    assert restart.at == 310
    assert sorted(restart.plan) == sorted([SEED, NODE_1])
    assert restart.dials == {"peerstore": [2, 2]}
    assert restart.first_connection == pytest.approx(0.1)
    assert restart.target_reached == pytest.approx(0.1)
    assert restart.rejoined


def test_by_hand_a_restart_with_seeds_only_learns_the_other_node_from_the_seed_at_once(
    tmp_path: Path,
) -> None:
    """Without the store node-0000 only knows the seed (connected at 310.1 s). It asks the
    seed for peers at once; the answer (310.3 s) names node-0001, which it dials from its
    book: connected at 310.4 s."""
    event = SimEvent(at=300, do="restart", node="node-0000", downtime_secs=10)
    network, _ = play(tiny(events=(event,)).with_persistence(False), tmp_path)
    (restart,) = restarts_of(network.metrics, "node-0000")
    assert restart.plan == ()
    assert restart.dials == {"seed": [1, 1], "book": [1, 1]}
    assert restart.first_connection == pytest.approx(0.1)
    assert restart.target_reached == pytest.approx(0.4)


def test_by_hand_with_the_seed_down_only_the_store_gets_a_restarted_node_back(
    tmp_path: Path,
) -> None:
    events = (
        SimEvent(at=250, do="seed_outage", until=1000),
        SimEvent(at=300, do="restart", node="node-0000", downtime_secs=10),
    )
    for enabled, first_connection in ((True, 0.1), (False, 30.1)):
        scenario = tiny(events=events).with_persistence(enabled)
        network, _ = play(scenario, tmp_path / str(enabled))
        (restart,) = restarts_of(network.metrics, "node-0000")
        assert restart.first_connection == pytest.approx(first_connection)
        assert restart.target_reached is None  # the seed is down: one connection only
    events = (
        SimEvent(at=250, do="seed_outage", until=1000),
        SimEvent(at=300, do="mass_restart", downtime_min_secs=10, downtime_max_secs=10),
    )
    for enabled, rejoined in ((True, True), (False, False)):
        scenario = tiny(events=events).with_persistence(enabled)
        network, _ = play(scenario, tmp_path / f"mass-{enabled}")
        assert [r.rejoined for r in network.metrics.restarts()] == [rejoined, rejoined]


def test_the_connected_fraction_is_sampled_over_the_run(tmp_path: Path) -> None:
    event = SimEvent(at=100, do="crash", node="node-0001", downtime_secs=1000)
    network, _ = play(tiny(events=(event,), sample_interval_secs=50.0), tmp_path)
    metrics = network.metrics
    assert metrics.series_t == [
        0.0,
        50.0,
        100.0,
        150.0,
        200.0,
        250.0,
        300.0,
        350.0,
        400.0,
        450.0,
        500.0,
    ]
    assert metrics.series_connected[0] == 0.0
    assert metrics.series_connected[1] == 1.0
    assert metrics.series_connected[3:] == [0.5] * 8


def test_an_unknown_node_in_an_event_is_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    event = SimEvent(at=10, do="restart", node="node-9999")
    play(tiny(events=(event,)), tmp_path, until=20.0)
    assert "no node 'node-9999'" in caplog.text
