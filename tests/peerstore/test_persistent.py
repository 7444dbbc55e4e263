"""PersistentPeerStore: a realm's peers kept in its file across restarts, saved on a cadence."""

from __future__ import annotations

import errno
import ipaddress
import itertools
import logging
import os
import stat
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.books import (
    addr_key,
    addrs_in,
    file_names,
    fingerprint,
    open_book,
    read_file,
    storable,
)
from thenodes_peerstore import files
from thenodes_peerstore.codec import encode
from thenodes_peerstore.errors import RealmMismatchError, StoreLockedError
from thenodes_peerstore.files import PeerFile, resolve_store_path
from thenodes_peerstore.model import MAX_CAPABILITIES, PeerEntry, Source
from thenodes_peerstore.persistent import LoadStatus, PersistentPeerStore, load_file

START = 1_763_700_000
TTL = 604_800

NODE_ID_CHARS = string.ascii_letters + string.digits + "._-"
CAPABILITY_CHARS = NODE_ID_CHARS + ":/"


FULL_ENTRIES = [
    PeerEntry(
        addr="[2001:db8::1]:7447",
        source=Source.CONNECTED,
        first_seen=START - 5000,
        last_seen=START - 100,
        last_connected=START - 200,
        last_attempt=START - 150,
        failures=2,
        node_id="node-b",
        capabilities=("relay", "dht/v2"),
    ),
    PeerEntry(
        addr="[fe80::1]:9000",
        source=Source.BOOTSTRAP,
        first_seen=START - 50,
        last_seen=START - 50,
        last_attempt=START - 10,
    ),
    PeerEntry(addr="203.0.113.10:7447", source=Source.GOSSIP, first_seen=START, last_seen=START),
]


# -- round trip -------------------------------------------------------------------------------


def test_every_field_survives_save_close_and_reopen(path: Path, clock) -> None:
    book = open_book(path, clock)
    book.store.load(FULL_ENTRIES)
    book.close()

    again = open_book(path, clock)
    try:
        assert sorted(again.store, key=lambda e: e.addr) == sorted(
            FULL_ENTRIES, key=lambda e: e.addr
        )
    finally:
        again.close()


@st.composite
def live_entries(draw: st.DrawFn, now: int = START) -> PeerEntry:
    """Any entry a store may hold at ``now``: seen within the TTL, nothing in the future."""
    ip = draw(st.one_of(st.ip_addresses(v=4), st.ip_addresses(network="2000::/3")).filter(storable))
    last_seen = draw(st.integers(min_value=now - TTL, max_value=now))
    optional_time = st.none() | st.integers(min_value=0, max_value=now)
    return PeerEntry(
        addr=addr_key(ip, draw(st.integers(min_value=1, max_value=65535))),
        source=draw(st.sampled_from(Source)),
        first_seen=draw(st.integers(min_value=0, max_value=last_seen)),
        last_seen=last_seen,
        last_connected=draw(optional_time),
        last_attempt=draw(optional_time),
        failures=draw(st.integers(min_value=0, max_value=100)),
        node_id=draw(st.none() | st.text(NODE_ID_CHARS, min_size=1, max_size=128)),
        capabilities=tuple(
            draw(
                st.lists(
                    st.text(CAPABILITY_CHARS, min_size=1, max_size=64),
                    unique=True,
                    max_size=MAX_CAPABILITIES,
                )
            )
        ),
    )


_runs = itertools.count()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entries=st.lists(live_entries(), max_size=12, unique_by=lambda e: e.addr))
def test_any_valid_entries_survive_save_close_and_reopen(
    tmp_path: Path, clock, entries: list[PeerEntry]
) -> None:
    clock.t = START
    path = tmp_path / f"run-{next(_runs)}" / "example.toml"
    book = open_book(path, clock)
    book.store.load(entries)
    book.close()

    again = open_book(path, clock)
    try:
        assert sorted(again.store, key=lambda e: e.addr) == sorted(entries, key=lambda e: e.addr)
        assert not again.dirty
    finally:
        again.close()


# -- TTL and clamping -------------------------------------------------------------------------


