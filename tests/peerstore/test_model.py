"""Addresses, sources and entries: what the store accepts as a peer and how it spells it."""

from __future__ import annotations

import ipaddress

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import embedded
from tests.support.books import storable
from thenodes_peerstore.errors import AddressError, Reason
from thenodes_peerstore.model import (
    MAX_ADDR_CHARS,
    MAX_CAPABILITIES,
    Address,
    PeerEntry,
    Scope,
    Source,
    canonical_addr,
    network_group,
    valid_capabilities,
    valid_node_id,
)

NOW = 1_763_700_000

# -- canonical form ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("203.0.113.10:7447", "203.0.113.10:7447"),
        ("[2001:db8::1]:7447", "[2001:db8::1]:7447"),
        ("[2001:DB8::1]:7447", "[2001:db8::1]:7447"),
        ("[2001:0db8:0000:0000:0000:0000:0000:0001]:7447", "[2001:db8::1]:7447"),
        ("[::ffff:203.0.113.10]:7447", "203.0.113.10:7447"),
        ("[::FFFF:cb00:710a]:7447", "203.0.113.10:7447"),
        ("203.0.113.10:007447", "203.0.113.10:7447"),
        ("[2001:db8::1]:00001", "[2001:db8::1]:1"),
        ("127.0.0.1:65535", "127.0.0.1:65535"),
        ("[::1]:7447", "[::1]:7447"),
    ],
)
def test_equivalent_spellings_of_an_address_share_one_canonical_key(
    text: str, canonical: str
) -> None:
    assert canonical_addr(text) == canonical
    assert canonical_addr(canonical) == canonical


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("example.com:7447", "hostnames are not stored"),
        ("localhost:7447", "hostnames are not stored"),
        (" 203.0.113.10:7447", "not an IP literal"),
        ("[fe80::1%eth0]:7447", "zone ids"),
        ("fe80::1%eth0:7447", '"[ip]:port"'),
        ("203.0.113.10:0", "outside 1..65535"),
        ("[2001:db8::1]:0", "outside 1..65535"),
        ("203.0.113.10:65536", "outside 1..65535"),
        ("203.0.113.10:99999999", "outside 1..65535"),
        ("203.0.113.10", "missing port"),
        ("203.0.113.10:", "is not a number"),
        ("203.0.113.10:-1", "is not a number"),
        ("203.0.113.10:+7447", "is not a number"),
        ("203.0.113.10:\uff17\uff14\uff14\uff17", "is not a number"),
        ("2001:db8::1:7447", '"[ip]:port"'),
        ("[2001:db8::1]", '"[ip]:port"'),
        ("[2001:db8::1]7447", '"[ip]:port"'),
        ("[203.0.113.10]:7447", "must not be bracketed"),
        ("0.0.0.0:7447", "unspecified"),
        ("[::]:7447", "unspecified"),
        ("[::ffff:0.0.0.0]:7447", "unspecified"),
        ("224.0.0.1:7447", "multicast"),
        ("0.1.2.3:7447", "reserved"),
        ("240.0.0.1:7447", "reserved"),
        ("255.255.255.255:7447", "reserved"),
        ("198.18.0.1:7447", "reserved"),
        ("[100::1]:7447", "reserved"),
        ("[4000::1]:7447", "reserved"),
        ("[::1.2.3.4]:7447", "reserved"),
        ("[fec0::1]:7447", "reserved"),
        ("[ff02::1]:7447", "multicast"),
        ("", "1 to 64 characters"),
        ("1" * (MAX_ADDR_CHARS + 1), "1 to 64 characters"),
        ("[2001:db8::1]:" + "0" * 60 + "7447", "1 to 64 characters"),
    ],
)
def test_unstorable_addresses_are_rejected_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(AddressError) as caught:
        canonical_addr(text)
    assert reason in caught.value.reason
    assert caught.value.addr == text
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("not-an-address", Reason.MALFORMED),
        ("[2001:db8::1]", Reason.MALFORMED),
        ("seed.example.org:7447", Reason.HOSTNAME),
        ("203.0.113.10:0", Reason.BAD_PORT),
        ("[::]:7447", Reason.UNSPECIFIED),
        ("[ff02::1]:7447", Reason.MULTICAST),
        ("240.0.0.1:7447", Reason.RESERVED),
    ],
)
def test_each_rejected_address_says_which_rule_it_broke(text: str, kind: Reason) -> None:
    with pytest.raises(AddressError) as caught:
        canonical_addr(text)
    assert caught.value.kind is kind


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("127.0.0.1:7447", Scope.LOOPBACK),
        ("127.8.9.10:7447", Scope.LOOPBACK),
        ("[::1]:7447", Scope.LOOPBACK),
        ("169.254.1.1:7447", Scope.LINK),
        ("[fe80::1]:7447", Scope.LINK),
        ("10.1.2.3:7447", Scope.PRIVATE),
        ("172.16.0.1:7447", Scope.PRIVATE),
        ("192.168.1.1:7447", Scope.PRIVATE),
        ("100.64.0.1:7447", Scope.PRIVATE),
        ("[fd00::1]:7447", Scope.PRIVATE),
        ("[::ffff:10.0.0.1]:7447", Scope.PRIVATE),
        ("8.8.8.8:7447", Scope.GLOBAL),
        ("172.32.0.1:7447", Scope.GLOBAL),
        ("[2a01:4f8::1]:7447", Scope.GLOBAL),
        ("[64:ff9b::808:808]:7447", Scope.GLOBAL),
        # Documentation ranges are routed nowhere, but examples and tests use them as public.
        ("203.0.113.10:7447", Scope.GLOBAL),
        ("[2001:db8::1]:7447", Scope.GLOBAL),
    ],
)
def test_every_address_has_the_scope_a_sender_is_judged_by(text: str, scope: Scope) -> None:
    assert Address.parse(text).scope is scope


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        # NAT64's well-known prefix, RFC 6052: the IPv4 address is the last 32 bits.
        ("[64:ff9b::7f00:1]:7447", Scope.LOOPBACK),
        ("[64:ff9b::a9fe:101]:7447", Scope.LINK),
        ("[64:ff9b::c0a8:107]:7447", Scope.PRIVATE),
        ("[64:ff9b::808:808]:7447", Scope.GLOBAL),
        # The local-use translation prefix, RFC 8215: not routed beyond its domain.
        ("[64:ff9b:1::808:808]:7447", Scope.PRIVATE),
        ("[64:ff9b:1::7f00:1]:7447", Scope.LOOPBACK),
        ("[64:ff9b:1:7f00:0:100::]:7447", Scope.LOOPBACK),  # 127.0.0.1 behind a /48
        # 6to4, RFC 3056: 2002:V4ADDR::/48.
        ("[2002:7f00:1::1]:7447", Scope.LOOPBACK),
        ("[2002:a9fe:909::1]:7447", Scope.LINK),
        ("[2002:a01:203:5::1]:7447", Scope.PRIVATE),
        ("[2002:808:808::1]:7447", Scope.GLOBAL),
        # Teredo, RFC 4380: the server's IPv4, then the client's, each bit inverted.
        ("[2001:0:808:808:0:e2e8:80ff:fffe]:7447", Scope.LOOPBACK),
        ("[2001:0:808:808:0:e2e8:f5fe:fdfc]:7447", Scope.PRIVATE),
        ("[2001:0:a00:1:0:e2e8:f7f7:f7f7]:7447", Scope.PRIVATE),
        ("[2001:0:808:808:0:e2e8:f7f7:f7f7]:7447", Scope.GLOBAL),
        # IPv4-mapped, RFC 4291: stored as the IPv4 address itself.
        ("[::ffff:127.0.0.1]:7447", Scope.LOOPBACK),
    ],
)
def test_an_ipv6_address_that_embeds_an_ipv4_one_reaches_no_wider_than_it(
    text: str, scope: Scope
) -> None:
    assert Address.parse(text).scope is scope


