"""PeerStore: the rules for which peers are kept, trusted, expired and dialled first."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.books import make_store
from thenodes_peerstore.errors import AddressError
from thenodes_peerstore.model import PeerEntry, Source
from thenodes_peerstore.store import (
    BACKOFF_BASE_SECS,
    BACKOFF_MAX_SECS,
    TERRIBLE_FAILURES,
    UPLINK_PROOF_SECS,
    DropReason,
    PeerStore,
    last_dial_failed,
    last_proof,
)

START = 1_763_700_000


def stored(
    addr: str,
    source: Source = Source.CONNECTED,
    *,
    seen: int,
    connected: int | None = None,
    **fields,
) -> PeerEntry:
    """An entry as it could come from a file."""
    if source is Source.CONNECTED and connected is None:
        connected = seen
    return PeerEntry(
        addr=addr,
        source=source,
        first_seen=min(seen, connected or seen),
        last_seen=seen,
        last_connected=connected,
        **fields,
    )


UPLINK = ("192.0.2.1:7447", "198.51.100.1:7447")
"""Two live outbound connections in distinct groups: the node's own connectivity is proven."""


def online(store: PeerStore) -> None:
    """Connect out to :data:`UPLINK`, so failed dials count against the peers dialled."""
    for addr in UPLINK:
        store.record_connected(addr)


def addrs_of(store: PeerStore) -> set[str]:
    return {e.addr for e in store}


def many_addrs(n: int, base: str = "10.0.0.0") -> list[str]:
    first = int(ipaddress.IPv4Address(base))
    return [f"{ipaddress.IPv4Address(first + i + 1)}:7447" for i in range(n)]


# -- trust only goes up ---------------------------------------------------------------------


@pytest.mark.parametrize("trusted", [Source.BOOTSTRAP, Source.CONNECTED])
def test_gossip_never_downgrades_nor_refreshes_a_trusted_entry(clock, trusted: Source) -> None:
    store = make_store(clock)
    addr = "203.0.113.10:7447"
    if trusted is Source.BOOTSTRAP:
        store.record_bootstrap([addr])
    else:
        store.record_connected(addr)
        store.record_disconnected(addr)
    before = store.get(addr)
    clock.advance(500)

    report = store.record_gossip([addr, "[2001:DB8::1]:7447"])

    assert store.get(addr) == before
    assert report.refreshed == 0
    assert report.added == 1


def test_gossip_refreshes_an_entry_that_is_still_gossip(clock) -> None:
    store = make_store(clock)
    store.record_gossip(["203.0.113.10:7447"])
    clock.advance(store.refresh_secs)

    report = store.record_gossip(["203.0.113.10:7447"])

    entry = store.get("203.0.113.10:7447")
    assert entry is not None
    assert entry.source is Source.GOSSIP
    assert (entry.first_seen, entry.last_seen) == (START, START + store.refresh_secs)
    assert report.refreshed == 1


def test_hearing_of_an_address_again_soon_changes_nothing_to_save(clock) -> None:
    """Within refresh_secs (a 64th of the TTL) a peer list naming a known address moves no
    time: a node that hears the same addresses every minute has nothing new to write."""
    store = make_store(clock)
    store.record_gossip(["203.0.113.10:7447"])
    store.record_bootstrap(["203.0.113.11:7447"])
    changes = store.changes
    clock.advance(store.refresh_secs - 1)

    report = store.record_gossip(["203.0.113.10:7447"])
    store.record_bootstrap(["203.0.113.11:7447"])

    assert report.refreshed == 1
    assert store.changes == changes
    assert store.get("203.0.113.10:7447").last_seen == START  # type: ignore[union-attr]


def test_bootstrap_upgrades_a_gossip_entry(clock) -> None:
    store = make_store(clock)
    store.record_gossip(["203.0.113.10:7447"])
    clock.advance(60)

    store.record_bootstrap(["203.0.113.10:7447"])

    entry = store.get("203.0.113.10:7447")
    assert entry is not None
    assert entry.source is Source.BOOTSTRAP
    assert (entry.first_seen, entry.last_seen) == (START, START + 60)
    assert store.count(Source.GOSSIP) == 0


def test_bootstrap_never_downgrades_a_connected_entry(clock) -> None:
    store = make_store(clock)
    store.record_connected("203.0.113.10:7447")

    store.record_bootstrap(["203.0.113.10:7447"])

    entry = store.get("203.0.113.10:7447")
    assert entry is not None
    assert entry.source is Source.CONNECTED


@pytest.mark.parametrize("source", [Source.GOSSIP, Source.BOOTSTRAP, Source.CONNECTED])
def test_a_connection_upgrades_any_entry_to_connected_and_clears_its_failures(
    clock, source: Source
) -> None:
    store = make_store(clock)
    addr = "[2001:db8::10]:7447"
    store.load([stored(addr, source, seen=START - 100)])
    online(store)
    store.record_dial_failed(addr)
    store.record_dial_failed(addr)
    assert store.get(addr).failures == 2  # type: ignore[union-attr]
    clock.advance(10)

    key = store.record_connected(addr, node_id="node-b", capabilities=["relay"])

    entry = store.get(key)
    assert key == addr
    assert entry is not None
    assert entry.source is Source.CONNECTED
    assert entry.failures == 0
    # A proven entry's standing counts from its proof: hearing of an address early buys none.
    assert entry.first_seen == (START - 100 if source is Source.CONNECTED else START + 10)
    assert entry.last_seen == entry.last_connected == START + 10
    assert entry.node_id == "node-b"
    assert entry.capabilities == ("relay",)


def test_a_connection_keeps_a_known_node_id_when_the_new_one_is_malformed(clock) -> None:
    store = make_store(clock)
    store.record_connected("203.0.113.10:7447", node_id="node-b")
    store.record_connected("203.0.113.10:7447", node_id="not a valid id")
    assert store.get("203.0.113.10:7447").node_id == "node-b"  # type: ignore[union-attr]


