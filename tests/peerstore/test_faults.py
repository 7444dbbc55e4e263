"""Saves, loads and quarantines when the operating system fails them.

The tests run as root, where permission bits stop nothing, so faults are injected at the OS call
layer instead: ``thenodes_peerstore.files.os`` is replaced by :class:`FaultyOs`, which is the real
``os`` module except for one call on one kind of file, which fails with a chosen errno exactly as
the kernel would report it.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from pathlib import Path
from typing import Any

import attrs
import pytest
import tomli_w

from hostsim.clock import VirtualClock
from hostsim.host import HostStartupError, PluginHost
from tests.support.books import addrs_in, file_names, open_book
from tests.support.hosts import host_config
from tests.support.hosts import peer_file as host_file
from thenodes_peerstore import files
from thenodes_peerstore.codec import encode
from thenodes_peerstore.errors import StoreFileError
from thenodes_peerstore.files import PeerFile
from thenodes_peerstore.model import PeerEntry, Source
from thenodes_peerstore.persistent import LoadStatus, PersistentPeerStore, load_file
from thenodes_peerstore.plugin import PeerStorePlugin

START = 1_763_700_000
A, B, C = "45.76.12.34:7447", "91.121.5.6:7447", "5.9.20.30:7447"
SEEDS = ["203.0.113.1:7447"]


@attrs.frozen
class Fault:
    """One OS call that fails: which call, with which errno, on which file."""

    call: str
    err: int
    target: str
    """"temp" (the save's temporary file), "dir" (the peer file's directory) or "peer"."""
    later_chunk: bool = False
    """For ``write``: fail only a write past the first chunk."""

    @property
    def after_replace(self) -> bool:
        """Whether the new file is already in place when this fault strikes."""
        return self.target == "dir"


SAVE_FAULTS = [
    pytest.param(Fault("write", errno.ENOSPC, "temp"), id="ENOSPC-writing-the-first-chunk"),
    pytest.param(
        Fault("write", errno.ENOSPC, "temp", later_chunk=True), id="ENOSPC-writing-a-later-chunk"
    ),
    pytest.param(Fault("open", errno.EACCES, "temp"), id="EACCES-creating-the-temp-file"),
    pytest.param(Fault("open", errno.EROFS, "temp"), id="EROFS-creating-the-temp-file"),
    pytest.param(Fault("fsync", errno.EIO, "temp"), id="EIO-flushing-the-temp-file"),
    pytest.param(Fault("close", errno.EIO, "temp"), id="EIO-closing-the-temp-file"),
    pytest.param(Fault("replace", errno.EXDEV, "temp"), id="EXDEV-renaming-over-the-file"),
    pytest.param(Fault("replace", errno.EACCES, "temp"), id="EACCES-renaming-over-the-file"),
    pytest.param(Fault("open", errno.EACCES, "dir"), id="EACCES-opening-the-directory"),
    pytest.param(Fault("fsync", errno.EIO, "dir"), id="EIO-flushing-the-directory"),
]


class FaultyOs:
    """The real ``os`` module, except for the call ``fault`` names while it is armed."""

    def __init__(self, fault: Fault, peer_path: Path) -> None:
        self.fault = fault
        self.peer_path = peer_path
        self.armed = True
        self.failures = 0
        """How many calls failed."""
        self.temp_files = 0
        """How many temporary files were asked for: one per save attempt."""
        self._fds: dict[int, Path] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def _kind(self, path: Path | None) -> str | None:
        if path is None:
            return None
        if path == self.peer_path:
            return "peer"
        if path == self.peer_path.parent:
            return "dir"
        if path.name.startswith(f".{self.peer_path.name}.") and path.name.endswith(".tmp"):
            return "temp"
        return None

    def _check(self, call: str, path: Path | None, fd: int | None = None) -> None:
        fault = self.fault
        if not self.armed or call != fault.call or self._kind(path) != fault.target:
            return
        if fault.later_chunk and fd is not None and os.lseek(fd, 0, os.SEEK_CUR) == 0:
            return
        self.failures += 1
        raise OSError(fault.err, os.strerror(fault.err), str(path))

    def open(self, path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        path = Path(path)
        if self._kind(path) == "temp":
            self.temp_files += 1
        self._check("open", path)
        fd = os.open(path, flags, mode, **kwargs)
        self._fds[fd] = path
        return fd

    def write(self, fd: int, data: bytes) -> int:
        self._check("write", self._fds.get(fd), fd)
        return os.write(fd, data)

    def read(self, fd: int, n: int) -> bytes:
        self._check("read", self._fds.get(fd), fd)
        return os.read(fd, n)

    def fsync(self, fd: int) -> None:
        self._check("fsync", self._fds.get(fd), fd)
        os.fsync(fd)

    def close(self, fd: int) -> None:
        path = self._fds.pop(fd, None)
        os.close(fd)  # as on Linux, a close that reports an error has closed the descriptor
        self._check("close", path)

    def replace(self, src: Any, dst: Any) -> None:
        self._check("replace", Path(src))
        os.replace(src, dst)

    def rename(self, src: Any, dst: Any) -> None:
        self._check("rename", Path(src))
        os.rename(src, dst)


def inject(monkeypatch: pytest.MonkeyPatch, fault: Fault, peer_path: Path) -> FaultyOs:
    faulty = FaultyOs(fault, peer_path)
    monkeypatch.setattr(files, "os", faulty)
    return faulty


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "plugins" / "peerstore" / "example.toml"


# -- PeerFile.save ------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", SAVE_FAULTS)
def test_a_save_the_os_fails_keeps_the_old_file_and_leaves_no_temporary_file(
    path: Path, monkeypatch: pytest.MonkeyPatch, fault: Fault
) -> None:
    old = b"old peers\n" * 10
    new = bytes(range(256)) * 1000  # 256 kB: four chunks
    with PeerFile.open(path, "example") as peer_file:
        peer_file.save(old)
        faulty = inject(monkeypatch, fault, path)

        with pytest.raises(OSError, match=re.escape(os.strerror(fault.err))) as caught:
            peer_file.save(new)

        assert caught.value.errno == fault.err
        assert faulty.failures == 1
        assert path.read_bytes() == (new if fault.after_replace else old)
        assert file_names(path.parent) == ["example.toml", "example.toml.lock"]

        faulty.armed = False
        peer_file.save(new)
        assert path.read_bytes() == new


def test_a_large_file_is_written_whole_in_chunks(path: Path) -> None:
    data = os.urandom(3 * files.WRITE_CHUNK + 17)
    with PeerFile.open(path, "example") as peer_file:
        peer_file.save(data)
    assert path.read_bytes() == data


# -- PersistentPeerStore: dirty, quiet, retried ----------------------------------------------------


@pytest.mark.parametrize("fault", SAVE_FAULTS)
def test_a_store_whose_saves_fail_stays_dirty_logs_once_per_streak_and_retries_each_interval(
    path: Path,
    clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
) -> None:
    monkeypatch.setattr(files, "WRITE_CHUNK", 64)  # so that even a small file has later chunks
    caplog.set_level(logging.INFO, logger="thenodes_peerstore")
    book = open_book(path, clock)
    book.store.record_connected(A)
    clock.advance(60)
    assert book.tick()
    before = path.read_bytes()

    faulty = inject(monkeypatch, fault, path)
    book.store.record_connected(B)
    for attempt in range(1, 4):
        clock.advance(30)
        assert not book.tick()  # the interval has not passed: not even an attempt
        assert faulty.temp_files == attempt - 1
        clock.advance(30)
        assert not book.tick()
        assert faulty.temp_files == attempt
    assert not book.save()

    assert faulty.failures == 4
    assert book.dirty
    assert book.saves == 1
    if fault.after_replace:
        assert addrs_in(path) == {A, B}  # in place, but not known to be durable: saved again
    else:
        assert path.read_bytes() == before
    assert file_names(path.parent) == ["example.toml", "example.toml.lock"]
    assert len(errors(caplog)) == 1
    assert str(path) in errors(caplog)[0]
    assert os.strerror(fault.err) in errors(caplog)[0]

    faulty.armed = False
    clock.advance(30)
    assert not book.tick()
    clock.advance(30)
    assert book.tick()
    assert not book.dirty
    assert addrs_in(path) == {A, B}
    assert any("again" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)

    faulty.armed = True  # a new streak of failures is logged again, once
    book.store.record_connected(C)
    for _ in range(2):
        clock.advance(60)
        assert not book.tick()
    assert len(errors(caplog)) == 2
    assert str(path) in errors(caplog)[1]

    faulty.armed = False
    book.close()
    assert addrs_in(path) == {A, B, C}


@pytest.mark.parametrize("fault", SAVE_FAULTS)
def test_a_store_whose_last_save_fails_closes_without_raising_and_releases_the_file(
    path: Path, clock, monkeypatch: pytest.MonkeyPatch, fault: Fault
) -> None:
    monkeypatch.setattr(files, "WRITE_CHUNK", 64)
    book = open_book(path, clock)
    book.store.record_connected(A)
    book.save()
    before = path.read_bytes()
    book.store.record_connected(B)

    faulty = inject(monkeypatch, fault, path)
    book.close()

    assert faulty.failures == 1
    if not fault.after_replace:
        assert path.read_bytes() == before
    faulty.armed = False
    again = open_book(path, clock)  # the lock was released
    assert A in again.store
    again.close()


# -- the plugin in a simulated host ------------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path) -> PluginHost:
    config = tmp_path / "host.toml"
    settings = host_config(seeds=SEEDS, listen_addrs=None, save_interval_secs=60)
    config.write_text(tomli_w.dumps(settings))
    return PluginHost.from_file(config, clock=VirtualClock(START))


def book_of(host: PluginHost) -> PersistentPeerStore:
    assert host.plugin_manager is not None
    plugin = host.plugin_manager.get_plugin("peerstore")
    assert isinstance(plugin, PeerStorePlugin)
    assert plugin.book is not None
    return plugin.book


def raised(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records of an exception escaping a hook: the plugin's guard or the host's."""
    return [r for r in caplog.records if r.exc_info is not None]