def test_entries_age_by_the_nodes_running_time_not_while_it_is_stopped(path: Path, clock) -> None:
    book = open_book(path, clock, ttl_secs=1000)
    book.store.record_gossip(["10.0.0.1:7447"])
    clock.advance(500)
    book.store.record_gossip(["10.0.0.2:7447"])
    book.close()
    assert addrs_in(path) == {"10.0.0.1:7447", "10.0.0.2:7447"}

    clock.advance(30 * 86_400)  # stopped for a month
    again = open_book(path, clock, ttl_secs=1000)
    assert {e.addr for e in again.store} == {"10.0.0.1:7447", "10.0.0.2:7447"}

    clock.advance(501)  # running: 10.0.0.1 has now gone unseen for 1,001 s of running time
    again.store.record_gossip(["10.0.0.3:7447"])
    again.close()
    assert addrs_in(path) == {"10.0.0.2:7447", "10.0.0.3:7447"}


def test_a_node_stopped_longer_than_the_ttl_comes_back_with_its_proven_peers(
    path: Path, clock
) -> None:
    book = open_book(path, clock)  # ttl 7 days
    for i in range(5):
        book.store.record_connected(f"203.0.{113 + i}.10:7447", node_id=f"node-{i}")
        book.store.record_disconnected(f"203.0.{113 + i}.10:7447")
    plan = book.store.reconnect_plan()
    book.close()

    clock.advance(8 * 86_400)
    restarted = open_book(path, clock)

    assert restarted.store.reconnect_plan() == plan
    assert len(plan) == 5
    restarted.store.record_gossip(["198.51.100.1:7447"])
    restarted.close()
    assert len(addrs_in(path)) == 6


def test_entries_past_their_ttl_are_dropped_when_saved_but_a_live_peer_is_kept(
    path: Path, clock
) -> None:
    book = open_book(path, clock, ttl_secs=1000, save_interval_secs=60, reconnect_limit=0)
    book.store.record_gossip(["10.0.0.1:7447"])
    book.store.record_connected("10.0.0.3:7447")
    book.store.record_disconnected("10.0.0.3:7447")
    book.store.record_connected("[2001:db8::4]:7447")  # stays connected
    clock.advance(1001)
    book.store.record_gossip(["10.0.0.5:7447"])

    assert book.tick()

    saved = {e.addr: e for e in read_file(path)}
    assert set(saved) == {"[2001:db8::4]:7447", "10.0.0.5:7447"}
    assert saved["[2001:db8::4]:7447"].last_seen == START + 1001
    book.close()


def test_times_in_the_future_are_clamped_to_now_at_load(path: Path, clock) -> None:
    path.parent.mkdir(parents=True)
    future = PeerEntry(
        addr="[2001:db8::1]:7447",
        source=Source.CONNECTED,
        first_seen=START + 10,
        last_seen=START + 86_400,
        last_connected=START + 3600,
        last_attempt=START + 999_999,
    )
    path.write_bytes(encode("example", START + 86_400, [future]))

    book = open_book(path, clock)
    entry = book.store.get("[2001:db8::1]:7447")
    assert entry is not None
    assert entry.first_seen == entry.last_seen == START
    assert entry.last_connected == entry.last_attempt == START
    book.close()
    assert read_file(path) == (entry,)


def test_a_file_over_the_cap_is_cut_to_the_most_trusted_peers(path: Path, clock) -> None:
    path.parent.mkdir(parents=True)
    gossip = [
        PeerEntry(addr=f"10.0.0.{i}:7447", source=Source.GOSSIP, first_seen=START, last_seen=START)
        for i in range(1, 6)
    ]
    path.write_bytes(encode("example", START, [*gossip, FULL_ENTRIES[0]]))

    book = open_book(path, clock, max_entries=3)
    assert len(book.store) == 3
    assert "[2001:db8::1]:7447" in book.store
    book.close()
    assert len(read_file(path)) == 3


def test_own_addresses_in_the_file_are_not_loaded(path: Path, clock) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(encode("example", START, FULL_ENTRIES))

    book = PersistentPeerStore.open(
        path=path,
        realm="example",
        clock=clock,
        own_addrs=["[2001:DB8::1]:7447"],
        own_node_id="node-b",
    )
    assert "[2001:db8::1]:7447" not in book.store
    book.close()
    assert "[2001:db8::1]:7447" not in addrs_in(path)


