"""The peerstore plugin inside hostsim, loaded through its installed entry point.

Each hook of the contract has at least one test here whose name starts with the hook's name
(tests/test_contract.py checks that).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from hostsim.clock import VirtualClock
from hostsim.config import HostConfig
from hostsim.host import PluginHost
from hostsim.script import load_scenario, run_scenario
from tests.support.hosts import OWN, SEEDS, host_config, peer_file
from tests.support.paths import EXAMPLES
from thenodes_peerstore.model import Source
from thenodes_peerstore.plugin import PeerStorePlugin

START = 1_763_700_000
# Eight proven peers in eight network groups, connected one after the other.
PEERS = [
    "45.76.12.34:7447",
    "91.121.5.6:7447",
    "5.9.20.30:7447",
    "[2001:db8::10]:7447",
    "192.0.2.10:7447",
    "100.64.3.4:7447",
    "185.10.1.1:7447",
    "151.80.2.2:7447",
]

MakeHost = Callable[..., PluginHost]


@pytest.fixture
def make_host(tmp_path: Path, virtual_clock: VirtualClock) -> MakeHost:
    """A node whose config is written to a file, as a user would write it."""

    def make(config: dict[str, Any] | None = None, name: str = "host.toml") -> PluginHost:
        path = tmp_path / name
        path.write_text(tomli_w.dumps(config or host_config()))
        return PluginHost.from_file(path, clock=virtual_clock)

    return make


def stored(host: PluginHost) -> dict[str, dict[str, Any]]:
    """The peers in the node's file, by address."""
    document = tomllib.loads(peer_file(host).read_text())
    return {p["addr"]: p for p in document["peers"]}


def plugin_of(host: PluginHost) -> PeerStorePlugin:
    assert host.plugin_manager is not None
    plugin = host.plugin_manager.get_plugin("peerstore")
    assert isinstance(plugin, PeerStorePlugin)
    return plugin


def connect_all(host: PluginHost, addrs: list[str]) -> None:
    for n, addr in enumerate(addrs):
        host.connect(addr, node_id=f"node-{n}")
        host.advance(1)


# -- loading and startup ---------------------------------------------------------------------


def test_on_startup_plugin_is_loaded_from_its_installed_entry_point(make_host: MakeHost) -> None:
    host = make_host()
    host.start()
    assert isinstance(plugin_of(host), PeerStorePlugin)


def test_on_startup_disabled_by_default_leaves_no_file(make_host: MakeHost) -> None:
    config = host_config()
    del config["network"]
    host = make_host(config)
    assert [d.origin for d in host.start()] == ["seed", "seed"]
    connect_all(host, PEERS[:3])
    host.advance(120)
    host.shutdown()
    assert not host.config.state_dir.exists()


def test_on_startup_dials_stored_proven_peers_before_any_seed(make_host: MakeHost) -> None:
    host = make_host()
    first = host.start()
    assert [d.addr for d in first] == SEEDS  # a new node has only its seeds
    connect_all(host, PEERS)
    host.shutdown()
    host.advance(3600)

    dials = host.start()

    origins = [d.origin for d in dials]
    assert origins == ["peerstore"] * 5 + ["seed"] * 2
    assert [d.addr for d in dials[:5]] == PEERS[:5]  # longest standing first


def test_on_startup_skips_own_addresses_and_gives_backing_off_peers_a_dial(
    make_host: MakeHost,
) -> None:
    host = make_host()
    host.start()
    connect_all(host, PEERS[:3])
    host.disconnect(PEERS[0])
    host.dial_failed(PEERS[0])  # counted: the node has two outbound connections
    for addr in PEERS[1:3]:
        host.disconnect(addr)
    host.shutdown()
    assert stored(host)[PEERS[0]]["failures"] == 1

    plan = [d.addr for d in host.start() if d.origin == "peerstore"]

    # A new process dials each proven peer; the one whose last dial failed comes last.
    assert plan == [PEERS[1], PEERS[2], PEERS[0]]
    assert OWN not in plan


def test_on_startup_bad_config_stops_the_node_naming_key_and_value(make_host: MakeHost) -> None:
    from hostsim.host import HostStartupError

    host = make_host(host_config(max_entries=-3))
    with pytest.raises(HostStartupError, match=r"max_entries = -3"):
        host.start()
    assert not host.running


