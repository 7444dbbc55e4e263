"""A start's plan read from the file's head is the plan a whole read of the file gives.

A node saves the proven peers of longest standing first, with a head above them (in comments)
that says how many they are and bounds the others. A start reads its plan from there and the
rest of the file at the store's first use. Whatever the file, intact or edited, however the
node is configured when it starts again, and whenever it starts, the plan is the one reading
the whole file gives; a file whose head cannot tell, or that is not as written, is read whole
first.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import tomllib
import zlib
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.clocks import FakeClock
from tests.support.keys import encrypted, write_key
from tests.support.peerfile_fuzzing import MUTATORS, mutate
from thenodes_peerstore import PersistenceConfig, PersistentPeerStore, codec
from thenodes_peerstore import store as store_module
from thenodes_peerstore.errors import PeerStoreError
from thenodes_peerstore.model import PeerEntry, PlanHead, Source
from thenodes_peerstore.store import PeerStore, plan_from_head

REALM = "example"
VERSION = "1.0"
SAVED_AT = 1_763_700_000
TTL = 7200
OWN_ID = "node-self"
# Few /16 groups, so that a plan of one peer per group must look past the first peers.
POOL = [f"{a}.{b}.{c}.9:7447" for a in (45, 91) for b in (1, 2, 3, 4) for c in range(8)]

times = st.integers(min_value=SAVED_AT - TTL // 2, max_value=SAVED_AT + 60) | st.integers(
    min_value=SAVED_AT - 3 * TTL, max_value=SAVED_AT + 60
)
entries = st.builds(
    PeerEntry,
    addr=st.sampled_from(POOL),
    source=st.sampled_from([*Source, *[Source.CONNECTED] * 6]),
    first_seen=times,
    last_seen=times,
    last_connected=st.none() | times,
    last_attempt=st.none() | times,
    failures=st.sampled_from([0, 0, 0, 1, 4, 9, 10, 12]),
    node_id=st.sampled_from([None, "node-b", OWN_ID]),
    cert_fingerprint=st.sampled_from([None, None, "a" * 64]),
    # A dial met another certificate (or none) now and then: Connected, and not proven.
    cert_changed_to=st.sampled_from([None, None, None, None, None, "b" * 64, "none"]),
)
configs = st.builds(
    PersistenceConfig,
    enabled=st.just(True),
    max_entries=st.integers(min_value=1, max_value=60),
    ttl_secs=st.sampled_from([600, TTL, 3 * TTL]),
    reconnect_limit=st.integers(min_value=0, max_value=6),
)
saving_configs = st.builds(
    PersistenceConfig,
    enabled=st.just(True),
    max_entries=st.integers(min_value=20, max_value=80),
    ttl_secs=st.sampled_from([600, TTL, 3 * TTL]),
    reconnect_limit=st.integers(min_value=0, max_value=1),  # heads of at most 4 entries
)
damage = st.none() | st.tuples(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(MUTATORS) - 1),
            st.integers(min_value=0, max_value=2**32 - 1),
        ),
        min_size=1,
        max_size=2,
    ),
    st.booleans(),
)
fuzz = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def written(peers: list[PeerEntry], config: PersistenceConfig, head_size: int, tmp: Path) -> bytes:
    """The file a node with ``config`` writes of ``peers`` at ``SAVED_AT``."""
    path = tmp / "writer" / f"{REALM}.toml"
    book = PersistentPeerStore.open(
        path=path, realm=REALM, clock=lambda: SAVED_AT, config=config, version=VERSION
    )
    book.store.load(peers)
    with mock.patch.object(store_module, "HEAD_ENTRIES", head_size):
        assert book.save()
    book.close()
    return path.read_bytes()


@settings(fuzz, max_examples=60)
@given(
    peers=st.lists(entries, min_size=5, max_size=60),
    saving=saving_configs,
    head_size=st.integers(min_value=0, max_value=4),
)
def test_a_save_writes_the_bytes_the_codec_writes_of_its_entries_and_head(
    peers: list[PeerEntry], saving: PersistenceConfig, head_size: int
) -> None:
    """A node's save hands the codec its entries with the head's first (by_tier's ``first``),
    which the codec then writes as they come: the same bytes as when it puts them first."""
    with tempfile.TemporaryDirectory() as tmp:
        data = written(peers, saving, head_size, Path(tmp))
        book = PersistentPeerStore.open(
            path=Path(tmp) / "writer" / f"{REALM}.toml",
            realm=REALM,
            clock=lambda: SAVED_AT,
            config=saving,
            version=VERSION,
        )
        store = book.store
        with mock.patch.object(store_module, "HEAD_ENTRIES", head_size):
            head = store.plan_head()
        anyhow = codec.encode(
            REALM, SAVED_AT, store.by_tier(), version=VERSION, offline=store.offline, head=head
        )
        first = store.by_tier(first=head.entries)
        book.close()
    assert first[: len(head.entries)] == list(head.entries)
    assert sorted(map(id, first)) == sorted(map(id, store.by_tier()))
    assert data == anyhow


def started(
    data: bytes, tmp: Path, name: str, *, plan_first: bool, now: int, **settings: Any
) -> tuple[object, ...]:
    """What a start on a file of ``data`` plans, or the error it stops with; for a plan-first
    start, also the plan its store makes once it has read the whole file."""
    path = tmp / name / f"{REALM}.toml"
    path.parent.mkdir()
    path.write_bytes(data)
    try:
        book = PersistentPeerStore.open(
            path=path,
            realm=REALM,
            clock=lambda: now,
            version=VERSION,
            plan_first=plan_first,
            **settings,
        )
    except PeerStoreError as exc:
        return (type(exc), str(exc).replace(str(path.parent), "<dir>"))
    try:
        plan = book.start_plan()
        return (plan, book.store.reconnect_plan())
    finally:
        book.close()


@settings(fuzz, max_examples=150)
@given(
    peers=st.lists(entries, min_size=5, max_size=60),
    saving=saving_configs,
    head_size=st.integers(min_value=0, max_value=4),
    starting=configs,
    later=st.integers(min_value=-2 * TTL, max_value=4 * TTL),
    own=st.lists(st.sampled_from(POOL), max_size=2),
    own_id=st.sampled_from([None, OWN_ID]),
    edits=damage,
)
def test_a_start_plans_from_the_head_what_a_whole_read_plans(
    peers: list[PeerEntry],
    saving: PersistenceConfig,
    head_size: int,
    starting: PersistenceConfig,
    later: int,
    own: list[str],
    own_id: str | None,
    edits: tuple[list[tuple[int, int]], bool] | None,
) -> None:
    """Any file a node wrote, edited at random or not (under a new digest or not); a start with
    any settings, own addresses and id, early (the clock stepped back) or late (past the TTL)."""
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        data = written(peers, saving, head_size, tmp)
        if edits is not None:
            data = mutate(0, edits[0], edits[1], seeds=(data,))
        settings = {"config": starting, "own_addrs": own, "own_node_id": own_id}
        now = SAVED_AT + later
        whole = started(data, tmp, "whole", plan_first=False, now=now, **settings)
        first = started(data, tmp, "first", plan_first=True, now=now, **settings)
    if isinstance(whole[0], type):
        assert first == whole
    else:
        assert first[0] == whole[0]  # the plan read first is the whole read's
        assert first[1] == whole[0]  # and the store, once it has read the rest, agrees


# -- what the property rests on -------------------------------------------------------------


def node_file(tmp: Path, proven: int, gossip: int = 0) -> Path:
    """A node's file of ``proven`` peers proven one second apart, in as many /16 groups."""
    path = tmp / f"{REALM}.toml"
    config = PersistenceConfig(enabled=True, max_entries=proven + gossip + 1)
    now = [float(SAVED_AT)]
    book = PersistentPeerStore.open(
        path=path, realm=REALM, clock=lambda: now[0], config=config, version=VERSION
    )
    for n in range(proven):
        book.store.record_connected(f"45.{n % 250}.{n // 250}.1:7447", node_id=f"node-{n}")
        now[0] += 1
    book.store.record_gossip([f"91.{n % 250}.{n // 250}.1:7447" for n in range(gossip)])
    book.close()
    return path


def plan_first(path: Path, now: int = SAVED_AT + 3600) -> PersistentPeerStore:
    return PersistentPeerStore.open(
        path=path, realm=REALM, clock=lambda: now, version=VERSION, plan_first=True
    )


def test_a_start_reads_only_the_head_of_the_file_a_node_wrote(tmp_path: Path) -> None:
    """The plan comes before any entry beyond the head is read; the rest at the first use."""
    path = node_file(tmp_path, proven=200, gossip=300)
    with mock.patch.object(codec, "decode", side_effect=AssertionError("read whole")):
        book = plan_first(path)
        plan = book.start_plan()
    assert plan == [f"45.{n}.0.1:7447" for n in range(5)]  # the longest proven, 5 groups
    assert len(book.store) == 500  # the first use reads the rest
    assert book.store.reconnect_plan() == plan
    book.close()


def test_a_file_without_a_head_is_read_whole_for_its_plan(tmp_path: Path) -> None:
    """An older file, or one the command wrote: no head, the same plan; the node's next save
    writes one."""
    path = node_file(tmp_path, proven=8)
    entries = codec.decode(path.read_bytes(), realm=REALM, version=VERSION).entries
    path.write_bytes(codec.encode(REALM, SAVED_AT + 10, entries, version=VERSION))
    assert codec.read_head(path.read_bytes(), realm=REALM, version=VERSION) is None
    book = plan_first(path)
    assert book.start_plan() == [f"45.{n}.0.1:7447" for n in range(5)]
    assert book.save()
    book.close()
    assert codec.read_head(path.read_bytes(), realm=REALM, version=VERSION) is not None


def test_every_toml_reader_reads_a_file_with_a_head_as_its_entries_alone(tmp_path: Path) -> None:
    """The head is comments: an older version, tomllib and a person see the entries only."""
    path = node_file(tmp_path, proven=40, gossip=10)
    data = path.read_bytes()
    assert data.count(b"\n# ") > 5
    document = tomllib.loads(data.decode())
    assert set(document) == {"schema", "realm", "saved_at", "version", "peers", "integrity"}
    assert document["schema"] == codec.SCHEMA == 2
    assert len(document["peers"]) == 50
    assert codec._decode_any(data, realm=REALM).intact  # the reader of any file, as before


def test_the_head_names_the_longest_proven_peers_first_and_bounds_the_others(
    tmp_path: Path,
) -> None:
    path = node_file(tmp_path, proven=40, gossip=10)
    opening = codec.read_head(path.read_bytes(), realm=REALM, version=VERSION)
    assert opening is not None
    head = opening.head
    assert [e.addr for e in head.entries] == [f"45.{n}.0.1:7447" for n in range(32)]
    assert head.proven == 40
    assert head.rest is not None
    assert head.rest.first_seen == SAVED_AT + 32
    decoded = codec.decode(path.read_bytes(), realm=REALM, version=VERSION)
    assert decoded.entries[:32] == head.entries
    assert head.describes(decoded.entries)


def reseal(data: bytes) -> bytes:
    mark = data.rfind(b"\n[integrity]\n") + 1
    body = data[:mark]
    digest = hashlib.sha256(body).hexdigest()
    return body + data[mark:].replace(data[mark:].split(b'"')[1], digest.encode())


def forge_crc(data: bytes) -> bytes:
    """The file with its head's CRC made to match what it now holds, as only a forger would."""
    start = data.index(b"# crc32 = ")
    end = data.index(b"\n", start) + 1
    body_end = data.rfind(b"\n[integrity]\n") + 1
    crc = zlib.crc32(data[end:body_end], zlib.crc32(data[:start]))
    return reseal(data[:start] + f"# crc32 = {crc}\n".encode() + data[end:])


def test_an_edit_under_a_new_digest_leaves_a_head_no_start_trusts(tmp_path: Path) -> None:
    """A later peer made the oldest and the digest made anew: the CRC tells, the file is read
    whole, and the plan starts with that peer."""
    path = node_file(tmp_path, proven=40)
    data = path.read_bytes()
    edited = reseal(data.replace(b"first_seen = 1763700039\n", b"first_seen = 1763600000\n"))
    assert codec.decode(edited, realm=REALM).intact
    assert codec.read_head(edited, realm=REALM, version=VERSION) is None
    path.write_bytes(edited)
    book = plan_first(path)
    assert book.start_plan()[0] == "45.39.0.1:7447"
    book.close()


def test_a_forged_head_is_found_out_at_the_first_use_and_written_anew(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A head made to say what the entries do not, CRC and digest forged: the start trusts it
    (nothing short of reading the whole file could tell), the first use tells, says so, and the
    next save writes a true head."""
    path = node_file(tmp_path, proven=40)
    data = path.read_bytes()
    forged = forge_crc(data.replace(b"# proven = 40\n", b"# proven = 39\n"))
    assert codec.read_head(forged, realm=REALM, version=VERSION) is not None
    path.write_bytes(forged)
    book = plan_first(path)
    book.start_plan()
    with caplog.at_level(logging.WARNING, logger="thenodes_peerstore.persistent"):
        assert book.dirty
    assert "head does not describe its entries" in caplog.text
    book.close()
    opening = codec.read_head(path.read_bytes(), realm=REALM, version=VERSION)
    assert opening is not None
    assert opening.head.proven == 40


def test_a_head_tells_the_plan_only_when_the_other_proven_peers_cannot_change_it() -> None:
    """Cases ``plan_from_head`` refuses: more proven peers than the cap, another proven peer
    that the clock would clamp, one that could be an anchor, one that could join the plan."""

    def peer(n: int, first_seen: int, last_seen: int = SAVED_AT) -> PeerEntry:
        return PeerEntry(
            addr=f"45.{n}.0.1:7447",
            source=Source.CONNECTED,
            first_seen=first_seen,
            last_seen=last_seen,
        )

    def plan(head: PlanHead, **settings: Any) -> list[str] | None:
        return plan_from_head(PeerStore(clock=lambda: SAVED_AT, ttl_secs=TTL, **settings), head)

    first = [peer(n, SAVED_AT - 100 + n) for n in range(5)]
    later = peer(9, SAVED_AT - 50)
    assert plan(PlanHead.of(first, [later])) == [e.addr for e in first]
    assert plan(PlanHead.of(first, [later]), max_entries=5) is None
    assert plan(PlanHead.of(first, [peer(9, SAVED_AT, SAVED_AT + 9)])) is None
    assert plan(PlanHead.of(first[:4], [later])) is None  # it would be the fifth
    assert plan(PlanHead.of(first, [later]), reconnect_limit=6) is None
    assert plan(PlanHead.of(first[:4], []), reconnect_limit=5) == [e.addr for e in first[:4]]


def test_an_encrypted_file_gives_its_plan_first_too(tmp_path: Path) -> None:
    """Opened once: the plan from its head, the rest of it at the first use."""
    config = encrypted(write_key(tmp_path / "realm.key"), max_entries=100)
    path = tmp_path / f"{REALM}.toml"
    with PersistentPeerStore.open(
        path=path, realm=REALM, clock=lambda: SAVED_AT, config=config, version=VERSION
    ) as book:
        for n in range(40):
            book.store.record_connected(f"45.{n}.0.1:7447", node_id=f"node-{n}")
    assert path.read_bytes().startswith(b"# thenodes-peerstore encrypted peer file")
    with mock.patch.object(codec, "decode", side_effect=AssertionError("read whole")):
        book = PersistentPeerStore.open(
            path=path,
            realm=REALM,
            clock=lambda: SAVED_AT + 60,
            config=config,
            version=VERSION,
            plan_first=True,
        )
        plan = book.start_plan()
    assert len(plan) == 5
    assert len(book.store) == 40
    assert book.store.reconnect_plan() == plan
    book.close()


def test_a_plan_first_start_never_writes_a_file_the_whole_read_would_not(tmp_path: Path) -> None:
    """Encryption on and its key unusable: the plain file gives its plan first, and no save
    writes it, asked before the first use or after."""
    path = node_file(tmp_path, proven=8)
    before = path.read_bytes()
    config = encrypted(write_key(tmp_path / "realm.key", mode=0o644))
    book = PersistentPeerStore.open(
        path=path,
        realm=REALM,
        clock=lambda: SAVED_AT + 60,
        config=config,
        version=VERSION,
        plan_first=True,
    )
    assert len(book.start_plan()) == 5
    assert not book.save()
    assert not book.writable
    book.close()
    assert path.read_bytes() == before


def test_a_clock_that_fails_at_the_first_use_leaves_the_rest_of_the_file_for_the_next(
    tmp_path: Path,
) -> None:
    path = node_file(tmp_path, proven=8, gossip=4)
    before = path.read_bytes()
    clock = FakeClock(SAVED_AT + 60)
    book = PersistentPeerStore.open(
        path=path, realm=REALM, clock=clock, version=VERSION, plan_first=True
    )
    assert len(book.start_plan()) == 5
    clock.t = float("nan")
    assert not book.tick()  # logged once, nothing read, nothing written
    assert path.read_bytes() == before
    clock.t = SAVED_AT + 61
    assert len(book.store) == 12
    book.close()