def test_an_outbound_connection_records_the_dialled_address(clock) -> None:
    store = make_store(clock)
    key = store.record_connected(
        "[2001:DB8::1]:7447", listen_addr="[2001:db8::1]:9000", direction="outbound"
    )
    assert key == "[2001:db8::1]:7447"
    assert addrs_of(store) == {"[2001:db8::1]:7447"}


@pytest.mark.parametrize(
    ("observed", "advertised", "recorded"),
    [
        ("203.0.113.10:53122", "203.0.113.10:7447", "203.0.113.10:7447"),
        ("[2001:db8::1]:53122", "[2001:DB8::1]:7447", "[2001:db8::1]:7447"),
        ("[::ffff:203.0.113.10]:53122", "203.0.113.10:7447", "203.0.113.10:7447"),
    ],
)
def test_an_inbound_connection_records_the_advertised_listen_address_not_the_source_port(
    clock, observed: str, advertised: str, recorded: str
) -> None:
    store = make_store(clock)
    key = store.record_connected(observed, listen_addr=advertised, direction="inbound")
    assert key == recorded
    assert addrs_of(store) == {recorded}
    assert store.get(recorded).source is Source.CLAIMED  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "advertised",
    [None, "198.51.100.7:7447", "example.com:7447", "203.0.113.10:0", "garbage"],
)
def test_an_inbound_connection_without_a_provable_listen_address_records_nothing(
    clock, advertised: str | None
) -> None:
    """No listen address, a listen address on another IP, or an invalid one: nothing stored."""
    store = make_store(clock)
    with pytest.raises(AddressError):
        store.record_connected("203.0.113.10:53122", listen_addr=advertised, direction="inbound")
    assert len(store) == 0


def test_own_listen_addresses_are_never_stored(clock) -> None:
    store = make_store(clock, own_addrs=["[2001:DB8::7]:7447", "203.0.113.7:7447"])
    own = ["[2001:db8::7]:7447", "203.0.113.7:007447", "[::ffff:203.0.113.7]:7447"]

    gossip = store.record_gossip(own)
    bootstrap = store.record_bootstrap(own)
    for addr in own:
        with pytest.raises(AddressError):
            store.record_connected(addr)
    with pytest.raises(AddressError):
        store.record_connected("203.0.113.7:4000", listen_addr=own[1], direction="inbound")

    assert len(store) == 0
    assert len(gossip.rejected) == len(bootstrap.rejected) == len(own)
    assert all("own" in r.reason for r in gossip.rejected)


def test_a_connection_to_the_node_itself_is_never_stored(clock) -> None:
    store = make_store(clock, own_node_id="node-a")
    with pytest.raises(AddressError):
        store.record_connected("203.0.113.10:7447", node_id="node-a")
    assert len(store) == 0


def test_a_disconnect_refreshes_last_seen_and_forgets_nothing(clock) -> None:
    store = make_store(clock)
    store.record_connected("203.0.113.10:7447")
    clock.advance(300)

    assert store.record_disconnected("203.0.113.10:7447") == "203.0.113.10:7447"

    entry = store.get("203.0.113.10:7447")
    assert entry is not None
    assert entry.source is Source.CONNECTED
    assert entry.last_seen == START + 300
    assert entry.last_connected == START


def test_a_dial_failure_of_an_unknown_address_changes_nothing(clock) -> None:
    store = make_store(clock)
    store.record_gossip(["203.0.113.10:7447"])
    assert store.record_dial_failed("198.51.100.1:7447") is None
    assert store.record_dial_failed("not an address") is None
    assert addrs_of(store) == {"203.0.113.10:7447"}


def test_a_peer_list_is_validated_and_every_rejection_has_a_reason(clock) -> None:
    store = make_store(clock)
    junk: list[object] = ["example.com:7447", "203.0.113.10:0", 42, None, "[fe80::1%eth0]:7447"]

    report = store.record_gossip(["203.0.113.10:7447", *junk, "[2001:db8::1]:7447"])

    assert report.added == 2
    assert [r.addr for r in report.rejected] == junk
    assert all(r.reason for r in report.rejected)
    assert addrs_of(store) == {"203.0.113.10:7447", "[2001:db8::1]:7447"}


def test_addresses_are_stored_under_their_canonical_key(clock) -> None:
    store = make_store(clock)
    store.record_gossip(["[2001:DB8::1]:7447", "[2001:db8:0::1]:007447", "[::ffff:10.0.0.1]:7447"])
    assert addrs_of(store) == {"[2001:db8::1]:7447", "10.0.0.1:7447"}


# -- the cap ----------------------------------------------------------------------------------


def test_a_flood_of_gossip_never_evicts_connected_or_bootstrap_peers(clock) -> None:
    store = make_store(clock, max_entries=50)
    connected = many_addrs(10, "192.0.2.0")
    for addr in connected[:5]:
        store.record_connected(addr)  # live connections
    for addr in connected[5:]:
        store.record_connected(addr)
        store.record_disconnected(addr)
    bootstrap = many_addrs(5, "198.51.100.0")
    store.record_bootstrap(bootstrap)

    for batch in range(100):
        clock.advance(1)
        store.record_gossip(many_addrs(100, f"10.{batch}.0.0"))

    assert len(store) == 50
    assert set(connected) | set(bootstrap) <= addrs_of(store)
    assert store.count(Source.CONNECTED) == 10
    assert store.count(Source.BOOTSTRAP) == 5
    assert store.count(Source.GOSSIP) == 35