def test_on_startup_refuses_another_realms_file_and_leaves_it_unchanged(
    make_host: MakeHost,
) -> None:
    from hostsim.host import HostStartupError

    other = make_host(host_config("Other"), name="other.toml")
    other.start()
    connect_all(other, PEERS[:2])
    other.shutdown()
    host = make_host()
    # An operator copied the other realm's file over this realm's.
    theirs = peer_file(host)
    theirs.write_bytes(peer_file(other).read_bytes())
    before = theirs.read_bytes()

    with pytest.raises(HostStartupError, match=r"holds realm 'other', not 'example'"):
        host.start()

    assert theirs.read_bytes() == before


def test_on_startup_refuses_a_second_node_on_the_same_file(make_host: MakeHost) -> None:
    from hostsim.host import HostStartupError

    first = make_host()
    first.start()
    second = make_host(name="second.toml")

    with pytest.raises(HostStartupError, match=r"in use by another store"):
        second.start()

    first.shutdown()
    second.start()  # the lock is released at shutdown


# -- the runtime hooks -----------------------------------------------------------------------


def test_on_bootstrap_records_the_seeds_as_bootstrap(make_host: MakeHost) -> None:
    host = make_host()
    host.start()
    host.shutdown()
    assert {a: p["source"] for a, p in stored(host).items()} == dict.fromkeys(SEEDS, "Bootstrap")


def test_on_connect_records_the_dialled_address_as_connected(
    make_host: MakeHost, virtual_clock: VirtualClock
) -> None:
    host = make_host()
    host.start()
    host.advance(5)
    host.connect(SEEDS[0], node_id="seed-1", capabilities=("relay",))
    host.shutdown()
    entry = stored(host)[SEEDS[0]]
    assert entry["source"] == "Connected"
    assert entry["last_connected"] == START + 5
    assert entry["node_id"] == "seed-1"
    assert entry["capabilities"] == ["relay"]


def test_on_connect_inbound_stores_the_listen_address_never_the_ephemeral_port(
    make_host: MakeHost,
) -> None:
    host = make_host()
    host.start()
    host.connect("45.76.12.34:51234", node_id="in-1", direction="inbound", listen_addr=PEERS[0])
    host.connect("91.121.5.6:40000", node_id="in-2", direction="inbound")  # no listen address
    host.shutdown()
    addrs = set(stored(host))
    assert PEERS[0] in addrs
    assert "45.76.12.34:51234" not in addrs
    assert not any(a.startswith("91.121.5.6:") for a in addrs)


def test_on_connect_to_itself_is_never_stored(make_host: MakeHost) -> None:
    host = make_host()
    host.start()
    host.connect(OWN, node_id="node-a")
    host.connect(PEERS[0], node_id="node-a")  # our own id behind another address
    host.shutdown()
    assert set(stored(host)) == set(SEEDS)


def test_on_disconnect_refreshes_last_seen_and_forgets_nothing(make_host: MakeHost) -> None:
    host = make_host()
    host.start()
    host.connect(PEERS[0], node_id="node-b")
    host.advance(30)
    host.disconnect(PEERS[0], reason="timeout")
    host.shutdown()
    entry = stored(host)[PEERS[0]]
    assert entry["source"] == "Connected"
    assert entry["last_seen"] == START + 30
    assert entry["last_connected"] == START


def test_on_peer_list_records_valid_addresses_as_gossip_and_survives_garbage(
    make_host: MakeHost,
) -> None:
    host = make_host()
    host.start()
    host.connect(SEEDS[0], node_id="seed-1")
    garbage: list[Any] = [
        "seed.example.org:7447",
        "1.2.3.4:0",
        "[fe80::1%eth0]:7447",
        "not an address",
        OWN,
        7447,
        None,
        "x" * 10_000,
    ]
    host.peer_list(SEEDS[0], [PEERS[0], "[2001:DB8::10]:7447", *garbage])
    host.peer_list(SEEDS[0], "not a list")  # type: ignore[arg-type]
    assert host.running
    host.shutdown()
    peers = stored(host)
    assert {a: p["source"] for a, p in peers.items() if p["source"] == "Gossip"} == {
        PEERS[0]: "Gossip",
        PEERS[3]: "Gossip",
    }
    assert set(peers) == {*SEEDS, PEERS[0], PEERS[3]}


def test_on_peer_list_judges_addresses_by_the_scope_of_the_sender(make_host: MakeHost) -> None:
    host = make_host()
    host.start()
    host.connect(SEEDS[0], node_id="seed-1")  # a public peer
    host.connect("192.168.1.20:51234", node_id="lan-peer", direction="inbound")
    lan = ["192.168.1.30:7447", "127.0.0.1:7447"]
    host.peer_list(SEEDS[0], lan)
    host.peer_list("192.168.1.20:51234", [*lan, PEERS[0]])
    host.shutdown()
    gossip = {a for a, p in stored(host).items() if p["source"] == "Gossip"}
    assert gossip == {"192.168.1.30:7447", PEERS[0]}