@pytest.mark.parametrize("fault", SAVE_FAULTS)
def test_on_tick_a_failing_save_never_reaches_the_host_and_the_next_tick_saves(
    host: PluginHost,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
) -> None:
    monkeypatch.setattr(files, "WRITE_CHUNK", 64)
    caplog.set_level(logging.INFO)
    host.start()
    host.connect(A, node_id="node-b")
    host.advance(60)
    book = book_of(host)
    assert book.saves == 1

    faulty = inject(monkeypatch, fault, host_file(host))
    host.connect(B, node_id="node-c")
    host.advance(180)

    assert host.running
    assert faulty.failures == 3
    assert raised(caplog) == []
    assert len(errors(caplog)) == 1
    assert str(host_file(host)) in errors(caplog)[0]
    assert book.saves == 1

    faulty.armed = False
    host.connect(C, node_id="node-d")  # the node carries on
    host.advance(60)
    assert book.saves == 2
    assert {A, B, C} <= addrs_in(host_file(host))
    host.shutdown()


@pytest.mark.parametrize("fault", SAVE_FAULTS)
def test_on_shutdown_a_failing_save_never_reaches_the_host_and_the_file_is_released(
    host: PluginHost,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
) -> None:
    monkeypatch.setattr(files, "WRITE_CHUNK", 64)
    caplog.set_level(logging.INFO)
    host.start()
    host.connect(A, node_id="node-b")
    host.advance(60)
    before = host_file(host).read_bytes()
    host.connect(B, node_id="node-c")

    faulty = inject(monkeypatch, fault, host_file(host))
    host.shutdown()

    assert not host.running
    assert faulty.failures == 1
    assert raised(caplog) == []
    assert len(errors(caplog)) == 1
    assert str(host_file(host)) in errors(caplog)[0]
    if not fault.after_replace:
        assert host_file(host).read_bytes() == before
    assert file_names(host_file(host).parent) == ["example.toml", "example.toml.lock"]

    faulty.armed = False
    dials = host.start()  # the lock was released
    assert A in [d.addr for d in dials if d.origin == "peerstore"]
    host.shutdown()