@pytest.mark.parametrize("text", ["[::127.0.0.1]:7447", "[::10.0.0.1]:7447", "[::8.8.8.8]:7447"])
def test_an_ipv4_compatible_address_is_refused_as_reserved(text: str) -> None:
    """``::a.b.c.d`` (RFC 4291, deprecated) names no address anyone can dial."""
    with pytest.raises(AddressError) as caught:
        canonical_addr(text)
    assert caught.value.kind is Reason.RESERVED


storable_v4 = embedded.v4_addresses.filter(storable)


@settings(max_examples=200)
@given(
    v4=storable_v4,
    public=st.ip_addresses(v=4).filter(lambda ip: ip.is_global and storable(ip)),
    spelling=st.sampled_from(["nat64", "6to4", "teredo client", "teredo server", "mapped"]),
    subnet=st.integers(min_value=0, max_value=0xFFFF),
)
def test_an_embedded_ipv4_address_has_the_scope_of_the_ipv4_address_itself(
    v4: ipaddress.IPv4Address, public: ipaddress.IPv4Address, spelling: str, subnet: int
) -> None:
    spelt = {
        "nat64": lambda: embedded.nat64(v4),
        "6to4": lambda: embedded.six_to_four(v4, subnet),
        "teredo client": lambda: embedded.teredo(public, v4, port=subnet or 1),
        "teredo server": lambda: embedded.teredo(v4, public, port=subnet or 1),
        "mapped": lambda: embedded.mapped(v4),
    }[spelling]()
    assert Address.parse(spelt).scope is Address.parse(f"{v4}:7447").scope


