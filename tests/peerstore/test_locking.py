"""The realm file's lock: one store at a time, across processes, naming the holder's pid."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.books import open_book
from tests.support.processes import TIMEOUT, read_line, ready_child
from thenodes_peerstore import files
from thenodes_peerstore.errors import StoreLockedError
from thenodes_peerstore.files import PeerFile

START = 1_763_700_000
PEER = "203.0.113.10:7447"

# A second process that opens the store, records a peer, says "ready" and holds the file until
# its stdin closes; then it closes the store cleanly (which saves) and says "closed".
HOLDER = f"""
import sys
from pathlib import Path
from thenodes_peerstore.persistent import PersistentPeerStore

book = PersistentPeerStore.open(path=Path(sys.argv[1]), realm="example", clock=lambda: {START})
book.store.record_connected({PEER!r}, node_id="child")
print("ready", flush=True)
sys.stdin.read()
book.close()
print("closed", flush=True)
"""


def lock_of(path: Path) -> Path:
    return path.with_name(f"{path.name}.lock")


@pytest.fixture
def holder(path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Another process holding the store open, once it has said "ready"."""
    with ready_child(HOLDER, str(path)) as proc:
        yield proc


# -- one process --------------------------------------------------------------------------------


def test_a_second_store_in_the_same_process_is_refused_naming_the_file_and_our_pid(
    path: Path,
) -> None:
    first = open_book(path)
    with pytest.raises(StoreLockedError) as caught:
        open_book(path)

    assert str(path) in str(caught.value)
    assert f"(pid {os.getpid()})" in str(caught.value)
    assert caught.value.pid == os.getpid()

    first.close()
    open_book(path).close()


def test_the_lock_file_names_its_holder_while_the_store_is_open(path: Path) -> None:
    with PeerFile.open(path, "example"):
        assert lock_of(path).read_text() == f"pid {os.getpid()}\n"


@pytest.mark.parametrize("content", [b"", b"garbage", b"pid \n", b"pid 12x\n"], ids=repr)
def test_a_lock_file_without_a_pid_still_refuses_naming_the_lock_file(
    path: Path, content: bytes
) -> None:
    with PeerFile.open(path, "example"):
        lock_of(path).write_bytes(content)  # left by another program, or still being written
        with pytest.raises(StoreLockedError) as caught:
            PeerFile.open(path, "example")

    assert caught.value.pid is None
    assert str(path) in str(caught.value)
    assert str(lock_of(path)) in str(caught.value)


def test_a_pid_that_cannot_be_written_does_not_stop_the_store(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(fd: int, length: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(files.os, "ftruncate", fail)
    with PeerFile.open(path, "example") as opened:
        opened.save(b"saved")
        monkeypatch.undo()
        with pytest.raises(StoreLockedError) as caught:
            PeerFile.open(path, "example")  # still held: only the pid is missing

    assert caught.value.pid is None
    assert path.read_bytes() == b"saved"


def test_the_lock_file_is_never_deleted(path: Path) -> None:
    first = PeerFile.open(path, "example")
    for _ in range(3):
        with pytest.raises(StoreLockedError):
            PeerFile.open(path, "example")
        assert lock_of(path).read_text() == f"pid {os.getpid()}\n"  # a refusal changes nothing
    first.close()
    assert lock_of(path).exists()
    inode = lock_of(path).stat().st_ino

    PeerFile.open(path, "example").close()

    assert lock_of(path).stat().st_ino == inode  # the same file, not a new one


# -- two processes ------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="uses select() on a pipe")
def test_a_store_held_by_another_process_is_refused_naming_its_pid_and_nothing_is_lost(
    path: Path, holder: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(StoreLockedError) as caught:
        open_book(path)

    assert str(path) in str(caught.value)
    assert f"(pid {holder.pid})" in str(caught.value)
    assert caught.value.pid == holder.pid

    assert holder.stdin is not None
    holder.stdin.close()
    assert read_line(holder) == "closed"
    assert holder.wait(timeout=TIMEOUT) == 0

    book = open_book(path)
    try:
        entry = book.store.get(PEER)
        assert entry is not None
        assert entry.node_id == "child"
    finally:
        book.close()


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL and select() on a pipe")
def test_a_killed_holder_leaves_the_lock_file_and_the_next_store_opens(
    path: Path, holder: subprocess.Popen[bytes]
) -> None:
    assert lock_of(path).read_text() == f"pid {holder.pid}\n"

    holder.kill()  # SIGKILL: no cleanup runs in the child
    holder.wait(timeout=TIMEOUT)

    assert lock_of(path).exists()
    with PeerFile.open(path, "example"):  # the kernel released the dead process's lock
        assert lock_of(path).read_text() == f"pid {os.getpid()}\n"
    assert lock_of(path).exists()