# -- reading ------------------------------------------------------------------------------------

ENTRIES = [
    PeerEntry(addr=A, source=Source.CONNECTED, first_seen=START, last_seen=START),
    PeerEntry(addr=B, source=Source.GOSSIP, first_seen=START, last_seen=START),
]
READ_FAULTS = [
    pytest.param(Fault("open", errno.EACCES, "peer"), id="EACCES-opening"),
    pytest.param(Fault("open", errno.EIO, "peer"), id="EIO-opening"),
    pytest.param(Fault("read", errno.EIO, "peer"), id="EIO-reading"),
]


@pytest.mark.parametrize("fault", READ_FAULTS)
def test_a_file_that_cannot_be_read_is_a_store_file_error_naming_it(
    path: Path, monkeypatch: pytest.MonkeyPatch, fault: Fault
) -> None:
    with PeerFile.open(path, "example") as peer_file:
        peer_file.save(encode("example", START, ENTRIES))
        inject(monkeypatch, fault, path)

        with pytest.raises(StoreFileError) as caught:
            load_file(peer_file, START)

    assert not isinstance(caught.value, OSError)
    assert str(path) in str(caught.value)
    assert os.strerror(fault.err) in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == fault.err


@pytest.mark.parametrize("fault", READ_FAULTS)
def test_a_store_whose_file_cannot_be_read_does_not_open_and_does_not_keep_the_lock(
    path: Path, clock, monkeypatch: pytest.MonkeyPatch, fault: Fault
) -> None:
    with PeerFile.open(path, "example") as peer_file:
        peer_file.save(encode("example", START, ENTRIES))
    before = path.read_bytes()
    faulty = inject(monkeypatch, fault, path)

    with pytest.raises(StoreFileError, match=str(path)):
        open_book(path, clock)

    assert path.read_bytes() == before
    faulty.armed = False
    book = open_book(path, clock)
    assert len(book.store) == 2
    book.close()