@settings(max_examples=200)
@given(
    v4=storable_v4,
    length=st.sampled_from(embedded.LOCAL_USE_LENGTHS),
    rest=st.integers(min_value=0, max_value=(1 << 48) - 1),
)
def test_a_local_use_translation_address_is_private_at_widest_and_never_wider_than_its_ipv4(
    v4: ipaddress.IPv4Address, length: int, rest: int
) -> None:
    """Whatever prefix length the domain carved from 64:ff9b:1::/48 (the address does not say)."""
    spelt = embedded.nat64(v4, embedded.LOCAL_USE_NAT64, length, rest)
    assert Address.parse(spelt).scope <= min(Scope.PRIVATE, Address.parse(f"{v4}:7447").scope)


def test_scopes_are_ordered_narrowest_first() -> None:
    assert Scope.LOOPBACK < Scope.LINK < Scope.PRIVATE < Scope.GLOBAL


@pytest.mark.parametrize("value", [7447, None, b"203.0.113.10:7447", ["203.0.113.10:7447"], 1.5])
def test_non_strings_are_rejected_as_addresses(value: object) -> None:
    with pytest.raises(AddressError, match="expected a string"):
        canonical_addr(value)


def test_an_address_error_is_a_value_error() -> None:
    """Callers that catch ValueError for bad input also catch a bad address."""
    with pytest.raises(ValueError, match="missing port"):
        canonical_addr("203.0.113.10")


# What no peer can listen on, written out here as the rule the store must follow.
_RESERVED_V4 = [ipaddress.ip_network(n) for n in ("0.0.0.0/8", "240.0.0.0/4", "198.18.0.0/15")]
_USABLE_V6 = [
    ipaddress.ip_network(n)
    for n in ("2000::/3", "fc00::/7", "fe80::/10", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48")
]


def _dialable(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    effective = ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped is not None else ip
    if effective.is_unspecified or effective.is_multicast:
        return False
    if isinstance(effective, ipaddress.IPv4Address):
        return not any(effective in net for net in _RESERVED_V4)
    return any(effective in net for net in _USABLE_V6)


ips = st.one_of(
    st.ip_addresses(v=4),
    st.ip_addresses(network="2000::/3"),
    st.ip_addresses(network="fc00::/7"),
    st.ip_addresses(v=6),
).filter(_dialable)
ports = st.integers(min_value=1, max_value=65535)


def _spell(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int, upper: bool, zeros: int
) -> str:
    """One of the many ways a person or a peer may write an address."""
    port_text = "0" * zeros + str(port)
    if ip.version == 4:
        return f"{ip}:{port_text}"
    host = ip.exploded if zeros % 2 else ip.compressed
    return f"[{host.upper() if upper else host}]:{port_text}"


@settings(max_examples=100)
@given(ip=ips, port=ports, upper=st.booleans(), zeros=st.integers(min_value=0, max_value=3))
def test_any_spelling_of_a_dialable_address_parses_to_its_canonical_key(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int, upper: bool, zeros: int
) -> None:
    """Parsing keeps the IP and port, and the canonical key is a fixed point."""
    key = canonical_addr(_spell(ip, port, upper, zeros))
    parsed = Address.parse(key)
    expected_ip = ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped is not None else ip
    assert parsed.ip == expected_ip
    assert parsed.port == port
    assert canonical_addr(key) == key
    assert key == key.lower()
    if parsed.ip.version == 6:
        assert key.startswith("[")
        assert key.endswith(f"]:{port}")
    else:
        assert key == f"{parsed.ip}:{port}"


@settings(max_examples=100)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=20), st.integers(), st.none()))
def test_parsing_untrusted_input_fails_only_with_an_address_error(value: object) -> None:
    """Whatever a peer list holds, parsing either gives a canonical key or an AddressError."""
    try:
        key = canonical_addr(value)
    except AddressError as exc:
        reason = exc.reason
    else:
        assert canonical_addr(key) == key
        return
    assert reason


