"""Peer lists are untrusted: what the store refuses from them, counts, and caps."""

from __future__ import annotations

import functools
import ipaddress
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import books, embedded
from tests.support.clocks import FakeClock
from thenodes_peerstore.errors import Reason
from thenodes_peerstore.model import MAX_CAPABILITIES, Source, canonical_addr
from thenodes_peerstore.store import MAX_ADDRS_PER_MESSAGE, MAX_SAMPLES

OWN = "198.51.100.5:7447"
PUBLIC_SENDER = "45.76.12.34:7447"
PRIVATE_SENDER = "192.168.1.20:51234"
LOOPBACK_SENDER = "127.0.0.1:40000"


# A store of node-a, which knows its own address.
make_store = functools.partial(books.make_store, own_addrs=[OWN], own_node_id="node-a")


def public_addrs(n: int, first_octet: int = 11) -> list[str]:
    """``n`` distinct public addresses."""
    return [f"{first_octet + i // 65536}.{i // 256 % 256}.{i % 256}.1:7447" for i in range(n)]


# -- what is refused, and why ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addr", "kind"),
    [
        ("not an address", Reason.MALFORMED),
        (7447, Reason.MALFORMED),
        ("203.0.113.10", Reason.MALFORMED),
        ("seed.example.org:7447", Reason.HOSTNAME),
        ("203.0.113.10:0", Reason.BAD_PORT),
        ("203.0.113.10:70000", Reason.BAD_PORT),
        ("0.0.0.0:7447", Reason.UNSPECIFIED),
        ("[::]:7447", Reason.UNSPECIFIED),
        ("224.0.0.251:7447", Reason.MULTICAST),
        ("[ff02::1]:7447", Reason.MULTICAST),
        ("240.1.2.3:7447", Reason.RESERVED),
        ("255.255.255.255:7447", Reason.RESERVED),
        ("0.1.2.3:7447", Reason.RESERVED),
        ("[100::1]:7447", Reason.RESERVED),
        (OWN, Reason.OWN),
        ("10.0.0.1:7447", Reason.SCOPE),
        ("127.0.0.1:7447", Reason.SCOPE),
        ("169.254.1.1:7447", Reason.SCOPE),
        ("[fd00::1]:7447", Reason.SCOPE),
        ("[fe80::1]:7447", Reason.SCOPE),
        ("[::1]:7447", Reason.SCOPE),
    ],
)
def test_each_bad_address_in_a_peer_list_is_refused_and_counted_by_reason(
    clock, addr: object, kind: Reason
) -> None:
    store = make_store(clock)
    report = store.record_gossip([addr, "203.0.113.10:7447"], sender=PUBLIC_SENDER)
    assert report.counts == {kind: 1}
    assert report.rejected_total == 1
    assert [(r.addr, r.kind) for r in report.rejected] == [(addr, kind)]
    assert report.added == 1
    assert [e.addr for e in store] == ["203.0.113.10:7447"]
    assert store.rejections == {kind: 1}


def test_counts_add_up_over_many_peer_lists(clock) -> None:
    store = make_store(clock)
    for _ in range(3):
        store.record_gossip(["10.0.0.1:7447", "x", "[ff02::1]:7447"], sender=PUBLIC_SENDER)
    assert store.rejections == {Reason.SCOPE: 3, Reason.MALFORMED: 3, Reason.MULTICAST: 3}


def test_a_report_keeps_a_few_examples_but_counts_every_rejection(clock) -> None:
    store = make_store(clock)
    junk = [f"junk-{n}" for n in range(500)]
    report = store.record_gossip(junk, sender=PUBLIC_SENDER)
    assert report.counts == {Reason.MALFORMED: 500}
    assert [r.addr for r in report.rejected] == junk[:MAX_SAMPLES]


# -- scope: a sender may only vouch for addresses at least as wide as its own ---------------------

SCOPED = {
    "loopback": "127.0.0.1:7447",
    "link": "169.254.7.7:7447",
    "private": "10.1.2.3:7447",
    "cgnat": "100.64.3.4:7447",
    "ula": "[fd12::3]:7447",
    "public": "8.8.8.8:7447",
    "public-v6": "[2a01:4f8::1]:7447",
}


