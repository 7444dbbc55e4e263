"""The quick paths of a start and of a peer list: each gives what the general path gives.

A file this version wrote is read in one pass (``codec._decode_as_written``), any other table by
table; an IPv4 address a peer list holds in canonical form is taken as it is, any other parsed.
Each quick path is held here to the path it stands in for, on files edited at random and on
peer lists of every kind of address.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.books import open_book
from tests.support.clocks import FakeClock
from tests.support.peerfile_fuzzing import (
    HEADED_SEEDS,
    LINES,
    MUTATORS,
    REALM,
    SEEDS,
    assemble,
    check_as_written,
    mutate,
)
from thenodes_peerstore import codec
from thenodes_peerstore import store as store_module
from thenodes_peerstore.errors import AddressError
from thenodes_peerstore.model import (
    DIALABLE_V4_PATTERN,
    GLOBAL_V4_PATTERN,
    Address,
    Scope,
)
from thenodes_peerstore.store import PeerStore

START = 1_763_700_000
fuzz = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=len(MUTATORS) - 1),
        st.integers(min_value=0, max_value=2**32 - 1),
    ),
    min_size=1,
    max_size=3,
)
edited_files = st.one_of(
    st.builds(mutate, st.integers(0, len(SEEDS) - 1), steps, st.booleans()),
    st.builds(
        mutate, st.integers(0, len(HEADED_SEEDS) - 1), steps, st.booleans(), st.just(HEADED_SEEDS)
    ),
    st.builds(assemble, st.lists(st.integers(0, len(LINES) - 1), max_size=30), st.booleans()),
)


# -- the file ----------------------------------------------------------------------------------


@settings(fuzz, max_examples=400)
@given(data=edited_files)
def test_a_file_edited_at_random_reads_the_same_as_written_and_table_by_table(data: bytes) -> None:
    """Whatever the edit (resealed under a new digest or not), a start reads what the reader of
    any file reads: the same entries, problems, times and refusals."""
    check_as_written(data)


@pytest.mark.parametrize("data", [*SEEDS, *HEADED_SEEDS])
def test_every_file_this_version_writes_is_read_in_one_pass(data: bytes) -> None:
    assert check_as_written(data)


def test_an_edit_under_a_new_digest_is_left_to_the_reader_of_any_file() -> None:
    """Two spellings of one entry: the edited one parses to the same entry, but it is not laid
    out as written, so the quick reader leaves the whole file to the reader of any file."""
    data = HEADED_SEEDS[2].replace(b'source = "Gossip"', b"source = 'Gossip'", 1)
    edited = mutate(0, [], sealed=True, seeds=(data,))
    assert not check_as_written(edited)
    assert codec.decode(edited, realm=REALM).intact


def test_a_node_reads_the_file_it_wrote_without_the_table_by_table_reader(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_book(tmp_path / "peers.toml", clock) as book:
        book.store.record_bootstrap(["203.0.113.1:7447"])
        for n in range(20):
            book.store.record_connected(f"45.{n}.0.1:7447", node_id=f"node-{n}")
        book.store.record_gossip([f"91.{n}.2.3:7447" for n in range(30)])
        book.store.record_gossip(["[2001:db8::5]:7447"])
    with mock.patch.object(codec, "_decode_any", side_effect=AssertionError("table by table")):
        reopened = open_book(tmp_path / "peers.toml", clock)
    assert len(reopened.store) == 52
    reopened.close()


# -- addresses ---------------------------------------------------------------------------------


def test_the_ipv4_patterns_take_exactly_what_the_parser_returns_as_it_is() -> None:
    """Every first two octets, so every network a rule names: a match is an address the parser
    keeps as written (and, for the global pattern, of global scope), and nothing else."""
    dialable = re.compile(DIALABLE_V4_PATTERN).fullmatch
    global_ = re.compile(GLOBAL_V4_PATTERN).fullmatch
    for a in range(256):
        for b in range(256):
            text = f"{a}.{b}.7.9:7447"
            try:
                parsed = Address.parse(text)
            except AddressError:
                kept = is_global = False
            else:
                kept = parsed.text == text
                is_global = kept and parsed.scope is Scope.GLOBAL
            assert (dialable(text) is not None) == kept, text
            assert (global_(text) is not None) == is_global, text


ipv4_literals = st.builds(
    lambda octets, port, zeros: ".".join(map(str, octets)) + ":" + "0" * zeros + str(port),
    octets=st.lists(st.integers(0, 300), min_size=4, max_size=4),
    port=st.integers(0, 70000),
    zeros=st.integers(0, 1),
)
"""IPv4 ``ip:port`` texts, valid or not, some with a port of a leading zero."""


@given(text=ipv4_literals)
def test_an_ipv4_literal_matches_a_pattern_only_as_the_parser_writes_it(text: str) -> None:
    try:
        kept = Address.parse(text).text == text
    except AddressError:
        kept = False
    assert (re.fullmatch(DIALABLE_V4_PATTERN, text) is not None) == kept


@given(text=ipv4_literals)
def test_a_sender_is_held_to_the_group_and_scope_its_address_parses_to(text: str) -> None:
    """A global IPv4 sender's group is read off its text; every other sender is parsed."""
    try:
        parsed = Address.parse(text)
    except AddressError:
        expected: tuple[str | None, Scope | None] = ("?", Scope.GLOBAL)
    else:
        expected = (parsed.group, parsed.scope)
    assert store_module._sender(text) == expected


