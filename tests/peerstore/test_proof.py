"""What reaches a restart plan, how long peers are kept, and a gossip share no crowd can reset.

The promises: only an address the node dialled itself, with a completed handshake, is dialled
first after a restart; a node stopped for longer than the TTL comes back with its peers; and
one sender's hourly share of new entries is not given back by thousands of other senders.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.books import open_book, read_file
from thenodes_peerstore import PersistentPeerStore
from thenodes_peerstore.codec import SCHEMA, decode, encode
from thenodes_peerstore.errors import ClockError, RealmMismatchError
from thenodes_peerstore.model import PeerEntry, Source
from thenodes_peerstore.store import TERRIBLE_FAILURES, PeerStore

START = 1_763_700_000
DAY = 86_400
FIXTURES = Path(__file__).parent / "fixtures"


def file_entries(path: Path) -> dict[str, PeerEntry]:
    return {e.addr: e for e in read_file(path)}


# -- outbound proof ---------------------------------------------------------------------------


def test_inbound_attackers_never_own_the_restart_plan(tmp_path: Path, clock) -> None:
    """Five attackers connect in, each advertising a listen address on its own IP, shortly
    before the restart: the plan is the one peer the node dialled itself."""
    path = tmp_path / "peers" / "example.toml"
    book = open_book(path, clock)
    book.store.record_connected("203.0.113.10:7447", node_id="good", direction="outbound")
    book.store.record_disconnected("203.0.113.10:7447")
    clock.advance(60)
    for i in range(5):
        observed, listen = f"{30 + i}.1.2.3:51000", f"{30 + i}.1.2.3:7447"
        book.store.record_connected(
            observed, listen_addr=listen, direction="inbound", node_id=f"evil{i}"
        )
        book.store.record_disconnected(observed, listen_addr=listen, direction="inbound")
    book.close()

    again = open_book(path, clock)

    assert again.store.reconnect_plan() == ["203.0.113.10:7447"]
    assert {e.source for e in again.store if e.addr.startswith(("30.", "34."))} == {Source.CLAIMED}
    again.close()


def test_a_claim_is_proven_only_by_a_handshake_on_a_connection_the_node_dialled(clock) -> None:
    store = PeerStore(clock=clock)
    store.record_gossip(["45.76.12.34:7447"])
    key = store.record_connected(
        "45.76.12.34:50000", listen_addr="45.76.12.34:7447", direction="inbound"
    )
    store.record_disconnected("45.76.12.34:50000", listen_addr=key, direction="inbound")
    assert store.get(key).source is Source.CLAIMED  # type: ignore[union-attr]
    assert store.reconnect_plan() == []

    store.record_connected(key, direction="outbound")
    store.record_disconnected(key)

    assert store.get(key).source is Source.CONNECTED  # type: ignore[union-attr]
    assert store.reconnect_plan() == [key]


@pytest.mark.parametrize("trusted", [Source.BOOTSTRAP, Source.CONNECTED])
def test_an_inbound_connection_never_lowers_a_trusted_entry(clock, trusted: Source) -> None:
    store = PeerStore(clock=clock)
    addr = "45.76.12.34:7447"
    if trusted is Source.BOOTSTRAP:
        store.record_bootstrap([addr])
    else:
        store.record_connected(addr)
        store.record_disconnected(addr)
    store.record_connected("45.76.12.34:50000", listen_addr=addr, direction="inbound")
    assert store.get(addr).source is trusted  # type: ignore[union-attr]


def test_claims_evict_only_gossip_and_older_claims(clock) -> None:
    store = PeerStore(clock=clock, max_entries=3)
    store.record_bootstrap(["203.0.113.1:7447"])
    store.record_gossip(["192.0.2.1:7447"])
    store.record_connected("45.76.12.34:50000", listen_addr="45.76.12.34:7447", direction="inbound")
    clock.advance(1)
    store.record_connected("91.121.5.6:50000", listen_addr="91.121.5.6:7447", direction="inbound")
    assert {e.addr for e in store} == {"203.0.113.1:7447", "45.76.12.34:7447", "91.121.5.6:7447"}
    clock.advance(1)
    store.record_connected("5.9.20.30:50000", listen_addr="5.9.20.30:7447", direction="inbound")
    assert {e.addr for e in store} == {"203.0.113.1:7447", "91.121.5.6:7447", "5.9.20.30:7447"}


ADDRS = [f"{a}.{b}.0.1:7447" for a in (45, 91) for b in (1, 2, 3)]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("inbound"), st.sampled_from(ADDRS)),
        st.tuples(st.just("gossip"), st.sampled_from(ADDRS)),
        st.tuples(st.just("seed"), st.sampled_from(ADDRS)),
        st.tuples(st.just("outbound"), st.sampled_from(ADDRS)),
        st.tuples(st.just("failed"), st.sampled_from(ADDRS)),
        st.tuples(st.just("restart"), st.just("")),
        st.tuples(st.just("crash"), st.just("")),
        st.tuples(st.just("wait"), st.sampled_from(["60", "3600", str(8 * DAY)])),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(steps=steps)
def test_no_sequence_puts_an_address_in_the_plan_without_an_outbound_handshake_to_it(
    steps: list[tuple[str, str]],
) -> None:
    """Inbound connections, gossip, seeds, failed dials, restarts, crashes and waits, in any
    order: every address of every plan is one the node completed an outbound handshake with."""
    directory = Path(tempfile.mkdtemp(prefix="peerstore-proof-"))
    now = [float(START)]
    path = directory / "peers" / "example.toml"
    book = open_book(path, lambda: now[0], max_entries=4, reconnect_limit=3)
    dialled: set[str] = set()
    try:
        for kind, addr in steps:
            if kind == "inbound":
                observed = addr.replace(":7447", ":50000")
                book.store.record_connected(observed, listen_addr=addr, direction="inbound")
                book.store.record_disconnected(observed, listen_addr=addr, direction="inbound")
            elif kind == "gossip":
                book.store.record_gossip([addr], sender="203.0.113.9:7447")
            elif kind == "seed":
                book.store.record_bootstrap([addr])
            elif kind == "outbound":
                book.store.record_connected(addr)
                book.store.record_disconnected(addr)
                dialled.add(addr)
            elif kind == "failed":
                book.store.record_dial_failed(addr)
            elif kind == "wait":
                now[0] += int(addr)
                book.tick()
            else:
                if kind == "restart":
                    book.close()
                else:
                    book.file.close()
                book = open_book(path, lambda: now[0], max_entries=4, reconnect_limit=3)
            assert set(book.store.reconnect_plan()) <= dialled
    finally:
        book.close()
        shutil.rmtree(directory, ignore_errors=True)


# -- schema 2 and the schema-1 files of earlier versions ---------------------------------------


def test_a_schema_1_attacker_dialled_failed_then_connected_in_is_not_proven(
    tmp_path: Path, clock
) -> None:
    """Schema 1's own code: the node dialled the attacker's address and failed, then the
    attacker connected in; and a peer the node dialled successfully."""
    entries = [
        PeerEntry.new("45.76.12.34:7447", Source.CONNECTED, START).replace(
            last_connected=START + 20, last_attempt=START + 10, failures=0
        ),
        PeerEntry.new("91.121.5.6:7447", Source.CONNECTED, START).replace(
            last_connected=START + 5, last_attempt=START + 5
        ),
    ]
    data = encode("example", START + 30, entries)
    path = tmp_path / "peers" / "example.toml"
    path.parent.mkdir(parents=True)
    path.write_bytes(data.replace(b"schema = 2\n", b"schema = 1\n"))
    _fix_digest(path)
    clock.t = START + 60

    book = open_book(path, clock)
    plan = book.store.reconnect_plan()
    book.close()

    assert plan == ["91.121.5.6:7447"]
    assert book.store.get("45.76.12.34:7447").source is Source.CLAIMED  # type: ignore[union-attr]


def _fix_digest(path: Path) -> None:
    import hashlib

    body, _, _ = path.read_bytes().partition(b"[integrity]\n")
    count = body.count(b"[[peers]]")
    digest = hashlib.sha256(body).hexdigest()
    path.write_bytes(body + f'[integrity]\nentries = {count}\nsha256 = "{digest}"\n'.encode())


def test_a_schema_1_file_loads_with_every_entry_and_is_saved_as_schema_2(
    tmp_path: Path, clock
) -> None:
    """The fixture was written by the version before schema 2: three Connected entries (one
    dialled and then connected in, one connected and then failing, one only ever connected
    in), a seed, gossip. Schema 1 shows none of the three's last word to be an outbound
    success, so none stays proven."""
    path = tmp_path / "peers" / "example.toml"
    path.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "schema1-example.toml", path)
    old = decode(path.read_bytes(), realm="example")
    assert old.intact
    assert old.schema == 1
    clock.t = old.saved_at + 60

    book = open_book(path, clock)
    sources = {e.addr: e.source for e in book.store}
    book.close()

    assert sources == {
        "192.0.2.10:7447": Source.CLAIMED,
        "203.0.113.1:7447": Source.CLAIMED,
        "198.51.100.20:7447": Source.CLAIMED,
        "[2001:db8::1]:7447": Source.BOOTSTRAP,
        "[2001:db8:1::5]:7447": Source.GOSSIP,
        "192.0.2.11:7447": Source.GOSSIP,
    }
    saved = decode(path.read_bytes(), realm="example")
    assert saved.intact
    assert saved.schema == SCHEMA == 2
    assert {e.addr: e.source for e in saved.entries} == sources
    assert b"\nschema = 2\n" in b"\n" + path.read_bytes()


def test_a_file_records_the_realm_version_and_another_version_is_refused(
    tmp_path: Path, clock
) -> None:
    path = tmp_path / "peers" / "example.toml"
    book = PersistentPeerStore.open(path=path, realm="example", clock=clock, version="1.0")
    book.store.record_connected("203.0.113.10:7447")
    book.close()
    data = path.read_bytes()
    assert b'version = "1.0"\n' in data

    with pytest.raises(RealmMismatchError) as caught:
        PersistentPeerStore.open(path=path, realm="example", clock=clock, version="2.0")

    assert "'2.0'" in str(caught.value)
    assert "'1.0'" in str(caught.value)
    assert path.read_bytes() == data


# -- ageing by the node's running time ---------------------------------------------------------


def test_a_node_off_for_a_month_comes_back_with_every_peer_it_had(tmp_path: Path, clock) -> None:
    path = tmp_path / "peers" / "example.toml"
    book = open_book(path, clock)
    book.store.record_gossip(["192.0.2.1:7447", "192.0.2.2:7447"])
    book.store.record_bootstrap(["203.0.113.1:7447"])
    book.store.record_connected("45.76.12.34:7447")
    book.store.record_disconnected("45.76.12.34:7447")
    book.close()
    before = file_entries(path)

    clock.advance(30 * DAY)
    again = open_book(path, clock)

    assert {e.addr for e in again.store} == set(before)
    again.store.record_gossip(["192.0.2.3:7447"])
    again.close()
    assert set(file_entries(path)) == {*before, "192.0.2.3:7447"}
    assert decode(path.read_bytes(), realm="example").offline == ((START, START + 30 * DAY),)


def test_running_time_ages_entries_across_restarts_and_stopped_time_does_not(clock) -> None:
    """TTL 100 s of running time: 60 s running, 10,000 s stopped, 41 s running."""
    store = PeerStore(clock=clock, ttl_secs=100, reconnect_limit=0)
    store.record_gossip(["192.0.2.1:7447"])
    seen = list(store)
    clock.advance(60)
    stopped_at = int(clock.t)
    clock.advance(10_000)
    store.load(seen, offline=[(stopped_at, int(clock.t))])
    clock.advance(40)
    assert store.expire() == 0
    clock.advance(1)
    assert store.expire() == 1


def test_an_entry_seen_just_before_a_stop_is_kept_until_it_is_ttl_of_running_time_old(
    clock,
) -> None:
    """TTL 100 s: seen, then at once 500 s stopped, then exactly 100 s running. Every moment of
    the stop is the same running time, so the entry is exactly TTL old and kept; one more
    second of running and it is due."""
    store = PeerStore(clock=clock, ttl_secs=100, reconnect_limit=0)
    store.record_gossip(["192.0.2.1:7447"])
    seen = list(store)
    stopped_at = int(clock.t)
    clock.advance(500)
    store.load(seen, offline=[(stopped_at, int(clock.t))])
    clock.advance(100)
    assert store.expire() == 0
    clock.advance(1)
    assert store.expire() == 1


def test_a_node_that_ran_long_without_any_peer_keeps_its_most_recent_proven_peers(
    clock,
) -> None:
    store = PeerStore(clock=clock, ttl_secs=DAY, reconnect_limit=2)
    uplink = ("192.0.2.1:7447", "198.51.100.1:7447")
    for addr in uplink:  # the node's own connectivity is proven: failures count
        store.record_connected(addr)
    clock.advance(1)
    for i, addr in enumerate(["45.76.12.34:7447", "91.121.5.6:7447", "5.9.20.30:7447"]):
        store.record_connected(addr)
        store.record_disconnected(addr)
        clock.advance(1 + i)
    store.record_bootstrap(["203.0.113.1:7447"])
    for _ in range(TERRIBLE_FAILURES):
        store.record_dial_failed("5.9.20.30:7447")  # failing: not an anchor
    for addr in uplink:
        store.record_disconnected(addr)
    clock.advance(10 * DAY)

    store.expire()

    assert {e.addr for e in store} == {"45.76.12.34:7447", "91.121.5.6:7447"}
    assert set(store.reconnect_plan()) == {"45.76.12.34:7447", "91.121.5.6:7447"}


def test_a_save_after_long_running_time_never_replaces_proven_peers_with_nothing(
    tmp_path: Path, clock
) -> None:
    path = tmp_path / "peers" / "example.toml"
    book = open_book(path, clock, ttl_secs=DAY)
    for n in range(5):
        book.store.record_connected(f"{45 + n}.76.12.34:7447")
        book.store.record_disconnected(f"{45 + n}.76.12.34:7447")
    clock.advance(8 * DAY)
    book.store.record_gossip(["192.0.2.1:7447"])
    assert book.tick()
    assert len([e for e in file_entries(path).values() if e.proven]) == 5
    book.close()


# -- a gossip share no crowd can reset --------------------------------------------------------


def test_a_crowd_of_other_senders_never_gives_a_sender_its_share_back(clock) -> None:
    store = PeerStore(clock=clock, max_entries=1_000_000)
    first = store.record_gossip(
        [f"11.0.{i // 256}.{i % 256}:7447" for i in range(200)], sender="40.1.1.1:7447"
    )
    assert first.added == 128
    for n in range(4097):
        store.record_gossip(
            [f"12.{n // 256}.{n % 256}.1:7447"], sender=f"{50 + n // 256}.{n % 256}.0.1:7447"
        )

    again = store.record_gossip(
        [f"13.0.{i // 256}.{i % 256}:7447" for i in range(200)], sender="40.1.1.1:7447"
    )

    assert again.added == 0
    assert len(store._senders) <= 4097


def test_senders_of_one_network_group_share_one_share(clock) -> None:
    store = PeerStore(clock=clock, max_entries=100_000)
    added = sum(
        store.record_gossip(
            [f"11.{n}.{i}.1:7447" for i in range(100)], sender=f"40.1.{n}.{n}:7447"
        ).added
        for n in range(10)
    )
    assert added == 128
    clock.advance(3600)
    assert store.record_gossip(["12.0.0.1:7447"], sender="40.1.200.1:7447").added == 1


# -- the clock --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 2.0**63])
def test_a_clock_that_is_not_a_time_stops_the_start_naming_the_clock(
    tmp_path: Path, bad: float
) -> None:
    with pytest.raises(ClockError) as caught:
        PersistentPeerStore.open(path=tmp_path / "peers.toml", realm="example", clock=lambda: bad)
    assert "host clock" in str(caught.value)
    assert repr(bad) in str(caught.value)
    assert not (tmp_path / "peers.toml").exists()


def test_a_clock_that_fails_while_running_is_logged_once_and_nothing_bad_is_saved(
    tmp_path: Path, clock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "peers" / "example.toml"
    book = open_book(path, clock, save_interval_secs=60)
    book.store.record_gossip(["192.0.2.1:7447"])
    good = clock.t
    clock.t = float("nan")
    for _ in range(100):
        assert not book.tick()
    errors = [r for r in caplog.records if "host clock" in r.getMessage()]
    assert len(errors) == 1
    assert errors[0].exc_info is None

    book.close()
    assert not path.exists()  # nothing written with a time that is not a time
    clock.t = good + 120
    again = open_book(path, clock)
    again.store.record_gossip(["192.0.2.2:7447"])
    again.close()
    assert decode(path.read_bytes(), realm="example").intact


def test_saves_go_on_at_their_interval_after_the_clock_steps_back_a_day(
    tmp_path: Path, clock
) -> None:
    path = tmp_path / "peers" / "example.toml"
    book = open_book(path, clock, save_interval_secs=60)
    book.store.record_gossip(["192.0.2.1:7447"])
    clock.advance(60)
    assert book.tick()
    clock.advance(-DAY)
    saves = []
    for second in range(1, 182):
        clock.advance(1)
        book.store.record_gossip([f"192.0.2.{second % 200 + 2}:7447"])
        if book.tick():
            saves.append(second)
    assert saves == [61, 121, 181]  # every 60 s, counted from the first tick after the step
    book.close()


def test_stored_times_never_go_beyond_what_the_file_can_hold() -> None:
    entry = PeerEntry.new("192.0.2.1:7447", Source.GOSSIP, 2**63 - 1)
    assert decode(encode("example", 2**63 - 1, [entry]), realm="example").intact