# -- realms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "alpha", "beta"),
    [
        ("peers/{realm}.toml", "peers/alpha.toml", "peers/beta.toml"),
        ("peers.toml", "peers.alpha.toml", "peers.beta.toml"),
    ],
)
def test_two_realms_in_one_state_dir_keep_two_files_and_share_no_entry(
    tmp_path: Path, clock, template: str, alpha: str, beta: str
) -> None:
    state = tmp_path / "state"
    alpha_path = resolve_store_path(state, template, "alpha")
    beta_path = resolve_store_path(state, template, "beta")
    assert (alpha_path, beta_path) == (state / alpha, state / beta)

    a = open_book(alpha_path, clock, realm="alpha")
    b = open_book(beta_path, clock, realm="beta")
    a.store.record_connected("10.0.0.1:7447")
    b.store.record_gossip(["[2001:db8::2]:7447"])
    a.close()
    b.close()

    assert 'realm = "alpha"' in alpha_path.read_text()
    assert 'realm = "beta"' in beta_path.read_text()
    a = open_book(alpha_path, clock, realm="alpha")
    b = open_book(beta_path, clock, realm="beta")
    assert [e.addr for e in a.store] == ["10.0.0.1:7447"]
    assert [e.addr for e in b.store] == ["[2001:db8::2]:7447"]
    a.close()
    b.close()


def test_opening_another_realms_file_fails_and_leaves_it_byte_for_byte(path: Path, clock) -> None:
    book = open_book(path, clock, realm="beta")
    book.store.record_gossip(["10.0.0.1:7447"])
    book.close()
    before = fingerprint(path)

    with pytest.raises(RealmMismatchError) as caught:
        open_book(path, clock, realm="alpha")

    assert str(path) in str(caught.value)
    assert fingerprint(path) == before
    assert file_names(path.parent) == ["example.toml", "example.toml.lock"]
    # The failed open let go of the file: its own realm can still open it.
    open_book(path, clock, realm="beta").close()
    assert fingerprint(path) == before


# -- cadence ----------------------------------------------------------------------------------


def test_a_thousand_changes_within_one_interval_make_one_write(path: Path, clock) -> None:
    book = open_book(path, clock, save_interval_secs=60)
    addrs = [f"{ipaddress.IPv4Address(0x0A000001 + i)}:7447" for i in range(1000)]
    for i, addr in enumerate(addrs):
        book.store.record_gossip([addr])
        if i % 20 == 19:
            clock.advance(1)  # 50 changes a second, for 50 seconds
        assert not book.tick()
    assert not path.exists()

    clock.advance(10)
    assert book.tick()
    assert book.saves == 1
    assert addrs_in(path) == set(addrs)
    for _ in range(5):
        clock.advance(60)
        assert not book.tick()
    book.close()
    assert book.saves == 1


def test_tick_before_the_interval_writes_nothing(path: Path, clock) -> None:
    book = open_book(path, clock, save_interval_secs=60)
    book.store.record_gossip(["10.0.0.1:7447"])
    clock.advance(59)
    assert not book.tick()
    assert not path.exists()
    assert book.saves == 0

    clock.advance(1)
    assert book.tick()
    assert book.saves == 1
    book.close()


def test_the_interval_counts_from_the_last_save(path: Path, clock) -> None:
    book = open_book(path, clock, save_interval_secs=60)
    book.store.record_gossip(["10.0.0.1:7447"])
    clock.advance(60)
    assert book.tick()
    before = fingerprint(path)

    clock.advance(1)
    book.store.record_gossip(["10.0.0.2:7447"])
    clock.advance(58)
    assert not book.tick()
    assert fingerprint(path) == before
    clock.advance(1)
    assert book.tick()
    assert addrs_in(path) == {"10.0.0.1:7447", "10.0.0.2:7447"}
    book.close()


def test_close_writes_pending_changes(path: Path, clock) -> None:
    book = open_book(path, clock, save_interval_secs=60)
    book.store.record_connected("[2001:db8::1]:7447", node_id="node-b")
    book.close()

    assert book.saves == 1
    assert addrs_in(path) == {"[2001:db8::1]:7447"}