# -- peer lists --------------------------------------------------------------------------------

PUBLIC = [f"{a}.{b}.3.4:7447" for a in (45, 91) for b in (1, 2, 3)]
PRIVATE = ["10.0.0.1:7447", "192.168.1.9:7447", "127.0.0.1:7447", "169.254.1.1:7447"]
OTHER = ["[2001:db8::1]:7447", "0.0.0.0:7447", "224.0.0.1:7447", "junk", "", 7447, None]
OWN = "45.1.3.4:7447"
SENDERS = [None, "45.76.12.34:7447", "192.168.1.20:7447", "127.0.0.1:7447", "not an address"]


def respelled(addr: object) -> object:
    """The same address spelled so that only the parser can read it: IPv4-mapped IPv6."""
    if isinstance(addr, str) and addr[:1].isdigit() and addr.count(".") == 3:
        host, _, port = addr.rpartition(":")
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return addr
        return f"[::ffff:{host}]:{port}"
    return addr


def store_of(max_entries: int, per_hour: int) -> PeerStore:
    return PeerStore(
        clock=lambda: START,
        max_entries=max_entries,
        gossip_per_sender_per_hour=per_hour,
        own_addrs=[OWN],
    )


lists = st.lists(st.sampled_from([*PUBLIC, *PRIVATE, *OTHER, OWN]), max_size=12)


@settings(max_examples=200)
@given(
    batches=st.lists(st.tuples(lists, st.sampled_from(SENDERS)), max_size=6),
    max_entries=st.integers(1, 12),
    per_hour=st.integers(1, 12),
    seed_first=st.booleans(),
)
def test_a_peer_list_taken_as_it_is_does_what_parsing_each_address_does(
    batches: list[tuple[list[object], str | None]],
    max_entries: int,
    per_hour: int,
    seed_first: bool,
) -> None:
    """Canonical IPv4 addresses skip the parser; spelled otherwise, the same addresses go through
    it. Entries, tiers, shares, counts and reports come out the same."""
    quick, parsed = store_of(max_entries, per_hour), store_of(max_entries, per_hour)
    if seed_first:
        for store in (quick, parsed):
            store.record_bootstrap(PUBLIC[:2])
    for addrs, sender in batches:
        one = quick.record_gossip(addrs, sender=sender)
        other = parsed.record_gossip([respelled(a) for a in addrs], sender=sender)
        assert (one.added, one.refreshed, one.counts) == (
            other.added,
            other.refreshed,
            other.counts,
        )
    assert list(quick) == list(parsed)
    assert quick._senders == parsed._senders
    assert quick.rejections == parsed.rejections


@settings(max_examples=200)
@given(
    addrs=lists,
    sender=st.sampled_from(SENDERS),
    max_entries=st.integers(1, 12),
    per_hour=st.integers(1, 12),
)
def test_a_peer_list_does_what_its_addresses_do_one_list_each(
    addrs: list[object], sender: str | None, max_entries: int, per_hour: int
) -> None:
    """A list's share and room are counted once for the list: as if each address came alone."""
    whole, alone = store_of(max_entries, per_hour), store_of(max_entries, per_hour)
    report = whole.record_gossip(addrs, sender=sender)
    reports = [alone.record_gossip([addr], sender=sender) for addr in addrs]
    assert report.added == sum(r.added for r in reports)
    assert report.refreshed == sum(r.refreshed for r in reports)
    assert list(whole) == list(alone)
    assert whole._senders == alone._senders


def test_with_the_table_of_sender_groups_full_a_list_does_what_its_addresses_do_alone() -> None:
    """Every bucket in use and none refilled: a new group's addresses take their tokens one by
    one (from the crowd's shared bucket), in one list as alone."""
    stores = [store_of(10_000, 3), store_of(10_000, 3)]
    for store in stores:
        for n in range(4096):
            store.record_gossip(
                [f"91.{n % 200}.{n // 200}.9:7447"], sender=f"{n // 256 + 1}.{n % 256}.0.1:7447"
            )
    addrs = [f"45.{n}.3.1:7447" for n in range(6)]
    whole, alone = stores
    report = whole.record_gossip(addrs, sender="203.0.113.9:7447")
    reports = [alone.record_gossip([addr], sender="203.0.113.9:7447") for addr in addrs]
    assert report.added == sum(r.added for r in reports) == 3
    assert list(whole) == list(alone)
    assert whole._senders == alone._senders
