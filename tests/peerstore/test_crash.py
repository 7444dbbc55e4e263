"""A process killed while it saves, and a file cut at any byte: nothing acknowledged is lost.

The writer is a child process (``tests/support/crash_writer.py``) killed with SIGKILL, so no Python
cleanup runs: what it leaves is what the kernel has, as after a crash of the process. (A power
cut also loses what was never flushed; that is what the fsyncs of a save are for, and no test
here can pull the plug.)
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from tests.support.crash_writer import (
    BASE,
    REALM,
    KillResult,
    addr_for,
    check,
    kill_once,
    temporaries,
)
from thenodes_peerstore import PersistenceConfig, PersistentPeerStore
from thenodes_peerstore.codec import decode, encode
from thenodes_peerstore.files import PeerFile
from thenodes_peerstore.model import PeerEntry, Source
from thenodes_peerstore.persistent import LoadStatus, load_file

PEERS_LINE = re.compile(rb"^\[\[peers\]\]$", re.MULTILINE)


def run_series(path: Path, kills: list[dict[str, int]], entries: int) -> list[KillResult]:
    """Kill one writer after another on the same file, each going on from what the last left."""
    results = []
    acknowledged: int | None = None
    start = 1
    for kill in kills:
        result = kill_once(path, entries=entries, start=start, **kill)
        assert check(result, acknowledged=acknowledged) == [], result
        results.append(result)
        if result.last_ack is not None:
            acknowledged = result.last_ack
        start = (result.generation or 0) + 1
    return results


# -- SIGKILL at random moments ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "smallest", "largest"),
    [(40, 3_000, 8_000), (400, 30_000, 60_000), (2_500, 200_000, 400_000)],
    ids=["4KiB", "40KiB", "250KiB"],
)
def test_a_writer_killed_at_random_moments_always_leaves_an_intact_file_with_every_acked_save(
    tmp_path: Path, entries: int, smallest: int, largest: int
) -> None:
    """Killed right after reading its 1st, 2nd or 3rd ack, the writer is somewhere in its next
    save: recording, encoding, writing the temporary file, renaming it. The file on disk is
    whole, holds the last acknowledged save or the one after it, and the next open leaves no
    temporary file and finds the lock free."""
    rng = random.Random(entries)
    path = tmp_path / "peers" / f"{REALM}.toml"
    kills = [{"acks": rng.randint(1, 3)} for _ in range(5)]

    results = run_series(path, kills, entries)

    assert all(r.status is LoadStatus.INTACT for r in results)
    assert all(smallest <= r.size <= largest for r in results), [r.size for r in results]
    # Each writer went on from the file the last one left, and acknowledged its saves.
    generations = [r.generation or 0 for r in results]
    assert generations == sorted(generations)
    assert generations[-1] >= sum(kill["acks"] for kill in kills)


def test_a_writer_killed_before_each_file_operation_of_a_save_leaves_the_old_file_or_the_new(
    tmp_path: Path,
) -> None:
    """Paused before its n-th file operation (open, write, fsync, close, rename, open the
    directory, fsync it, close it) or just after save() returned, then killed: until the rename
    the file is the previous save, from the rename on it is the new one, whole either way."""
    path = tmp_path / "peers" / f"{REALM}.toml"
    results = run_series(path, [{"pause_at": step} for step in range(10)], entries=60)

    for result in results:
        renamed = bool({"replace", "rename"} & set(result.done_before_pause))
        expected = result.start if renamed else result.start - 1
        assert result.generation == (expected or None), result.paused
    names = [r.paused.split()[3] for r in results if r.paused]
    assert names[0] == "open"
    assert "replace" in names or "rename" in names
    assert names[-1] == "returned"
    # Some kills left a half-written temporary file: the next open removed each of them.
    assert any(r.temporaries_left for r in results)
    assert all(r.temporaries_after_open == 0 for r in results)


def test_a_writer_killed_during_its_very_first_save_leaves_no_file_or_a_whole_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "peers" / f"{REALM}.toml"
    before_rename = kill_once(path, entries=50, start=1, pause_at=1)
    assert before_rename.status is LoadStatus.MISSING
    assert before_rename.last_ack is None
    assert check(before_rename, acknowledged=None) == []
    assert temporaries(path) == []

    returned = kill_once(path, entries=50, start=1, pause_at=99)
    assert returned.paused is not None
    assert "returned" in returned.paused
    assert returned.status is LoadStatus.INTACT
    assert returned.generation == 1
    assert check(returned, acknowledged=None) == []


def test_a_save_flushes_the_new_file_before_the_rename_and_the_directory_after_it(
    tmp_path: Path,
) -> None:
    """What a kill cannot show, the order of a save's operations does: the data is on disk
    before the rename makes it the file, and the rename is on disk before save() returns."""
    path = tmp_path / "peers" / f"{REALM}.toml"
    result = kill_once(path, entries=50, start=1, pause_at=99)
    ops = result.done_before_pause

    renamed = ops.index("replace") if "replace" in ops else ops.index("rename")
    assert ops[0] == "open"
    assert "fsync" in ops[:renamed]
    assert "fsync" in ops[renamed:]
    assert result.generation == 1


def test_the_store_reopened_after_a_kill_has_the_acknowledged_peers_and_saves_again(
    tmp_path: Path, clock
) -> None:
    path = tmp_path / "peers" / f"{REALM}.toml"
    result = kill_once(path, entries=30, start=1, acks=2)
    assert result.last_ack is not None

    clock.t = BASE + 1_000
    config = PersistenceConfig(enabled=True, max_entries=30)
    with PersistentPeerStore.open(path=path, realm=REALM, clock=clock, config=config) as book:
        for g in range(1, result.last_ack + 1):
            assert book.store.get(addr_for(g)) is not None
        assert len(book.store) == 30
        book.store.record_connected("203.0.113.7:7447")
        assert book.save()
    assert decode(path.read_bytes(), realm=REALM).intact


# -- truncation at every byte --------------------------------------------------------------------

NOW = 1_763_700_000
HANDFUL = [
    PeerEntry(
        addr="[2001:db8::1]:7447",
        source=Source.CONNECTED,
        first_seen=NOW - 1000,
        last_seen=NOW - 10,
        last_connected=NOW - 10,
        last_attempt=NOW - 10,
        failures=0,
        node_id="node-b",
        capabilities=("relay", "dht/v2"),
    ),
    PeerEntry(addr="203.0.113.10:7447", source=Source.GOSSIP, first_seen=NOW, last_seen=NOW),
    PeerEntry(
        addr="[2001:db8:0:1::2]:9000",
        source=Source.BOOTSTRAP,
        first_seen=NOW - 50,
        last_seen=NOW - 5,
        last_attempt=NOW - 5,
        failures=3,
    ),
    PeerEntry(
        addr="198.51.100.4:7447",
        source=Source.CONNECTED,
        first_seen=NOW - 70,
        last_seen=NOW - 7,
        last_connected=NOW - 70,
        node_id="n" * 128,
    ),
    PeerEntry(
        addr="[2001:db8::ff]:1",
        source=Source.GOSSIP,
        first_seen=NOW - 9,
        last_seen=NOW - 9,
        capabilities=("c" * 64,),
    ),
]


def complete_before(data: bytes, cut: int) -> int:
    """How many entries were written in full in ``data[:cut]``.

    An entry is complete once the blank line that ends it is there: at the next ``[[peers]]``
    line, or at the ``[integrity]`` line for the last one.
    """
    starts = [m.start() for m in PEERS_LINE.finditer(data)]
    ends = [*starts[1:], data.rindex(b"\n[integrity]\n") + 1]
    return sum(end <= cut for end in ends)


def test_a_peer_file_cut_at_every_byte_is_set_aside_whole_and_only_its_complete_entries_kept(
    tmp_path: Path,
) -> None:
    data = encode(REALM, NOW, HANDFUL)
    with PeerFile.open(tmp_path / "peers" / f"{REALM}.toml", REALM) as peer_file:
        for cut in range(len(data)):
            torn = data[:cut]
            peer_file.path.write_bytes(torn)

            outcome = load_file(peer_file, NOW)

            assert outcome.status is LoadStatus.SALVAGED, cut
            assert outcome.problems, cut
            assert outcome.entries == tuple(HANDFUL[: complete_before(data, cut)]), cut
            assert outcome.quarantined is not None, cut
            assert outcome.quarantined.read_bytes() == torn, cut
            assert not peer_file.path.exists(), cut
            outcome.quarantined.unlink()

        peer_file.save(data)
        assert load_file(peer_file, NOW).status is LoadStatus.INTACT
    # Every prefix was tried, the cut inside the final newline included.
    assert len(data) > 800
    assert data.endswith(b'"\n')


@pytest.mark.parametrize("where", ["inside the 3rd entry", "before the trailer", "last newline"])
def test_a_store_opened_on_a_cut_file_keeps_its_complete_entries_and_writes_a_whole_file_back(
    tmp_path: Path, clock, where: str
) -> None:
    data = encode(REALM, NOW, HANDFUL)
    starts = [m.start() for m in PEERS_LINE.finditer(data)]
    cut = {
        "inside the 3rd entry": starts[2] + 30,
        "before the trailer": data.rindex(b"[integrity]"),
        "last newline": len(data) - 1,
    }[where]
    path = tmp_path / "peers" / f"{REALM}.toml"
    path.parent.mkdir(mode=0o700)
    path.write_bytes(data[:cut])
    clock.t = NOW

    with PersistentPeerStore.open(path=path, realm=REALM, clock=clock) as book:
        kept = {e.addr for e in book.store}
        assert kept == {e.addr for e in HANDFUL[: complete_before(data, cut)]}
        assert not path.exists()
    decoded = decode(path.read_bytes(), realm=REALM)
    assert decoded.intact
    assert {e.addr for e in decoded.entries} == kept
    assert [p.read_bytes() for p in path.parent.glob(f"{path.name}.corrupt-*")] == [data[:cut]]