@pytest.mark.parametrize("fault", READ_FAULTS)
def test_on_startup_a_file_that_cannot_be_read_stops_the_node_naming_it(
    host: PluginHost, monkeypatch: pytest.MonkeyPatch, fault: Fault
) -> None:
    host.start()
    host.connect(A, node_id="node-b")
    host.shutdown()
    inject(monkeypatch, fault, host_file(host))

    with pytest.raises(HostStartupError, match=str(host_file(host))):
        host.start()

    assert not host.running


# -- setting a damaged file aside ---------------------------------------------------------------


def torn_file() -> bytes:
    data = encode("example", START, ENTRIES)
    return data[: data.rindex(b"[[peers]]")]


@pytest.mark.parametrize("err", [errno.EACCES, errno.EROFS, errno.EIO], ids=errno.errorcode.get)
def test_a_damaged_file_that_cannot_be_moved_aside_is_left_in_place_and_salvaged(
    path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, err: int
) -> None:
    with PeerFile.open(path, "example") as peer_file:
        path.write_bytes(torn_file())
        inject(monkeypatch, Fault("rename", err, "peer"), path)

        with caplog.at_level(logging.ERROR, logger="thenodes_peerstore"):
            outcome = load_file(peer_file, START)

    assert outcome.status is LoadStatus.SALVAGED
    assert outcome.entries == tuple(ENTRIES[:1])
    assert outcome.quarantined is None
    assert any(os.strerror(err) in p for p in outcome.problems)
    assert path.read_bytes() == torn_file()
    assert file_names(path.parent) == ["example.toml", "example.toml.lock"]
    assert len(errors(caplog)) == 1
    assert str(path) in errors(caplog)[0]


def test_a_store_on_a_damaged_file_it_cannot_move_aside_runs_in_memory_and_never_overwrites_it(
    path: Path, clock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(torn_file())
    faulty = inject(monkeypatch, Fault("rename", errno.EACCES, "peer"), path)

    with caplog.at_level(logging.WARNING, logger="thenodes_peerstore"):
        book = open_book(path, clock)
    assert not book.writable
    assert A in book.store
    assert any("in memory only" in r.getMessage() for r in caplog.records)

    book.store.record_connected(C)
    clock.advance(120)
    assert not book.tick()
    book.close()
    assert path.read_bytes() == torn_file()
    assert faulty.temp_files == 0

    faulty.armed = False  # once the file can be moved aside, the next start does so
    book = open_book(path, clock)
    assert book.writable
    assert A in book.store
    book.close()
    assert addrs_in(path) == {A}
    assert [n for n in file_names(path.parent) if ".corrupt-" in n] == [
        f"example.toml.corrupt-{START + 120}"
    ]


def test_a_quarantine_whose_directory_cannot_be_flushed_still_sets_the_file_aside(
    path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with PeerFile.open(path, "example") as peer_file:
        path.write_bytes(torn_file())
        inject(monkeypatch, Fault("fsync", errno.EIO, "dir"), path)

        with caplog.at_level(logging.WARNING, logger="thenodes_peerstore"):
            outcome = load_file(peer_file, START)

    assert outcome.status is LoadStatus.SALVAGED
    assert outcome.quarantined is not None
    assert outcome.quarantined.read_bytes() == torn_file()
    assert not path.exists()
    assert any(str(path) in r.getMessage() for r in caplog.records)