def test_on_peer_list_lets_one_sender_add_only_its_hourly_share(make_host: MakeHost) -> None:
    host = make_host(host_config(gossip_per_sender_per_hour=50))
    host.start()
    host.connect(SEEDS[0], node_id="seed-1")
    for n in range(10):
        host.peer_list(SEEDS[0], [f"11.{n}.{m}.1:7447" for m in range(1000)])
    book = plugin_of(host).book
    assert book is not None
    assert book.store.count(Source.GOSSIP) == 50
    host.advance(3600)
    host.peer_list(SEEDS[0], [f"12.0.{m}.1:7447" for m in range(100)])
    assert book.store.count(Source.GOSSIP) == 100


def test_on_peer_list_never_downgrades_a_connected_peer(make_host: MakeHost) -> None:
    host = make_host()
    host.start()
    host.connect(SEEDS[0], node_id="seed-1")
    host.advance(10)
    host.peer_list(SEEDS[0], [SEEDS[0], SEEDS[1]])
    host.shutdown()
    peers = stored(host)
    assert peers[SEEDS[0]]["source"] == "Connected"
    assert peers[SEEDS[1]]["source"] == "Bootstrap"
    assert peers[SEEDS[1]]["last_seen"] == START  # gossip did not refresh it


def test_on_dial_failed_counts_the_failure_and_backs_the_peer_off(
    make_host: MakeHost,
) -> None:
    host = make_host()
    host.start()
    connect_all(host, PEERS[:3])
    host.disconnect(PEERS[0])
    host.dial_failed(PEERS[0], error="timeout")  # two outbound connections: it counts
    host.dial_failed("192.0.2.200:7447")  # never heard of: nothing is recorded
    host.disconnect(PEERS[1])
    host.dial_failed(PEERS[0], error="timeout")  # one connection left: maybe our own fault
    host.shutdown()
    peers = stored(host)
    assert peers[PEERS[0]]["failures"] == 1
    assert "192.0.2.200:7447" not in peers


def restarted_plan(host: PluginHost) -> list[str]:
    """Stop, stay stopped an hour, start: the stored peers the new process dials first."""
    host.shutdown()
    host.advance(3600)
    return [d.addr for d in host.start() if d.origin == "peerstore"]


@pytest.mark.parametrize("fails", ["refused before the others answer", "silent after one answers"])
def test_on_dial_failed_a_peer_that_refuses_the_restart_dial_but_connects_in_loses_first_place(
    make_host: MakeHost, fails: str
) -> None:
    """Standing is earned by answering the node's own dials. The first planned peer's dial
    fails while the node has no outbound connection yet (so the failure cannot count), the
    other planned peers answer, and the peer connects in, which ends the host's retries: the
    next start does not put it first."""
    host = make_host()
    host.start()
    connect_all(host, PEERS)
    assert restarted_plan(host)[0] == PEERS[0]  # the longest standing

    if fails == "refused before the others answer":
        host.dial_failed(PEERS[0], error="connection refused")
        host.advance(1)
        connect_all(host, PEERS[1:5])
    else:  # one peer, one network group, answers; the dial times out three seconds later
        connect_all(host, PEERS[1:2])
        host.advance(2)
        host.dial_failed(PEERS[0], error="timeout")
    host.connect("45.76.12.34:51234", node_id="node-0", direction="inbound", listen_addr=PEERS[0])
    host.advance(600)
    plan = restarted_plan(host)

    assert PEERS[0] not in plan
    assert plan[0] == PEERS[1]
    assert stored(host)[PEERS[0]]["source"] == "Connected"  # demoted, not forgotten


def test_on_dial_failed_during_an_outage_neither_reorders_nor_strips_the_plan(
    make_host: MakeHost,
) -> None:
    """Nothing the node dials answers for four hours, and its uplink comes back long after
    the plan's last retry: every planned peer keeps its place, and no peer is lost."""
    host = make_host()
    host.start()
    connect_all(host, PEERS)
    before = restarted_plan(host)
    assert before == PEERS[:5]
    kept = set(stored(host))

    for wait in (1, 2, 4, 8, 16, 32, 60, 60):  # the host's retries of the plan, then it stops
        for addr in before:
            host.dial_failed(addr, error="network unreachable")
        host.advance(wait)
    for _ in range(4 * 6):  # the seeds, every ten minutes, for four hours
        for seed in SEEDS:
            host.dial_failed(seed, error="network unreachable")
        host.advance(600)
    assert restarted_plan(host) == before
    assert set(stored(host)) == kept

    for addr in before:  # a restart during the outage: the plan fails again
        host.dial_failed(addr, error="network unreachable")
    host.advance(3600)
    host.connect(SEEDS[0], node_id="seed-1")  # the uplink is back, an hour later

    assert restarted_plan(host) == before
    assert set(stored(host)) == kept