# -- network groups -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addr", "group"),
    [
        ("10.1.2.3:7447", "10.1.0.0/16"),
        ("10.1.250.9:1", "10.1.0.0/16"),
        ("10.2.2.3:7447", "10.2.0.0/16"),
        ("[2001:db8:1::1]:7447", "2001:db8::/32"),
        ("[2001:db8:ffff::2]:7447", "2001:db8::/32"),
        ("[2001:db9::1]:7447", "2001:db9::/32"),
    ],
)
def test_network_group_is_the_ipv4_slash16_or_the_ipv6_slash32(addr: str, group: str) -> None:
    assert network_group(addr) == group


# -- sources ------------------------------------------------------------------------------------


def test_trust_ranks_connected_over_bootstrap_over_gossip() -> None:
    assert Source.GOSSIP.rank < Source.BOOTSTRAP.rank < Source.CONNECTED.rank


def test_sources_are_spelled_as_in_the_file() -> None:
    assert [s.label for s in Source] == ["Gossip", "Claimed", "Bootstrap", "Connected"]


# -- entries ------------------------------------------------------------------------------------


def test_a_new_entry_is_first_and_last_seen_now_with_no_history() -> None:
    entry = PeerEntry.new("203.0.113.10:7447", Source.GOSSIP, NOW)
    assert entry.first_seen == entry.last_seen == NOW
    assert entry.last_connected is None
    assert entry.last_attempt is None
    assert entry.failures == 0
    assert entry.node_id is None
    assert entry.capabilities == ()


@pytest.mark.parametrize(
    "changes",
    [
        {"addr": "[2001:DB8::1]:7447"},
        {"addr": "example.com:7447"},
        {"first_seen": -1},
        {"last_seen": -1},
        {"last_connected": -1},
        {"last_attempt": -1},
        {"failures": -1},
        {"node_id": ""},
        {"node_id": "node a"},
        {"node_id": "n" * 129},
        {"capabilities": ("relay", "relay")},
        {"capabilities": ("has space",)},
        {"capabilities": tuple(f"c{i}" for i in range(MAX_CAPABILITIES + 1))},
    ],
)
def test_an_entry_refuses_values_it_could_not_store(changes: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "addr": "203.0.113.10:7447",
        "source": Source.CONNECTED,
        "first_seen": NOW,
        "last_seen": NOW,
    }
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        PeerEntry(**(fields | changes))  # type: ignore[arg-type]


def test_clamping_pulls_every_future_time_back_to_now() -> None:
    future = PeerEntry(
        addr="203.0.113.10:7447",
        source=Source.CONNECTED,
        first_seen=NOW + 50,
        last_seen=NOW + 100,
        last_connected=NOW + 90,
        last_attempt=NOW + 3600,
    )
    clamped = future.clamped(NOW)
    assert (clamped.first_seen, clamped.last_seen) == (NOW, NOW)
    assert (clamped.last_connected, clamped.last_attempt) == (NOW, NOW)


def test_clamping_leaves_past_times_alone() -> None:
    past = PeerEntry(
        addr="203.0.113.10:7447",
        source=Source.GOSSIP,
        first_seen=NOW - 20,
        last_seen=NOW - 10,
        last_attempt=NOW - 5,
    )
    assert past.clamped(NOW) == past


