"""TheNodes 0.4's plugin data directory: the file lives at ``plugins/peerstore/{realm}.toml``
under ``state_dir``, and a file at the old default, ``peers/{realm}.toml``, is moved there once.

The move is one rename under both locks: a process killed at any step of a start leaves the file
whole at one place or the other, and the next start finds exactly one file with every entry.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.support.paths import ROOT
from thenodes_peerstore import PersistentPeerStore, files, peerfile
from thenodes_peerstore.config import DEFAULT_PATH, LEGACY_DEFAULT_PATH, PersistenceConfig
from thenodes_peerstore.errors import StoreLockedError
from thenodes_peerstore.plugin import PeerStorePlugin

START = 1_763_700_000
REALM = "example"
ADDRS = [f"192.0.2.{n}:7447" for n in range(1, 41)]


@attrs.frozen
class Realm:
    code: str = REALM
    version: str = "1.0"


@attrs.frozen
class Host:
    """What the plugin reads of its host."""

    state_dir: Path
    config: Mapping[str, Any]
    realm: Realm = Realm()
    node_id: str = "node-a"
    listen_addrs: tuple[str, ...] = ("198.51.100.5:7447",)

    def now(self) -> float:
        return float(START)


def host(state_dir: Path, **persistence: Any) -> Host:
    return Host(state_dir, {"network": {"persistence": {"enabled": True, **persistence}}})


def old_file(state_dir: Path) -> Path:
    return state_dir / "peers" / f"{REALM}.toml"


def new_file(state_dir: Path) -> Path:
    return state_dir / "plugins" / "peerstore" / f"{REALM}.toml"


def write_peers(path: Path, addrs: list[str]) -> None:
    book = PersistentPeerStore.open(path=path, realm=REALM, clock=lambda: START, version="1.0")
    book.store.record_gossip(addrs)
    book.close()


def start(state_dir: Path, **persistence: Any) -> set[str]:
    """Start the plugin, stop it, and return the addresses it loaded."""
    plugin = PeerStorePlugin()
    node = host(state_dir, **persistence)
    plugin.on_startup(host=node)
    assert plugin.book is not None
    loaded = {e.addr for e in plugin.book.store.entries()}
    plugin.on_shutdown(host=node)
    return loaded


def test_the_default_path_is_the_plugin_data_directory(tmp_path: Path) -> None:
    assert PersistenceConfig().path == DEFAULT_PATH == "plugins/peerstore/{realm}.toml"
    assert start(tmp_path) == set()
    assert not new_file(tmp_path).exists()  # nothing to save yet
    assert not (tmp_path / "peers").exists()
    assert stat.S_IMODE(os.stat(new_file(tmp_path).parent).st_mode) == 0o700


def test_a_file_at_the_old_default_is_moved_at_first_start_with_every_entry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_peers(old_file(tmp_path), ADDRS)
    before = old_file(tmp_path).read_bytes()

    with caplog.at_level(logging.INFO):
        assert start(tmp_path) == set(ADDRS)

    assert not old_file(tmp_path).exists()
    assert new_file(tmp_path).exists()
    moved = [r.getMessage() for r in caplog.records if r.getMessage().startswith("moved peer")]
    assert moved == [
        f"moved peer file {old_file(tmp_path)} to {new_file(tmp_path)} "
        "(TheNodes 0.4's plugin data directory)"
    ]
    # Nothing is left at the old place: the move removed the old lock file, while it held it.
    assert list(old_file(tmp_path).parent.iterdir()) == []
    for directory in (new_file(tmp_path).parent, new_file(tmp_path).parent.parent):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    # The moved file is the same file until the next save rewrites it.
    assert start(tmp_path) == set(ADDRS)
    assert before.splitlines()[0] == new_file(tmp_path).read_bytes().splitlines()[0]


def test_when_both_files_exist_the_new_one_is_kept_and_the_old_one_left_untouched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_peers(old_file(tmp_path), ADDRS[:5])
    write_peers(new_file(tmp_path), ADDRS[5:8])
    before = old_file(tmp_path).read_bytes()

    assert start(tmp_path) == set(ADDRS[5:8])

    assert old_file(tmp_path).read_bytes() == before
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert str(old_file(tmp_path)) in warning.getMessage()
    assert str(new_file(tmp_path)) in warning.getMessage()


@pytest.mark.parametrize("path", [LEGACY_DEFAULT_PATH, DEFAULT_PATH, "peers.toml"])
def test_a_path_set_in_the_config_is_never_moved_to_or_from(tmp_path: Path, path: str) -> None:
    write_peers(old_file(tmp_path), ADDRS[:3])
    before = old_file(tmp_path).read_bytes()

    loaded = start(tmp_path, path=path)

    assert loaded == (set(ADDRS[:3]) if path == LEGACY_DEFAULT_PATH else set())
    assert old_file(tmp_path).read_bytes() == before
    if path != DEFAULT_PATH:
        assert not new_file(tmp_path).exists()


def test_a_rename_that_fails_keeps_the_old_file_in_use_and_the_next_start_moves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write_peers(old_file(tmp_path), ADDRS)

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", cross_device)
        assert start(tmp_path) == set(ADDRS)  # ran on the old file, saved it there
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert str(old_file(tmp_path)) in error
    assert str(new_file(tmp_path)) in error
    assert old_file(tmp_path).exists()
    assert not new_file(tmp_path).exists()

    assert start(tmp_path) == set(ADDRS)
    assert new_file(tmp_path).exists()
    assert not old_file(tmp_path).exists()


def test_a_directory_flush_that_fails_after_the_rename_is_a_warning_and_the_file_has_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write_peers(old_file(tmp_path), ADDRS)
    real_replace = os.replace
    moved = False

    def replace(src: Any, dst: Any) -> None:
        nonlocal moved
        real_replace(src, dst)
        moved = True

    def fsync_dir(directory: Path) -> None:
        if moved:
            raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace)
        patch.setattr(files, "_fsync_dir", fsync_dir)
        plugin = PeerStorePlugin()
        plugin.on_startup(host=host(tmp_path))
        assert plugin.book is not None
        assert len(plugin.book.store) == len(ADDRS)
        plugin.book.file.close()  # the process dies here: no save
    assert any("could not flush the directory" in r.getMessage() for r in caplog.records)
    assert new_file(tmp_path).exists()
    assert not old_file(tmp_path).exists()
    assert start(tmp_path) == set(ADDRS)


def test_an_old_file_held_by_a_running_store_stops_the_start_and_nothing_moves(
    tmp_path: Path,
) -> None:
    write_peers(old_file(tmp_path), ADDRS[:3])
    running = PersistentPeerStore.open(path=old_file(tmp_path), realm=REALM, clock=lambda: START)
    with running, pytest.raises(StoreLockedError, match=f"peer file {old_file(tmp_path)} is in"):
        start(tmp_path)
    assert old_file(tmp_path).exists()
    assert not new_file(tmp_path).exists()
    assert start(tmp_path) == set(ADDRS[:3])


def test_the_command_reads_a_file_not_yet_moved_where_it_is(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nstate_dir = "{tmp_path}"\n[realm]\ncode = "{REALM}"\n')
    assert peerfile.target_from_host_config(config).path == new_file(tmp_path)
    write_peers(old_file(tmp_path), ADDRS[:2])
    assert peerfile.target_from_host_config(config).path == old_file(tmp_path)
    start(tmp_path)
    assert peerfile.target_from_host_config(config).path == new_file(tmp_path)


# -- a process killed at every step of its first start -------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path

    crash_at = int(sys.argv[2])
    calls = 0

    def counted(name):
        real = getattr(os, name)

        def call(*args, **kwargs):
            global calls
            calls += 1
            if calls == crash_at:
                os._exit(137)  # as SIGKILL: no cleanup, the kernel frees the locks
            return real(*args, **kwargs)

        return call

    import tests.peerstore.test_data_dir as t
    for name in ("open", "close", "write", "fsync", "ftruncate", "replace", "rename",
                 "unlink", "mkdir"):
        setattr(os, name, counted(name))
    plugin = t.PeerStorePlugin()
    plugin.on_startup(host=t.host(Path(sys.argv[1])))
    os._exit(0)  # started: the process ends without its shutdown
    """
)