def test_gossip_into_a_store_full_of_trusted_peers_is_dropped(clock) -> None:
    store = make_store(clock, max_entries=2)
    store.record_connected("192.0.2.1:7447")
    store.record_bootstrap(["192.0.2.2:7447"])

    report = store.record_gossip(["10.0.0.1:7447"])

    assert report.added == 0
    assert [r.addr for r in report.rejected] == ["10.0.0.1:7447"]
    assert "full" in report.rejected[0].reason
    assert addrs_of(store) == {"192.0.2.1:7447", "192.0.2.2:7447"}


def test_bootstrap_never_evicts_a_connected_peer(clock) -> None:
    store = make_store(clock, max_entries=2)
    store.record_connected("192.0.2.1:7447")
    store.record_connected("192.0.2.2:7447")

    report = store.record_bootstrap(["198.51.100.1:7447"])

    assert report.added == 0
    assert addrs_of(store) == {"192.0.2.1:7447", "192.0.2.2:7447"}


def test_gossip_evicts_the_gossip_entry_seen_longest_ago(clock) -> None:
    store = make_store(clock, max_entries=3)
    for addr in ["10.0.0.1:7447", "10.0.0.2:7447", "10.0.0.3:7447"]:
        store.record_gossip([addr])
        clock.advance(10)
    clock.advance(store.refresh_secs)
    store.record_gossip(["10.0.0.1:7447"])  # seen again: now the most recent
    clock.advance(10)

    store.record_gossip(["10.0.0.4:7447"])

    assert addrs_of(store) == {"10.0.0.1:7447", "10.0.0.3:7447", "10.0.0.4:7447"}


def test_a_loaded_store_evicts_gossip_by_last_seen_not_by_file_order(clock) -> None:
    store = make_store(clock, max_entries=3)
    store.load(
        [
            stored("10.0.0.1:7447", Source.GOSSIP, seen=START - 10),
            stored("10.0.0.2:7447", Source.GOSSIP, seen=START - 30),
            stored("10.0.0.3:7447", Source.GOSSIP, seen=START - 20),
        ]
    )

    store.record_gossip(["10.0.0.4:7447"])

    assert "10.0.0.2:7447" not in store
    assert len(store) == 3


def test_a_new_bootstrap_peer_evicts_gossip_first_then_the_oldest_bootstrap(clock) -> None:
    store = make_store(clock, max_entries=3)
    store.record_connected("192.0.2.1:7447")
    store.record_bootstrap(["198.51.100.1:7447"])
    clock.advance(1)
    store.record_gossip(["10.0.0.1:7447"])
    clock.advance(1)

    store.record_bootstrap(["198.51.100.2:7447"])
    assert addrs_of(store) == {"192.0.2.1:7447", "198.51.100.1:7447", "198.51.100.2:7447"}

    clock.advance(1)
    store.record_bootstrap(["198.51.100.3:7447"])
    assert addrs_of(store) == {"192.0.2.1:7447", "198.51.100.2:7447", "198.51.100.3:7447"}


def test_a_new_connected_peer_evicts_gossip_then_bootstrap_then_the_oldest_connected(
    clock,
) -> None:
    store = make_store(clock, max_entries=3)
    store.record_connected("192.0.2.1:7447")
    clock.advance(1)
    store.record_connected("192.0.2.2:7447")
    clock.advance(1)
    store.record_bootstrap(["198.51.100.1:7447"])
    clock.advance(1)
    store.record_gossip(["10.0.0.1:7447"])
    store.record_gossip(["10.0.0.2:7447"])  # full already: the older gossip goes
    assert len(store) == 3

    clock.advance(1)
    store.record_connected("203.0.113.1:7447")
    assert addrs_of(store) == {"192.0.2.1:7447", "192.0.2.2:7447", "203.0.113.1:7447"}
    assert len(store) == 3

    clock.advance(1)
    store.record_connected("203.0.113.2:7447")
    assert addrs_of(store) == {"192.0.2.2:7447", "203.0.113.1:7447", "203.0.113.2:7447"}
    assert len(store) == 3


POOL = [f"10.{i % 3}.{i}.1:7447" for i in range(12)] + [f"[2001:db8:{i}::1]:7447" for i in range(4)]
OPS = st.one_of(
    st.tuples(st.just("gossip"), st.lists(st.sampled_from(POOL), max_size=6)),
    st.tuples(st.just("bootstrap"), st.lists(st.sampled_from(POOL), max_size=3)),
    st.tuples(st.just("connect"), st.sampled_from(POOL), st.sampled_from(["outbound", "inbound"])),
    st.tuples(st.just("disconnect"), st.sampled_from(POOL)),
    st.tuples(st.just("fail"), st.sampled_from(POOL)),
    st.tuples(st.just("advance"), st.integers(min_value=0, max_value=5000)),
    st.tuples(st.just("expire")),
)


def _inbound_source(addr: str) -> str:
    host = addr.rpartition(":")[0]
    return f"{host}:50000"


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    max_entries=st.integers(min_value=1, max_value=8),
    limit=st.integers(min_value=0, max_value=4),
    ops=st.lists(OPS, max_size=40),
)
def test_every_mix_of_events_keeps_the_cap_the_trust_order_and_a_sound_plan(
    clock, max_entries: int, limit: int, ops: list[tuple]
) -> None:
    """Under any sequence of events: never over the cap, gossip and bootstrap never push out a
    Connected peer, trust never goes down, and the plan holds only dialable Connected peers."""
    clock.t = START
    store = make_store(clock, max_entries=max_entries, ttl_secs=3600, reconnect_limit=limit)
    for op in ops:
        before = {e.addr: e.source for e in store}
        kind = op[0]
        if kind == "gossip":
            store.record_gossip(op[1])
        elif kind == "bootstrap":
            store.record_bootstrap(op[1])
        elif kind == "connect" and op[2] == "outbound":
            store.record_connected(op[1])
        elif kind == "connect":
            store.record_connected(_inbound_source(op[1]), listen_addr=op[1], direction="inbound")
        elif kind == "disconnect":
            store.record_disconnected(op[1])
        elif kind == "fail":
            store.record_dial_failed(op[1])
        elif kind == "advance":
            clock.advance(op[1])
        else:
            store.expire()

        after = {e.addr: e.source for e in store}
        assert len(store) == len(after) <= max_entries
        for addr, source in before.items():
            if addr in after:
                assert after[addr].rank >= source.rank
        if kind in ("gossip", "bootstrap"):
            assert {a for a, s in before.items() if s is Source.CONNECTED} <= set(after)
        if kind == "gossip":
            assert {a for a, s in before.items() if s is Source.BOOTSTRAP} <= set(after)

        plan = store.reconnect_plan()
        assert len(plan) <= limit
        assert len(set(plan)) == len(plan)
        for addr in plan:
            assert after[addr] is Source.CONNECTED
            assert not store.is_connected(addr)