@pytest.mark.parametrize(
    ("sender", "kept"),
    [
        (PUBLIC_SENDER, {"public", "public-v6"}),
        ("[2a01:4f8::99]:7447", {"public", "public-v6"}),
        (PRIVATE_SENDER, {"private", "cgnat", "ula", "public", "public-v6"}),
        ("[fd00::5]:7447", {"private", "cgnat", "ula", "public", "public-v6"}),
        ("169.254.1.1:7447", {"link", "private", "cgnat", "ula", "public", "public-v6"}),
        (LOOPBACK_SENDER, set(SCOPED)),
        ("[::1]:40000", set(SCOPED)),
    ],
)
def test_a_sender_cannot_hand_out_addresses_of_a_narrower_scope_than_its_own(
    clock, sender: str, kept: set[str]
) -> None:
    store = make_store(clock)
    report = store.record_gossip(list(SCOPED.values()), sender=sender)
    assert {e.addr for e in store} == {SCOPED[name] for name in kept}
    assert report.counts.get(Reason.SCOPE, 0) == len(SCOPED) - len(kept)


def spellings(v4: ipaddress.IPv4Address, other: ipaddress.IPv4Address, n: int) -> list[str]:
    """``v4`` spelt as IPv6 every standard way: NAT64 (well-known and local-use, at every prefix
    length), 6to4, Teredo (as client and as server, ``other`` the other end) and IPv4-mapped."""
    return [
        embedded.nat64(v4),
        *(
            embedded.nat64(v4, embedded.LOCAL_USE_NAT64, length, n)
            for length in embedded.LOCAL_USE_LENGTHS
        ),
        embedded.six_to_four(v4, n),
        embedded.teredo(other, v4, port=n % 65535 + 1),
        embedded.teredo(v4, other, port=n % 65535 + 1),
        embedded.mapped(v4),
    ]


public_v4 = st.ip_addresses(v=4).filter(lambda ip: ip.is_global and books.storable(ip))


@settings(max_examples=100)
@given(v4=embedded.narrow_v4, other=public_v4, n=st.integers(min_value=0, max_value=(1 << 48) - 1))
def test_a_public_sender_cannot_hand_out_a_narrow_ipv4_address_spelt_as_ipv6(
    v4: ipaddress.IPv4Address, other: ipaddress.IPv4Address, n: int
) -> None:
    """Private, shared (CGNAT), link-local and loopback addresses are refused from a public
    sender however they are spelt: behind NAT64's prefixes, in 6to4, in Teredo, IPv4-mapped."""
    store = make_store(FakeClock())
    addrs = spellings(v4, other, n)
    report = store.record_gossip(addrs, sender=PUBLIC_SENDER)
    assert report.counts == {Reason.SCOPE: len(addrs)}
    assert len(store) == 0


@settings(max_examples=100)
@given(v4=public_v4, other=public_v4, n=st.integers(min_value=0, max_value=(1 << 48) - 1))
def test_a_public_ipv4_address_spelt_as_ipv6_is_public_but_behind_the_local_use_prefix(
    v4: ipaddress.IPv4Address, other: ipaddress.IPv4Address, n: int
) -> None:
    """RFC 8215's prefix is for use within one domain: a public sender cannot vouch for it."""
    store = make_store(FakeClock())
    addrs = spellings(v4, other, n)
    local_use = [a for a in addrs if a.startswith("[64:ff9b:1:")]
    report = store.record_gossip(addrs, sender=PUBLIC_SENDER)
    assert report.counts == {Reason.SCOPE: len(local_use)}
    assert {e.addr for e in store} == {canonical_addr(a) for a in addrs if a not in local_use}


@pytest.mark.parametrize(
    ("sender", "kept"),
    [
        (embedded.six_to_four(ipaddress.IPv4Address("192.168.1.20")), {"private", "public"}),
        (embedded.nat64(ipaddress.IPv4Address("127.0.0.1")), {"loopback", "private", "public"}),
        (embedded.nat64(ipaddress.IPv4Address("45.76.12.34")), {"public"}),
    ],
)
def test_a_sender_spelt_as_an_embedded_ipv4_address_is_judged_by_that_address(
    clock, sender: str, kept: set[str]
) -> None:
    addrs = {"loopback": "127.0.0.1:7447", "private": "10.1.2.3:7447", "public": "8.8.8.8:7447"}
    store = make_store(clock)
    store.record_gossip(list(addrs.values()), sender=sender)
    assert {e.addr for e in store} == {addrs[name] for name in kept}


def test_a_sender_whose_address_cannot_be_read_is_held_to_the_public_rules(clock) -> None:
    store = make_store(clock)
    store.record_gossip([SCOPED["private"], SCOPED["public"]], sender="somewhere")
    assert [e.addr for e in store] == [SCOPED["public"]]