def test_close_can_be_called_twice(path: Path, clock) -> None:
    book = open_book(path, clock)
    book.store.record_gossip(["10.0.0.1:7447"])
    book.close()
    book.close()
    assert book.saves == 1


def test_the_store_closes_when_used_as_a_context_manager(path: Path, clock) -> None:
    with open_book(path, clock) as book:
        book.store.record_gossip(["10.0.0.1:7447"])
    assert addrs_in(path) == {"10.0.0.1:7447"}
    open_book(path, clock).close()  # the lock was released


def test_a_crash_loses_only_the_changes_after_the_last_save(path: Path, clock) -> None:
    book = open_book(path, clock, save_interval_secs=60)
    book.store.record_connected("10.0.0.1:7447")
    clock.advance(60)
    assert book.tick()
    book.store.record_connected("10.0.0.2:7447")
    clock.advance(30)
    # The process dies: no close(); the kernel releases the lock.
    book.file.close()
    del book

    again = open_book(path, clock)
    assert {e.addr for e in again.store} == {"10.0.0.1:7447"}
    again.close()


def test_an_intact_unchanged_file_is_not_rewritten_at_startup(path: Path, clock) -> None:
    book = open_book(path, clock)
    book.store.load(FULL_ENTRIES)
    book.close()
    before = fingerprint(path)
    clock.advance(3600)

    again = open_book(path, clock, save_interval_secs=60)
    assert not again.dirty
    for _ in range(3):
        clock.advance(60)
        again.tick()
    again.close()

    assert again.saves == 0
    assert fingerprint(path) == before


def test_nothing_is_written_when_nothing_changed(path: Path, clock) -> None:
    book = open_book(path, clock, save_interval_secs=60)
    for _ in range(5):
        clock.advance(60)
        assert not book.tick()
    book.close()
    assert book.saves == 0
    assert not path.exists()


def test_gossip_about_trusted_peers_alone_does_not_make_a_write(path: Path, clock) -> None:
    book = open_book(path, clock, save_interval_secs=60)
    book.store.record_connected("10.0.0.1:7447")
    book.store.record_disconnected("10.0.0.1:7447")
    clock.advance(60)
    assert book.tick()

    book.store.record_gossip(["10.0.0.1:7447"])
    clock.advance(60)
    assert not book.tick()
    book.close()
    assert book.saves == 1


# -- damaged and foreign files ------------------------------------------------------------------


def _saved_file(path: Path, clock, n: int = 3) -> bytes:
    book = open_book(path, clock)
    book.store.load(
        [
            PeerEntry(
                addr=f"[2001:db8::{i}]:7447",
                source=Source.CONNECTED,
                first_seen=START - 100,
                last_seen=START - i,
                last_connected=START - i,
                node_id=f"node-{i}",
            )
            for i in range(1, n + 1)
        ]
    )
    book.close()
    return path.read_bytes()


def test_a_torn_file_is_set_aside_its_complete_entries_kept_and_a_clean_file_written(
    path: Path, clock, caplog: pytest.LogCaptureFixture
) -> None:
    data = _saved_file(path, clock)
    torn = data[: data.rindex(b"[[peers]]")]
    path.write_bytes(torn)
    clock.advance(10)

    with caplog.at_level(logging.WARNING, logger="thenodes_peerstore"):
        book = open_book(path, clock)

    aside = path.with_name(f"example.toml.corrupt-{START + 10}")
    assert aside.read_bytes() == torn
    assert {e.addr for e in book.store} == {"[2001:db8::1]:7447", "[2001:db8::2]:7447"}
    assert any(str(path) in r.getMessage() for r in caplog.records if r.levelname == "WARNING")

    book.close()
    with PeerFile.open(path, "example") as peer_file:
        outcome = load_file(peer_file, START + 10)
    assert outcome.status is LoadStatus.INTACT
    assert {e.addr for e in outcome.entries} == {"[2001:db8::1]:7447", "[2001:db8::2]:7447"}


