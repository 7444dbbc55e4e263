"""The store against a hostile or broken world: its directory taken away, files built to be slow,
a racing second process, and places where no lock can be kept."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from tests.support.books import addrs_in, open_book
from thenodes_peerstore import codec, files
from thenodes_peerstore.codec import MAX_SLOW_TABLES, MAX_TABLES, encode
from thenodes_peerstore.errors import StoreFileError, StoreLockedError
from thenodes_peerstore.files import PeerFile
from thenodes_peerstore.persistent import LoadStatus, load_file

TIMEOUT = 20


# -- the directory taken away while the node runs ----------------------------------------------


def test_a_peer_directory_deleted_while_running_is_made_again_and_no_peer_is_lost(
    tmp_path: Path, clock
) -> None:
    path = tmp_path / "state" / "peers" / "example.toml"
    book = open_book(path, clock)
    book.store.record_gossip(["192.0.2.1:7447", "192.0.2.2:7447"])
    clock.advance(60)
    assert book.tick()
    for child in path.parent.iterdir():
        child.unlink()
    path.parent.rmdir()
    book.store.record_gossip(["192.0.2.3:7447"])

    book.close()

    assert addrs_in(path) == {"192.0.2.1:7447", "192.0.2.2:7447", "192.0.2.3:7447"}
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert (path.parent / "example.toml.lock").exists()
    again = open_book(path, clock)  # the new lock file is free once the node stopped
    again.close()


def test_a_state_directory_replaced_by_a_file_is_moved_aside_and_no_peer_is_lost(
    tmp_path: Path, clock
) -> None:
    state = tmp_path / "state"
    path = state / "peers" / "example.toml"
    book = open_book(path, clock)
    book.store.record_gossip(["192.0.2.1:7447"])
    clock.advance(60)
    assert book.tick()
    for child in path.parent.iterdir():
        child.unlink()
    path.parent.rmdir()
    state.rmdir()
    state.write_text("someone's file")

    book.close()

    assert addrs_in(path) == {"192.0.2.1:7447"}
    (aside,) = tmp_path.glob("state.displaced-*")
    assert aside.read_text() == "someone's file"
    assert not stat.S_ISLNK(os.lstat(state).st_mode)


def test_directories_the_store_makes_are_flushed_into_their_parents_before_it_saves(
    tmp_path: Path,
) -> None:
    flushed: list[Path] = []
    real = files._fsync_dir
    with mock.patch.object(files, "_fsync_dir", side_effect=lambda d: (flushed.append(d), real(d))):
        peer_file = PeerFile.open(tmp_path / "a" / "b" / "peers.toml", "example")
    peer_file.close()
    assert flushed == [tmp_path, tmp_path / "a"]
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700


# -- files built to be slow --------------------------------------------------------------------


def test_a_file_of_a_million_empty_tables_under_the_size_cap_is_read_in_bounded_work(
    tmp_path: Path,
) -> None:
    """1,000,000 tables with a valid trailer: only the first MAX_TABLES are looked at, and only
    MAX_SLOW_TABLES of them go through the general parser; the file is set aside."""
    body = encode("example", 1, []).split(b"\n[integrity]")[0] + b"\n"
    body += b"[[peers]]\n\n" * 1_000_000
    data = (
        body
        + (
            f'[integrity]\nentries = 1000000\nsha256 = "{hashlib.sha256(body).hexdigest()}"\n'
        ).encode()
    )
    assert len(data) < files.MAX_FILE_BYTES
    path = tmp_path / "example.toml"
    path.write_bytes(data)
    calls: list[str] = []
    loads = codec.tomllib.loads

    def counted(text: str) -> object:
        calls.append(text)
        return loads(text)

    with (
        mock.patch.object(codec.tomllib, "loads", side_effect=counted),
        PeerFile.open(path, "example") as peer_file,
    ):
        outcome = load_file(peer_file, 10)
    assert outcome.status is LoadStatus.SALVAGED
    assert outcome.entries == ()
    assert any(f"more than {MAX_TABLES} tables" in p for p in outcome.problems)
    assert len(calls) <= MAX_SLOW_TABLES + 2  # the tables, the header, the trailer
    assert outcome.quarantined is not None


# -- the lock ----------------------------------------------------------------------------------


def test_a_store_refused_while_the_winner_has_not_written_its_pid_never_names_a_dead_holder(
    tmp_path: Path,
) -> None:
    """The lock file still names an earlier holder that died; a new holder has the lock but
    has not written its pid yet. The refusal says the holder is not known."""
    path = tmp_path / "example.toml"
    lock_path = tmp_path / "example.toml.lock"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    dead_pid = int(dead.stdout)
    lock_path.write_text(f"pid {dead_pid}\n")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            f"fd = os.open({str(lock_path)!r}, os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLockedError) as caught:
            PeerFile.open(path, "example")
        assert caught.value.pid is None
        assert str(dead_pid) not in str(caught.value)
        assert "not known" in str(caught.value)
    finally:
        holder.kill()
        holder.communicate(timeout=TIMEOUT)  # waits, and closes both pipes


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_a_path_where_no_lock_file_can_be_made_is_refused_saying_so() -> None:
    with pytest.raises(StoreFileError) as caught:
        PeerFile.open(Path("/proc/self/example.toml"), "example")
    assert not isinstance(caught.value, StoreLockedError)
    assert "cannot create lock file /proc/self/example.toml.lock" in str(caught.value)