# -- TTL and loading --------------------------------------------------------------------------


def test_loading_drops_entries_not_seen_within_the_ttl(clock) -> None:
    store = make_store(clock, ttl_secs=1000, reconnect_limit=0)  # no anchors
    report = store.load(
        [
            stored("10.0.0.1:7447", Source.GOSSIP, seen=START - 1000),
            stored("10.0.0.2:7447", Source.CONNECTED, seen=START - 1001),
            stored("[2001:db8::1]:7447", Source.BOOTSTRAP, seen=START - 5000),
        ]
    )
    assert addrs_of(store) == {"10.0.0.1:7447"}
    assert report.expired == 2
    assert report.loaded == 1


def test_expiry_drops_stale_entries_but_keeps_a_live_connection(clock) -> None:
    store = make_store(clock, ttl_secs=1000, reconnect_limit=0)  # no anchors
    store.record_gossip(["10.0.0.1:7447"])
    store.record_bootstrap(["10.0.0.2:7447"])
    store.record_connected("10.0.0.3:7447")
    store.record_disconnected("10.0.0.3:7447")
    store.record_connected("[2001:db8::4]:7447")  # still connected
    clock.advance(1000)
    store.record_gossip(["10.0.0.5:7447"])
    assert store.expire() == 0

    clock.advance(1)
    dropped = store.expire()

    assert dropped == 3
    assert addrs_of(store) == {"[2001:db8::4]:7447", "10.0.0.5:7447"}
    assert store.get("[2001:db8::4]:7447").last_seen == START + 1001  # type: ignore[union-attr]


def test_each_entry_expires_at_its_own_ttl_across_repeated_expiry_passes(clock) -> None:
    store = make_store(clock, ttl_secs=100)
    for i in range(5):
        store.record_gossip([f"10.0.0.{i + 1}:7447"])  # seen at START + 10 * i
        clock.advance(10)
    for _ in range(100):
        store.expire()
        cutoff = store.now() - 100
        assert len(store) == sum(1 for i in range(5) if START + 10 * i >= cutoff)
        clock.advance(1)
    assert len(store) == 0


def test_an_entry_seen_after_the_clock_stepped_back_still_expires_on_time(clock) -> None:
    store = make_store(clock, ttl_secs=100)
    store.record_gossip(["10.0.0.1:7447"])
    assert store.expire() == 0
    clock.t = START - 50  # the wall clock steps back
    store.record_gossip(["10.0.0.2:7447"])

    clock.t = START + 51

    assert store.expire() == 1
    assert addrs_of(store) == {"10.0.0.1:7447"}


def test_loading_clamps_times_in_the_future_to_now(clock) -> None:
    store = make_store(clock)
    report = store.load(
        [
            PeerEntry(
                addr="[2001:db8::1]:7447",
                source=Source.CONNECTED,
                first_seen=START + 10,
                last_seen=START + 86_400,
                last_connected=START + 3600,
                last_attempt=START + 999_999,
                failures=3,
            )
        ]
    )
    entry = store.get("[2001:db8::1]:7447")
    assert entry is not None
    assert entry.first_seen == entry.last_seen == START
    assert entry.last_connected == entry.last_attempt == START
    assert report.clamped == 1


def test_loading_caps_by_trust_then_recency(clock) -> None:
    store = make_store(clock, max_entries=4)
    report = store.load(
        [
            stored("10.0.0.1:7447", Source.GOSSIP, seen=START - 1),
            stored("10.0.0.2:7447", Source.GOSSIP, seen=START - 2),
            stored("10.0.0.3:7447", Source.GOSSIP, seen=START - 3),
            stored("192.0.2.1:7447", Source.CONNECTED, seen=START - 900),
            stored("192.0.2.2:7447", Source.CONNECTED, seen=START - 800),
            stored("198.51.100.1:7447", Source.BOOTSTRAP, seen=START - 700),
        ]
    )
    assert addrs_of(store) == {
        "10.0.0.1:7447",
        "192.0.2.1:7447",
        "192.0.2.2:7447",
        "198.51.100.1:7447",
    }
    assert report.evicted == 2


def test_loading_keeps_the_most_trusted_of_repeated_addresses(clock) -> None:
    store = make_store(clock)
    connected = stored("10.0.0.1:7447", Source.CONNECTED, seen=START - 500)
    report = store.load([stored("10.0.0.1:7447", Source.GOSSIP, seen=START - 1), connected])
    assert list(store) == [connected]
    assert report.duplicates == 1


def test_loading_drops_own_addresses_and_entries_of_the_node_itself(clock) -> None:
    store = make_store(clock, own_addrs=["203.0.113.7:7447"], own_node_id="node-a")
    report = store.load(
        [
            stored("203.0.113.7:7447", seen=START),
            stored("203.0.113.8:7447", seen=START, node_id="node-a"),
            stored("203.0.113.9:7447", seen=START, node_id="node-b"),
        ]
    )
    assert addrs_of(store) == {"203.0.113.9:7447"}
    assert report.own == 2