def test_on_tick_saves_at_most_once_per_interval(make_host: MakeHost) -> None:
    host = make_host(
        host_config(save_interval_secs=60, max_entries=8000, gossip_per_sender_per_hour=1000)
    )
    host.start()
    host.connect(SEEDS[0], node_id="seed-1")
    book = plugin_of(host).book
    assert book is not None
    for n in range(1000):  # a thousand mutations within one interval
        host.peer_list(SEEDS[0], [f"11.{n // 250}.{n % 250}.1:7447"])
    host.advance(59)
    assert book.saves == 0
    assert not peer_file(host).exists()
    host.advance(1)
    assert book.saves == 1
    host.advance(600)  # nothing changed since: nothing more is written
    assert book.saves == 1
    assert len(stored(host)) == 1000 + len(SEEDS)


def test_on_shutdown_saves_and_releases_the_file(make_host: MakeHost) -> None:
    host = make_host(host_config(save_interval_secs=3600))
    host.start()
    connect_all(host, PEERS[:2])
    host.shutdown()
    assert set(PEERS[:2]) <= set(stored(host))
    lock = peer_file(host).with_name("example.toml.lock")
    assert lock.exists()  # the sidecar lock is never deleted...
    host.start()  # ...and no longer held


def test_crash_loses_at_most_the_last_interval(make_host: MakeHost) -> None:
    host = make_host(host_config(save_interval_secs=60))
    host.start()
    host.connect(PEERS[0], node_id="early")
    host.advance(60)  # saved here
    host.connect(PEERS[1], node_id="late")
    host.advance(30)
    host.crash()

    dials = host.start()

    assert PEERS[0] in stored(host)
    assert PEERS[1] not in stored(host)
    assert dials[0].addr == PEERS[0]


# -- realms and files ------------------------------------------------------------------------


def test_two_realms_keep_two_files_and_no_entry_crosses(make_host: MakeHost) -> None:
    alpha = make_host(host_config("Alpha"), name="alpha.toml")
    beta = make_host(host_config("Beta"), name="beta.toml")
    alpha.start()
    beta.start()
    alpha.connect(PEERS[0], node_id="a-peer")
    beta.connect(PEERS[1], node_id="b-peer")
    alpha.shutdown()
    beta.shutdown()

    assert peer_file(alpha) != peer_file(beta)
    assert peer_file(alpha).parent == peer_file(beta).parent
    assert tomllib.loads(peer_file(alpha).read_text())["realm"] == "alpha"
    assert tomllib.loads(peer_file(beta).read_text())["realm"] == "beta"
    assert PEERS[0] in stored(alpha)
    assert PEERS[0] not in stored(beta)
    assert PEERS[1] in stored(beta)
    assert PEERS[1] not in stored(alpha)


def test_the_file_is_readable_toml_in_the_documented_format(make_host: MakeHost) -> None:
    host = make_host()
    host.start()
    host.connect(PEERS[3], node_id="node-v6", capabilities=("relay",))
    host.shutdown()
    text = peer_file(host).read_text()
    document = tomllib.loads(text)
    assert document["schema"] == 2
    assert document["realm"] == "example"
    assert document["integrity"]["entries"] == len(document["peers"]) == 3
    assert len(document["integrity"]["sha256"]) == 64
    assert text.index("[integrity]") > text.rindex("[[peers]]")
    assert "null" not in text
    assert oct(peer_file(host).stat().st_mode & 0o777) == oct(0o600)
    assert oct(peer_file(host).parent.stat().st_mode & 0o777) == oct(0o700)


def test_the_restart_example_dials_stored_peers_before_its_seeds(tmp_path: Path) -> None:
    examples = EXAMPLES
    scenario = load_scenario(examples / "restart.toml")
    seeds = set(HostConfig.from_file(examples / "node.toml").bootstrap_nodes)

    result = run_scenario(scenario, state_dir=tmp_path)

    starts = [r for r in result.records if r.kind in {"start", "restart"}]
    first, last = starts[0], starts[-1]
    assert {d.addr for d in first.dials} == seeds
    origins = [d.origin for d in last.dials]
    assert origins[:5] == ["peerstore"] * 5
    assert set(origins[5:]) == {"seed"}
    assert sum(d.connected for d in last.dials[:5]) >= 3