def test_clamping_keeps_first_seen_no_later_than_last_seen() -> None:
    odd = PeerEntry(
        addr="203.0.113.10:7447", source=Source.GOSSIP, first_seen=NOW - 5, last_seen=NOW - 10
    )
    assert odd.clamped(NOW).first_seen == NOW - 10


@pytest.mark.parametrize(
    "changes",
    [
        {"last_seen": NOW + 5},
        {"source": Source.CONNECTED, "last_seen": NOW + 5},
        {"failures": 4, "last_attempt": NOW},
        {"node_id": "node-b", "capabilities": ("relay",)},
        {"last_connected": None},
    ],
)
def test_replace_gives_what_attrs_evolve_gives(changes: dict[str, object]) -> None:
    entry = PeerEntry(
        addr="[2001:db8::1]:7447",
        source=Source.GOSSIP,
        first_seen=NOW - 5,
        last_seen=NOW,
        last_connected=NOW - 1,
        node_id="node-a",
    )
    replaced = entry.replace(**changes)
    assert replaced == attrs.evolve(entry, **changes)
    assert hash(replaced) == hash(attrs.evolve(entry, **changes))
    assert entry.last_seen == NOW  # the original is untouched


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"last_seen": -1}, "last_seen must not be negative"),
        ({"addr": "[2001:DB8::1]:7447"}, "not in canonical form"),
        ({"node_id": "bad id"}, "node_id"),
        ({"capabilities": ("a", "a")}, "capabilities"),
    ],
)
def test_replace_validates_the_fields_it_changes(changes: dict[str, object], message: str) -> None:
    entry = PeerEntry.new("203.0.113.10:7447", Source.GOSSIP, NOW)
    with pytest.raises(ValueError, match=message):
        entry.replace(**changes)


@pytest.mark.parametrize("field", ["first_seen", "last_seen", "last_connected", "failures"])
@pytest.mark.parametrize("value", [True, 1.5, 7.0, "12"])
def test_a_time_or_count_that_is_not_an_int_is_refused_where_the_entry_is_made(
    field: str, value: object
) -> None:
    """The file holds an integer as its digits: ``True`` or ``7.0`` would be written as a
    value no reader takes back, and the entry lost at the next start."""
    with pytest.raises(TypeError, match=f"{field} must be an integer, got {value!r}"):
        PeerEntry(
            **{  # type: ignore[arg-type]
                "addr": "203.0.113.10:7447",
                "source": Source.GOSSIP,
                "first_seen": NOW,
                "last_seen": NOW,
                field: value,
            }
        )
    entry = PeerEntry.new("203.0.113.10:7447", Source.GOSSIP, NOW)
    with pytest.raises(TypeError, match=f"{field} must be an integer"):
        entry.replace(**{field: value})


def test_replace_refuses_a_field_entries_do_not_have() -> None:
    entry = PeerEntry.new("203.0.113.10:7447", Source.GOSSIP, NOW)
    with pytest.raises(TypeError, match="no field 'last_sen'"):
        entry.replace(last_sen=NOW)


def test_entries_are_immutable() -> None:
    entry = PeerEntry.new("203.0.113.10:7447", Source.GOSSIP, NOW)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        entry.failures = 3  # type: ignore[misc]


# -- node ids and capabilities from the wire -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("node-a", "node-a"),
        ("Node_1.x", "Node_1.x"),
        ("n" * 128, "n" * 128),
        ("n" * 129, None),
        ("", None),
        ("node a", None),
        ("node\n", None),
        (42, None),
        (None, None),
    ],
)
def test_only_well_formed_node_ids_are_kept(value: object, kept: str | None) -> None:
    assert valid_node_id(value) == kept


def test_capabilities_keep_the_well_formed_ones_once_in_order() -> None:
    assert valid_capabilities(["relay", "bad one", 7, "relay", "dht/v2", "x" * 65]) == (
        "relay",
        "dht/v2",
    )


@pytest.mark.parametrize("value", ["relay", None, 5, {"relay": True}])
def test_capabilities_that_are_not_a_list_are_ignored(value: object) -> None:
    assert valid_capabilities(value) == ()


def test_capabilities_are_capped() -> None:
    many = [f"cap-{i}" for i in range(MAX_CAPABILITIES * 2)]
    assert valid_capabilities(many) == tuple(many[:MAX_CAPABILITIES])