AFTER_THE_MOVE = 8
"""Steps of the start after the rename a child is killed at (flushing, unlocking, loading)."""


def start_killed_at(state_dir: Path, step: int) -> bool:
    """Start the node in a child process killed at its ``step``-th system call; whether it was."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(state_dir), str(step)],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 137), done.stderr.decode()
    return done.returncode == 137


def test_a_start_killed_at_any_step_of_the_move_leaves_exactly_one_file_with_every_entry(
    tmp_path: Path,
) -> None:
    killed_at = []
    for step in range(1, 200):
        state = tmp_path / f"step-{step}"
        write_peers(old_file(state), ADDRS)
        killed = start_killed_at(state, step)
        found = [p for p in (old_file(state), new_file(state)) if os.path.lexists(p)]
        assert len(found) == 1, (step, found)
        assert start(state) == set(ADDRS), step  # the next start finds every entry
        assert new_file(state).exists()
        assert not old_file(state).exists()
        assert not list(new_file(state).parent.glob("*.tmp")), step
        if not killed:
            break
        killed_at.append((step, found[0] == new_file(state)))
        if sum(moved for _, moved in killed_at) == AFTER_THE_MOVE:
            break  # the rest of the start is loading the file: tests/peerstore/test_crash.py
    else:
        pytest.fail("the start never completed")
    # Killed both before and after the rename, at every system call of the start in between.
    assert {moved for _, moved in killed_at} == {False, True}
    assert len(killed_at) >= 10, killed_at