def test_loading_reports_each_entry_it_drops_with_its_reason(clock) -> None:
    store = make_store(
        clock, max_entries=2, ttl_secs=1000, reconnect_limit=0, own_addrs=["203.0.113.7:7447"]
    )
    entries = [
        stored("203.0.113.7:7447", seen=START),
        stored("10.0.0.1:7447", Source.GOSSIP, seen=START - 5000),
        stored("10.0.0.2:7447", Source.CONNECTED, seen=START - 10),
        stored("10.0.0.2:7447", Source.GOSSIP, seen=START - 1),
        stored("10.0.0.3:7447", Source.BOOTSTRAP, seen=START - 20),
        stored("10.0.0.4:7447", Source.GOSSIP, seen=START - 30),
    ]

    report = store.load(entries)

    assert addrs_of(store) == {"10.0.0.2:7447", "10.0.0.3:7447"}
    assert [(d.index, d.reason) for d in report.dropped] == [
        (0, DropReason.OWN),
        (1, DropReason.EXPIRED),
        (3, DropReason.DUPLICATE),
        (5, DropReason.OVER_CAP),
    ]
    assert all(d.entry is entries[d.index] for d in report.dropped)
    assert (report.own, report.expired, report.duplicates, report.evicted) == (1, 1, 1, 1)


def test_a_dropped_entry_whose_address_another_entry_keeps_is_reported_a_duplicate(clock) -> None:
    store = make_store(clock, ttl_secs=1000, reconnect_limit=0, own_addrs=["203.0.113.7:7447"])
    report = store.load(
        [
            stored("10.0.0.1:7447", Source.GOSSIP, seen=START - 5000),
            stored("10.0.0.1:7447", Source.BOOTSTRAP, seen=START),
            stored("203.0.113.7:7447", seen=START - 5000),
        ]
    )
    assert [(d.index, d.reason) for d in report.dropped] == [
        (0, DropReason.DUPLICATE),
        (2, DropReason.OWN),
    ]
    assert report.expired == 2  # the counts tally the passes: expiry comes first


def test_an_exact_copy_of_an_entry_over_the_cap_is_over_the_cap_too(clock) -> None:
    store = make_store(clock, max_entries=1)
    kept = stored("10.0.0.1:7447", seen=START)
    pushed_out = stored("10.0.0.2:7447", Source.GOSSIP, seen=START - 1)
    report = store.load([pushed_out, kept, pushed_out.replace()])
    assert [(d.index, d.reason) for d in report.dropped] == [
        (0, DropReason.OVER_CAP),
        (2, DropReason.OVER_CAP),
    ]


def test_loading_reports_a_kept_entry_clamped_to_now_as_kept(clock) -> None:
    store = make_store(clock)
    report = store.load([stored("10.0.0.1:7447", seen=START + 3600)])
    assert (report.loaded, report.clamped, report.dropped) == (1, 1, ())


def test_loading_replaces_what_the_store_held(clock) -> None:
    store = make_store(clock)
    store.record_gossip(["10.0.0.1:7447"])
    store.load([stored("10.0.0.2:7447", seen=START)])
    assert addrs_of(store) == {"10.0.0.2:7447"}


def test_entries_are_listed_most_trusted_then_most_recent_first(clock) -> None:
    store = make_store(clock)
    store.load(
        [
            stored("10.0.0.1:7447", Source.GOSSIP, seen=START),
            stored("10.0.0.2:7447", Source.BOOTSTRAP, seen=START - 10),
            stored("10.0.0.3:7447", Source.CONNECTED, seen=START - 20),
            stored("10.0.0.4:7447", Source.CONNECTED, seen=START - 5),
        ]
    )
    assert [e.addr for e in store.entries()] == [
        "10.0.0.4:7447",
        "10.0.0.3:7447",
        "10.0.0.2:7447",
        "10.0.0.1:7447",
    ]


def test_by_tier_lists_the_most_trusted_tier_first_and_the_latest_recorded_first(clock) -> None:
    store = make_store(clock)
    store.record_gossip(["10.0.0.1:7447", "10.0.0.2:7447"])
    store.record_bootstrap(["10.0.0.3:7447"])
    store.record_connected("10.0.0.4:7447")
    clock.advance(store.refresh_secs)
    store.record_gossip(["10.0.0.1:7447"])  # refreshed: now the latest gossip
    store.record_connected("10.0.0.5:7447")

    assert [e.addr for e in store.by_tier()] == [
        "10.0.0.5:7447",
        "10.0.0.4:7447",
        "10.0.0.3:7447",
        "10.0.0.1:7447",
        "10.0.0.2:7447",
    ]
    assert sorted(store.by_tier(), key=lambda e: e.addr) == sorted(store, key=lambda e: e.addr)