def test_without_a_sender_no_scope_rule_applies(clock) -> None:
    """The library caller who passes no sender vouches for the list itself."""
    store = make_store(clock)
    store.record_gossip(list(SCOPED.values()))
    assert len(store) == len(SCOPED)


def test_seeds_of_any_scope_are_recorded(clock) -> None:
    store = make_store(clock)
    store.record_bootstrap(["127.0.0.1:7447", "10.0.0.1:7447"])
    assert store.count(Source.BOOTSTRAP) == 2


# -- the per-message cap ------------------------------------------------------------------------


def test_only_the_first_thousand_addresses_of_one_message_are_read(clock) -> None:
    store = make_store(clock, max_entries=10_000, gossip_per_sender_per_hour=10_000)
    addrs = public_addrs(MAX_ADDRS_PER_MESSAGE + 500)
    report = store.record_gossip(addrs, sender=PUBLIC_SENDER)
    assert MAX_ADDRS_PER_MESSAGE == 1000
    assert report.added == MAX_ADDRS_PER_MESSAGE
    assert report.counts == {Reason.MESSAGE_CAP: 500}
    assert {e.addr for e in store} == set(addrs[:MAX_ADDRS_PER_MESSAGE])


def test_the_message_cap_holds_for_any_iterable_and_reads_nothing_beyond_it(clock) -> None:
    store = make_store(clock, max_entries=10_000, gossip_per_sender_per_hour=10_000)
    parsed: list[str] = []

    def addrs() -> Iterator[str]:
        for addr in public_addrs(1500):
            parsed.append(addr)
            yield addr

    report = store.record_gossip(addrs(), sender=PUBLIC_SENDER)
    assert report.added == 1000
    assert report.counts == {Reason.MESSAGE_CAP: 500}
    assert len(store) == 1000


def test_the_message_cap_is_configurable_per_store(clock) -> None:
    store = make_store(clock, max_addrs_per_message=3)
    report = store.record_gossip(public_addrs(5))
    assert (report.added, report.counts) == (3, {Reason.MESSAGE_CAP: 2})


# -- the per-sender hourly cap ------------------------------------------------------------------


def test_one_sender_adds_at_most_its_hourly_share_of_new_entries(clock) -> None:
    store = make_store(clock, max_entries=1024, gossip_per_sender_per_hour=100)
    report = store.record_gossip(public_addrs(300), sender=PUBLIC_SENDER)
    assert report.added == 100
    assert report.counts == {Reason.SENDER_CAP: 200}
    # Another port of the same IP is the same sender.
    more = store.record_gossip(public_addrs(50, first_octet=20), sender="45.76.12.34:9999")
    assert more.added == 0


def test_the_hourly_share_comes_back_evenly_over_the_hour(clock) -> None:
    store = make_store(clock, max_entries=1024, gossip_per_sender_per_hour=100)
    fresh = iter(public_addrs(1000))
    assert (
        store.record_gossip(list(itertools.islice(fresh, 150)), sender=PUBLIC_SENDER).added == 100
    )
    clock.advance(1800)
    assert store.record_gossip(list(itertools.islice(fresh, 150)), sender=PUBLIC_SENDER).added == 50
    clock.advance(7200)  # a long pause refills the share, never beyond it
    assert (
        store.record_gossip(list(itertools.islice(fresh, 150)), sender=PUBLIC_SENDER).added == 100
    )


def test_refreshing_known_gossip_costs_a_sender_nothing(clock) -> None:
    store = make_store(clock, max_entries=1024, gossip_per_sender_per_hour=10)
    addrs = public_addrs(10)
    store.record_gossip(addrs, sender=PUBLIC_SENDER)
    clock.advance(60)
    report = store.record_gossip(addrs, sender=PUBLIC_SENDER)
    assert (report.added, report.refreshed, report.counts) == (0, 10, {})


def test_each_sender_has_a_share_of_its_own(clock) -> None:
    store = make_store(clock, max_entries=1024, gossip_per_sender_per_hour=10)
    a = store.record_gossip(public_addrs(20, first_octet=11), sender=PUBLIC_SENDER)
    b = store.record_gossip(public_addrs(20, first_octet=21), sender="91.121.5.6:7447")
    assert (a.added, b.added) == (10, 10)


def test_no_one_sender_can_fill_the_store_whatever_the_configured_share(clock) -> None:
    store = make_store(clock, max_entries=80, gossip_per_sender_per_hour=1_000_000)
    assert store.gossip_per_sender_per_hour == 10  # an eighth of the cap
    for _ in range(5):
        store.record_gossip(public_addrs(1000), sender=PUBLIC_SENDER)
    assert len(store) == 10