def test_an_edited_file_is_set_aside_and_its_valid_entries_kept(path: Path, clock) -> None:
    data = _saved_file(path, clock)
    edited = data.replace(b'node_id = "node-2"', b'node_id = "node-x"').replace(
        b'addr = "[2001:db8::3]:7447"', b'addr = "peer.example.com:7447"'
    )
    path.write_bytes(edited)

    book = open_book(path, clock)

    assert path.with_name(f"example.toml.corrupt-{START}").read_bytes() == edited
    assert {e.addr: e.node_id for e in book.store} == {
        "[2001:db8::1]:7447": "node-1",
        "[2001:db8::2]:7447": "node-x",
    }
    book.close()
    assert len(read_file(path)) == 2


@pytest.mark.parametrize(
    "junk",
    [b"\x00\x01\x02\xff\xfe garbage", b"\xff\xfe" * 300, b"[[[ not toml", b""],
    ids=["garbage", "non-utf8", "not-toml", "empty"],
)
def test_a_junk_file_is_set_aside_and_the_store_opens_empty(path: Path, clock, junk: bytes) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(junk)

    book = open_book(path, clock)

    assert len(book.store) == 0
    assert path.with_name(f"example.toml.corrupt-{START}").read_bytes() == junk
    book.close()
    assert read_file(path) == ()


def test_a_file_of_a_newer_schema_is_never_written(
    path: Path, clock, caplog: pytest.LogCaptureFixture
) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b'schema = 4\nrealm = "example"\nsaved_at = 1\n[[peers]]\nwhatever = 1\n')
    before = fingerprint(path)

    with caplog.at_level(logging.WARNING, logger="thenodes_peerstore"):
        book = open_book(path, clock, save_interval_secs=60)
    assert not book.writable
    assert any("newer" in r.getMessage() for r in caplog.records)

    book.store.record_connected("10.0.0.1:7447")
    clock.advance(120)
    assert not book.tick()
    assert not book.save()
    book.close()

    assert book.saves == 0
    assert fingerprint(path) == before
    assert file_names(path.parent) == ["example.toml", "example.toml.lock"]


# -- the file on disk ---------------------------------------------------------------------------


def test_the_store_creates_private_directories_and_a_private_file(path: Path, clock) -> None:
    book = open_book(path, clock)
    book.store.record_gossip(["10.0.0.1:7447"])
    book.close()

    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_lock_file_exists_while_open_and_stays_after_close(path: Path, clock) -> None:
    lock = path.with_name("example.toml.lock")
    book = open_book(path, clock)
    assert lock.exists()
    book.close()
    assert lock.exists()


def test_a_second_store_on_the_same_file_fails_naming_it_until_the_first_closes(
    path: Path, clock
) -> None:
    first = open_book(path, clock)
    with pytest.raises(StoreLockedError) as caught:
        open_book(path, clock)
    assert str(path) in str(caught.value)
    with pytest.raises(StoreLockedError):
        PeerFile.open(path, "example")

    first.close()
    open_book(path, clock).close()


def test_leftover_temporary_files_are_removed_at_open(path: Path, clock) -> None:
    path.parent.mkdir(parents=True)
    stale = path.with_name(".example.toml.abc123.tmp")
    stale.write_bytes(b"half a file")
    book = open_book(path, clock)
    assert not stale.exists()
    book.close()


def test_a_failed_save_keeps_the_old_file_stays_dirty_logs_once_and_retries(
    path: Path, clock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    book = open_book(path, clock, save_interval_secs=60)
    book.store.record_gossip(["10.0.0.1:7447"])
    clock.advance(60)
    assert book.tick()
    before = fingerprint(path)

    def disk_full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "replace", disk_full)
    book.store.record_gossip(["10.0.0.2:7447"])
    with caplog.at_level(logging.ERROR, logger="thenodes_peerstore"):
        for _ in range(3):
            clock.advance(60)
            assert not book.tick()

    assert fingerprint(path) == before
    assert file_names(path.parent) == ["example.toml", "example.toml.lock"]
    assert book.dirty
    assert book.saves == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert str(path) in errors[0].getMessage()

    monkeypatch.undo()
    clock.advance(30)
    assert not book.tick()  # the next interval has not come yet
    clock.advance(30)
    assert book.tick()
    assert not book.dirty
    assert addrs_in(path) == {"10.0.0.1:7447", "10.0.0.2:7447"}
    book.close()