@pytest.mark.parametrize("kwargs", [{"max_entries": 0}, {"ttl_secs": 0}, {"reconnect_limit": -1}])
def test_a_store_refuses_settings_it_cannot_honour(clock, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - one message covers all three
        make_store(clock, **kwargs)


# -- the reconnect plan ---------------------------------------------------------------------


times = st.integers(0, 40)


@given(
    first_seen=times,
    last_connected=st.none() | times,
    last_attempt=st.none() | times,
    failures=st.integers(0, 3),
    cutoff=times,
)
def test_standing_ranks_a_peer_by_its_last_judged_dial_and_its_last_answer(
    first_seen: int,
    last_connected: int | None,
    last_attempt: int | None,
    failures: int,
    cutoff: int,
) -> None:
    """The plan's key, as its docstring states it in terms of last_dial_failed and last_proof."""
    entry = PeerEntry(
        addr="203.0.113.10:7447",
        source=Source.CONNECTED,
        first_seen=first_seen,
        last_seen=40,
        last_connected=last_connected,
        last_attempt=last_attempt,
        failures=failures,
    )
    if not last_dial_failed(entry) and last_proof(entry) >= cutoff:
        expected = (0, first_seen, entry.addr)
    else:
        expected = (1, -(last_connected or 0), entry.addr)
    assert PeerStore.standing(cutoff)(entry) == expected


def test_the_plan_is_the_longest_standing_peers_first_up_to_the_limit(clock) -> None:
    store = make_store(clock, reconnect_limit=5)
    ages = [700, 100, 900, 300, 50, 800, 200, 600]
    store.load([stored(f"10.{i}.0.1:7447", seen=START - age) for i, age in enumerate(ages)])
    expected = [f"10.{i}.0.1:7447" for i, _ in sorted(enumerate(ages), key=lambda p: -p[1])][:5]
    assert store.reconnect_plan() == expected


def test_the_plan_orders_by_standing_not_by_the_latest_connection(clock) -> None:
    store = make_store(clock)
    store.load(
        [
            stored("10.2.0.1:7447", seen=START - 100, connected=START - 100),
            PeerEntry(
                addr="10.1.0.1:7447",
                source=Source.CONNECTED,
                first_seen=START - 500,
                last_seen=START,
                last_connected=START,
            ),
        ]
    )
    assert store.reconnect_plan() == ["10.1.0.1:7447", "10.2.0.1:7447"]


def test_the_plan_holds_only_connected_peers(clock) -> None:
    store = make_store(clock, reconnect_limit=5)
    store.load(
        [
            stored("10.1.0.1:7447", Source.GOSSIP, seen=START, connected=START),
            stored("10.2.0.1:7447", Source.BOOTSTRAP, seen=START, connected=START),
            stored("10.3.0.1:7447", Source.CONNECTED, seen=START - 100),
        ]
    )
    assert store.reconnect_plan() == ["10.3.0.1:7447"]


def test_the_plan_is_empty_when_the_limit_is_zero(clock) -> None:
    store = make_store(clock, reconnect_limit=0)
    store.load([stored("10.3.0.1:7447", seen=START)])
    assert store.reconnect_plan() == []


def test_the_plan_never_holds_an_own_address(clock) -> None:
    store = make_store(clock, own_addrs=["[2001:DB8::7]:7447"])
    store.load([stored("[2001:db8::7]:7447", seen=START), stored("10.1.0.1:7447", seen=START - 10)])
    assert store.reconnect_plan() == ["10.1.0.1:7447"]


def test_the_plan_skips_peers_connected_right_now(clock) -> None:
    store = make_store(clock)
    store.load([stored("10.1.0.1:7447", seen=START - 100)])
    clock.advance(10)
    store.record_connected("10.2.0.1:7447")
    store.record_connected("10.3.0.1:53000", listen_addr="10.3.0.1:7447", direction="inbound")
    assert store.reconnect_plan() == ["10.1.0.1:7447"]

    store.record_disconnected("10.2.0.1:7447")
    store.record_disconnected("10.3.0.1:53000", listen_addr="10.3.0.1:7447", direction="inbound")

    # The inbound peer's listen address is a claim: never in the plan.
    assert store.reconnect_plan() == ["10.1.0.1:7447", "10.2.0.1:7447"]


def test_a_peer_with_two_connections_is_live_until_both_end(clock) -> None:
    store = make_store(clock)
    store.record_connected("10.2.0.1:7447")
    store.record_connected("10.2.0.1:7447")
    store.record_disconnected("10.2.0.1:7447")
    assert store.reconnect_plan() == []
    store.record_disconnected("10.2.0.1:7447")
    assert store.reconnect_plan() == ["10.2.0.1:7447"]


@pytest.mark.parametrize("failures", [1, 2, 3, 5, 7, 8, 30, 200])
def test_a_failing_peer_is_left_out_of_the_plan_until_its_backoff_passes(
    clock, failures: int
) -> None:
    """The wait starts at BACKOFF_BASE_SECS and doubles with each failure, up to the cap."""
    store = make_store(clock)
    store.load([stored("10.1.0.1:7447", seen=START - 10), stored("10.2.0.1:7447", seen=START - 20)])
    online(store)
    for _ in range(failures):
        store.record_dial_failed("10.1.0.1:7447")
    wait = min(BACKOFF_BASE_SECS * 2 ** (failures - 1), BACKOFF_MAX_SECS)

    assert store.reconnect_plan() == ["10.2.0.1:7447"]
    clock.advance(wait - 1)
    assert store.reconnect_plan() == ["10.2.0.1:7447"]
    clock.advance(1)
    # Back in the plan, after every peer whose last dial did not fail.
    assert store.reconnect_plan() == ["10.2.0.1:7447", "10.1.0.1:7447"]


def test_the_backoff_restarts_from_the_latest_failure(clock) -> None:
    store = make_store(clock)
    store.load([stored("10.1.0.1:7447", seen=START)])
    online(store)
    store.record_dial_failed("10.1.0.1:7447")
    clock.advance(BACKOFF_BASE_SECS)
    store.record_dial_failed("10.1.0.1:7447")
    clock.advance(2 * BACKOFF_BASE_SECS - 1)
    assert store.reconnect_plan() == []
    clock.advance(1)
    assert store.reconnect_plan() == ["10.1.0.1:7447"]


def test_a_successful_connection_ends_the_backoff(clock) -> None:
    store = make_store(clock)
    store.load([stored("10.1.0.1:7447", seen=START)])
    online(store)
    for _ in range(5):
        store.record_dial_failed("10.1.0.1:7447")
    store.record_connected("10.1.0.1:7447")
    store.record_disconnected("10.1.0.1:7447")
    assert store.reconnect_plan() == ["10.1.0.1:7447"]


def test_the_plan_prefers_one_peer_per_ipv4_slash16(clock) -> None:
    store = make_store(clock, reconnect_limit=3)
    store.load(
        [
            stored("10.1.0.1:7447", seen=START - 5),
            stored("10.1.200.2:7447", seen=START - 4),
            stored("10.1.3.3:7447", seen=START - 3),
            stored("10.2.0.1:7447", seen=START - 2),
            stored("10.3.0.1:7447", seen=START - 1),
        ]
    )
    assert store.reconnect_plan() == ["10.1.0.1:7447", "10.2.0.1:7447", "10.3.0.1:7447"]


def test_the_plan_prefers_one_peer_per_ipv6_slash32(clock) -> None:
    store = make_store(clock, reconnect_limit=2)
    store.load(
        [
            stored("[2001:db8:1::1]:7447", seen=START - 3),
            stored("[2001:db8:ffff::1]:7447", seen=START - 2),
            stored("[2001:db9::1]:7447", seen=START - 1),
        ]
    )
    assert store.reconnect_plan() == ["[2001:db8:1::1]:7447", "[2001:db9::1]:7447"]


def test_the_plan_fills_up_from_crowded_groups_when_there_are_too_few_groups(clock) -> None:
    store = make_store(clock, reconnect_limit=4)
    store.load(
        [
            stored("10.1.0.1:7447", seen=START - 5),
            stored("10.1.0.2:7447", seen=START - 4),
            stored("10.1.0.3:7447", seen=START - 3),
            stored("10.2.0.1:7447", seen=START - 2),
            stored("10.1.0.4:7447", seen=START - 1),
        ]
    )
    assert store.reconnect_plan() == [
        "10.1.0.1:7447",
        "10.1.0.2:7447",
        "10.1.0.3:7447",
        "10.2.0.1:7447",
    ]


ESTABLISHED = [f"{first}.20.0.1:7447" for first in (45, 91, 151, 185, 5)]
"""Five long-standing proven peers, in five network groups."""
NEWCOMERS = [f"7.{n % 10}.{n // 10}.1:7447" for n in range(50)]
"""Fifty addresses of one attacker in ten network groups."""


def established_then_flooded(clock) -> PeerStore:
    """A node proves :data:`ESTABLISHED`; the attacker gossips :data:`NEWCOMERS` early, and
    after the established peers go away (churn) the node refills its slots from them."""
    store = make_store(clock)
    store.record_gossip(NEWCOMERS, sender="7.0.0.9:7447")  # heard of before the others' proof
    clock.advance(60)
    for addr in ESTABLISHED:
        store.record_connected(addr)
        clock.advance(1)
    clock.advance(3600)
    for addr in ESTABLISHED:
        store.record_disconnected(addr)
    for addr in NEWCOMERS:  # every one of them answers, and is the newest proven entry
        clock.advance(10)
        store.record_connected(addr)
    return store


def restart(clock, store: PeerStore) -> PeerStore:
    """Stop gracefully (every connection ends) and start 30 s later from what was saved."""
    for addr in [*ESTABLISHED, *NEWCOMERS]:
        if store.is_connected(addr):
            store.record_disconnected(addr)
    saved, stopped = list(store), int(clock())
    clock.advance(30)
    restarted = make_store(clock)
    restarted.load(saved, offline=[(stopped, int(clock()))])
    return restarted


def test_a_burst_of_new_proven_peers_does_not_displace_the_long_standing_ones(clock) -> None:
    """Bitcoin's anchors and test-before-evict: fifty fresh connections, each the newest proven
    entry, leave the plan and the anchors to the peers of long standing that still answer."""
    store = established_then_flooded(clock)
    assert store.count(Source.CONNECTED) == 55

    restarted = restart(clock, store)

    assert restarted.reconnect_plan() == ESTABLISHED
    assert restarted.anchors(restarted) == frozenset(ESTABLISHED)


def test_a_long_standing_peer_whose_dials_fail_is_replaced_and_not_kept(clock) -> None:
    store = established_then_flooded(clock)
    dead = ESTABLISHED[0]
    assert store.online()  # the newcomers prove the node's own uplink: the failure counts
    store.record_dial_failed(dead)

    restarted = restart(clock, store)

    plan = restarted.reconnect_plan()
    assert dead not in plan
    assert plan[:4] == ESTABLISHED[1:]  # the others still answer: they keep their places
    assert plan[4] == NEWCOMERS[0]  # the newcomer of longest standing takes the free place
    assert dead not in restarted.anchors(restarted)
    clock.advance(restarted.ttl_secs + 1)  # a TTL of running time: no anchor, no longer kept
    restarted.expire()
    assert dead not in restarted


def test_eviction_passes_over_a_peer_the_node_is_connected_to_now(clock) -> None:
    store = make_store(clock, max_entries=2)
    store.record_connected("192.0.2.1:7447")  # oldest, and still connected
    clock.advance(1)
    store.record_connected("192.0.2.2:7447")
    store.record_disconnected("192.0.2.2:7447")
    clock.advance(1)
    store.record_connected("192.0.2.3:7447")
    assert addrs_of(store) == {"192.0.2.1:7447", "192.0.2.3:7447"}


def test_failed_dials_during_an_outage_of_the_nodes_own_uplink_do_not_count(clock) -> None:
    """Bitcoin Core's rule: a failure counts only while the node has working outbound
    connections in two network groups; else the fault may be the node's own."""
    store = make_store(clock)
    peers = [f"10.{n}.0.1:7447" for n in range(1, 6)]
    store.load([stored(addr, seen=START - 10 + n) for n, addr in enumerate(peers)])
    for _ in range(4 * 3600 // 30):  # four hours offline, every planned peer dialled
        for addr in peers:
            store.record_dial_failed(addr)
        clock.advance(30)
    assert all(store.get(a).failures == 0 for a in peers)  # type: ignore[union-attr]
    assert store.reconnect_plan() == peers
    assert store.anchors(store) == frozenset(peers)

    store.record_connected("192.0.2.1:7447")  # one group is not proof of the node's uplink
    store.record_dial_failed(peers[0])
    assert store.get(peers[0]).failures == 0  # type: ignore[union-attr]
    store.record_connected("198.51.100.1:7447")
    store.record_dial_failed(peers[0])
    assert store.get(peers[0]).failures == 1  # type: ignore[union-attr]
    store.record_disconnected("198.51.100.1:7447")
    store.record_dial_failed(peers[0])
    assert store.get(peers[0]).failures == 1  # type: ignore[union-attr]


STANDING = [f"{first}.30.0.1:7447" for first in (45, 91, 151)]
"""Three proven peers in three network groups, longest standing first."""
ELSEWHERE = "5.9.20.30:7447"
"""A peer in a fourth group whose handshake shows the node's uplink works."""


def standing_store(clock) -> PeerStore:
    """A store loaded with :data:`STANDING`, proven a day ago and an hour apart."""
    store = make_store(clock)
    store.load(
        [
            PeerEntry(
                addr=addr,
                source=Source.CONNECTED,
                first_seen=START - 86_400 + n * 3600,
                last_seen=START - 60,
                last_connected=START - 60,
                last_attempt=START - 60,
            )
            for n, addr in enumerate(STANDING)
        ]
    )
    assert store.reconnect_plan() == STANDING
    return store


@pytest.mark.parametrize("handshake", [-UPLINK_PROOF_SECS, 0, UPLINK_PROOF_SECS])
def test_a_failed_dial_near_another_handshake_costs_the_peer_its_standing_not_its_dials(
    clock, handshake: int
) -> None:
    """The node completed an outbound handshake within a minute of the failure, before or
    after it: its uplink worked, so the fault is the peer's. One group is not enough for the
    failure to count (no backoff: it is still dialled), but the peer ranks last."""
    store = standing_store(clock)
    failed = START + 2 * UPLINK_PROOF_SECS
    events = [(failed, store.record_dial_failed, STANDING[0])]
    events.append((failed + handshake, store.record_connected, ELSEWHERE))
    for when, event, addr in sorted(events, key=lambda e: e[0]):
        clock.t = when
        event(addr)
    entry = store.get(STANDING[0])
    assert entry is not None
    assert entry.failures == 0
    assert store.reconnect_plan() == [*STANDING[1:], STANDING[0]]


@pytest.mark.parametrize("handshake", [-UPLINK_PROOF_SECS - 1, UPLINK_PROOF_SECS + 1])
def test_a_failed_dial_with_no_handshake_within_a_minute_changes_nothing(
    clock, handshake: int
) -> None:
    """An outage: nothing the node dialled answered near the failure. The peer keeps its place
    and its entry, whenever the uplink comes back."""
    store = standing_store(clock)
    before = list(store)
    clock.advance(UPLINK_PROOF_SECS + 10)
    if handshake < 0:
        store.record_connected(ELSEWHERE)
        store.record_disconnected(ELSEWHERE)
        clock.advance(-handshake)
    for _ in range(3):
        for addr in STANDING:
            store.record_dial_failed(addr)
    if handshake > 0:
        clock.advance(handshake)
        store.record_connected(ELSEWHERE)
        store.record_disconnected(ELSEWHERE)

    assert [e for e in store if e.addr in STANDING] == [e for e in before]
    assert store.reconnect_plan()[:3] == STANDING


def test_connecting_in_never_restores_standing_and_answering_a_dial_does(clock) -> None:
    store = standing_store(clock)
    store.record_connected(ELSEWHERE)
    store.record_dial_failed(STANDING[0])
    clock.advance(10)
    inbound = STANDING[0].replace(":7447", ":51234")
    store.record_connected(inbound, listen_addr=STANDING[0], direction="inbound")
    clock.advance(600)
    store.record_disconnected(inbound, listen_addr=STANDING[0], direction="inbound")
    entry = store.get(STANDING[0])
    assert entry is not None
    assert entry.last_seen == START + 610  # seen, and so kept
    assert store.reconnect_plan()[-1] == STANDING[0]  # but not proven again

    store.record_connected(STANDING[0])  # it answers a dial: its place comes back
    store.record_disconnected(STANDING[0])
    assert store.reconnect_plan()[:3] == STANDING


def test_standing_lapses_without_an_answered_dial_within_the_ttl_not_with_a_long_connection(
    clock,
) -> None:
    """One peer only ever connects in for a TTL and more; another holds the connection the
    node dialled all that time: the first falls behind a newer peer that answers, the second
    keeps its place."""
    ttl = 7200
    store = make_store(clock, ttl_secs=ttl)
    claimer, holder, newer = STANDING
    store.record_connected(claimer)
    store.record_disconnected(claimer)
    clock.advance(1)
    store.record_connected(holder)  # and stays connected
    clock.advance(1)
    store.record_connected(newer)
    store.record_disconnected(newer)
    inbound = claimer.replace(":7447", ":51234")
    for _ in range(3):
        clock.advance(ttl // 2)
        store.record_connected(inbound, listen_addr=claimer, direction="inbound")
        store.record_disconnected(inbound, listen_addr=claimer, direction="inbound")
        store.record_connected(newer)
        store.record_disconnected(newer)
        store.expire()  # as each save does
    store.record_disconnected(holder)

    assert store.reconnect_plan() == [holder, newer, claimer]
    assert claimer in store


def test_a_new_process_dials_each_proven_peer_whatever_its_backoff(clock) -> None:
    store = make_store(clock)
    store.load([stored("10.1.0.1:7447", seen=START), stored("10.2.0.1:7447", seen=START - 1)])
    online(store)
    for _ in range(TERRIBLE_FAILURES - 1):
        store.record_dial_failed("10.1.0.1:7447")
    assert store.reconnect_plan() == ["10.2.0.1:7447"]  # this process waits out the backoff
    restarted = make_store(clock)
    restarted.load(list(store))
    assert "10.1.0.1:7447" in restarted.reconnect_plan()