def test_seeds_and_connections_are_never_held_to_a_senders_share(clock) -> None:
    store = make_store(clock, max_entries=1024, gossip_per_sender_per_hour=1)
    assert store.record_bootstrap(public_addrs(5)).added == 5
    for addr in public_addrs(5, first_octet=30):
        store.record_connected(addr)
    assert len(store) == 10


def test_the_store_remembers_a_bounded_number_of_sender_groups_and_the_crowd_shares_one(
    clock,
) -> None:
    """10,000 senders, each in a /16 of its own, one new address each: the first 4,096 groups
    get a share each, and the rest share one bucket of the same size."""
    store = make_store(clock, max_entries=100_000, gossip_per_sender_per_hour=1)
    for n in range(10_000):
        store.record_gossip(
            [f"11.{n // 256}.{n % 256}.1:7447"], sender=f"{12 + n // 256}.{n % 256}.0.1:1"
        )
    assert len(store._senders) <= 4096 + 1
    assert len(store) == 4096 + 1


# -- what a connection may claim about itself -----------------------------------------------------


@pytest.mark.parametrize(
    "node_id",
    ["x" * 129, "", "node a", "node/../a", "node\x00a", "ñode", 42, ["node-b"]],
)
def test_a_malformed_node_id_from_the_wire_is_not_stored(clock, node_id: object) -> None:
    store = make_store(clock)
    key = store.record_connected("203.0.113.10:7447", node_id=node_id)
    entry = store.get(key)
    assert entry is not None
    assert entry.node_id is None


def test_the_longest_well_formed_node_id_is_stored(clock) -> None:
    store = make_store(clock)
    key = store.record_connected("203.0.113.10:7447", node_id="n" * 128)
    entry = store.get(key)
    assert entry is not None
    assert entry.node_id == "n" * 128


def test_capabilities_from_the_wire_are_bounded_short_and_well_formed(clock) -> None:
    store = make_store(clock)
    offered = ["relay", "x" * 65, "bad cap", 7, "relay", *[f"cap{n}" for n in range(100)]]
    key = store.record_connected("203.0.113.10:7447", capabilities=offered)
    entry = store.get(key)
    assert entry is not None
    assert entry.capabilities[0] == "relay"
    assert len(entry.capabilities) == MAX_CAPABILITIES
    assert all(len(c) <= 64 and " " not in c for c in entry.capabilities)
    assert len(set(entry.capabilities)) == MAX_CAPABILITIES


@pytest.mark.parametrize("capabilities", ["relay", {"relay": True}, None, 5])
def test_capabilities_that_are_not_a_list_are_ignored(clock, capabilities: object) -> None:
    store = make_store(clock)
    key = store.record_connected("203.0.113.10:7447", capabilities=capabilities)
    entry = store.get(key)
    assert entry is not None
    assert entry.capabilities == ()


# -- a flood from a handful of senders ----------------------------------------------------------


@pytest.mark.parametrize("with_sender", [True, False], ids=["plugin-path", "no-sender"])
def test_a_flood_of_attacker_addresses_never_displaces_a_proven_peer(
    clock, with_sender: bool
) -> None:
    """100,000 attacker addresses from five senders, into a store full of peers."""
    cap = 1024
    store = make_store(clock, max_entries=cap)
    proven = public_addrs(300, first_octet=60)
    for addr in proven:
        store.record_connected(addr)
        clock.advance(1)
    for addr in proven[::2]:
        store.record_disconnected(addr)
    store.record_bootstrap(public_addrs(20, first_octet=90))
    store.record_gossip(public_addrs(cap, first_octet=100))
    assert len(store) == cap
    plan_before = store.reconnect_plan()

    senders = [f"185.{n}.0.1:7447" for n in range(5)]
    attack = public_addrs(100_000, first_octet=150)
    for n in range(len(attack) // 1000):
        batch = attack[n * 1000 : (n + 1) * 1000]
        store.record_gossip(batch, sender=senders[n % 5] if with_sender else None)
        assert len(store) <= cap
        clock.advance(60)

    assert {e.addr for e in store if e.source is Source.CONNECTED} == set(proven)
    assert store.count(Source.BOOTSTRAP) == 20
    attackers = set(attack)
    assert not attackers & set(store.reconnect_plan())
    assert store.reconnect_plan() == plan_before
    if with_sender:
        # 100 minutes at 128 an hour, from five senders: a bounded trickle, never the flood.
        assert len(attackers & {e.addr for e in store}) <= 5 * 128 * 3
