"""A peer file seen from beside a node: named by host config, read as a start reads it, the
next start asked of the store, and written only under the lock; errors are the package's."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from thenodes_peerstore import peerfile
from thenodes_peerstore.codec import encode
from thenodes_peerstore.config import PersistenceConfig
from thenodes_peerstore.errors import (
    ConfigError,
    NotAPeerFileError,
    PeerFileDamagedError,
    PeerFileMissingError,
    PeerStoreError,
    RealmMismatchError,
    StoreLockedError,
)
from thenodes_peerstore.files import PeerFile
from thenodes_peerstore.model import PeerEntry, Source
from thenodes_peerstore.store import DropReason

NOW = 1_763_700_000
OWN = "198.51.100.5:7447"


def entry(addr: str, source: Source = Source.GOSSIP, *, seen: int = NOW - 10) -> PeerEntry:
    connected = seen if source is Source.CONNECTED else None
    return PeerEntry(
        addr=addr, source=source, first_seen=seen, last_seen=seen, last_connected=connected
    )


def host_config(tmp_path: Path, persistence: str = "") -> Path:
    config = tmp_path / "node.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            [realm]
            code = "example"
            [node]
            id = "node-a"
            state_dir = "{tmp_path / "state"}"
            listen_addrs = ["{OWN}"]
            [network.persistence]
            enabled = true
            """
        )
        + textwrap.dedent(persistence)
    )
    return config


def file_target(path: Path, realm: str | None = "example") -> peerfile.Target:
    return peerfile.Target(path, realm, PersistenceConfig(enabled=True), f"--file {path}")


def test_a_host_config_names_the_file_settings_and_the_node_itself(tmp_path: Path) -> None:
    target = peerfile.target_from_host_config(host_config(tmp_path, "max_entries = 7\n"))
    assert target.path == tmp_path / "state" / "plugins" / "peerstore" / "example.toml"
    assert (target.realm, target.version) == ("example", peerfile.DEFAULT_REALM_VERSION)
    assert target.config.max_entries == 7
    assert (target.own_addrs, target.own_node_id) == ((OWN,), "node-a")
    assert target.named_by == f"--config {tmp_path / 'node.toml'}"


def test_a_host_config_that_cannot_be_read_is_a_config_error_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text("[realm\n")
    with pytest.raises(ConfigError, match=f"host config {config}: not valid TOML"):
        peerfile.target_from_host_config(config)


def test_next_load_reports_what_the_store_drops_and_clamps(tmp_path: Path) -> None:
    target = peerfile.target_from_host_config(host_config(tmp_path, "max_entries = 2\n"))
    future = entry("10.0.0.4:7447", Source.BOOTSTRAP, seen=NOW + 600)
    entries = [
        entry(OWN, Source.CONNECTED),
        entry("10.0.0.1:7447", seen=NOW - 30 * 86_400),
        entry("10.0.0.2:7447", Source.CONNECTED),
        entry("10.0.0.2:7447"),
        future,
        entry("10.0.0.3:7447", seen=NOW - 20),
    ]

    load = peerfile.next_load(entries, target.config, NOW, own=target)

    assert [(d.index, d.entry.addr, d.reason) for d in load.dropped] == [
        (0, OWN, DropReason.OWN),
        (1, "10.0.0.1:7447", DropReason.EXPIRED),
        (3, "10.0.0.2:7447", DropReason.DUPLICATE),
        (5, "10.0.0.3:7447", DropReason.OVER_CAP),
    ]
    assert load.dropped == load.report.dropped
    assert [e.addr for e in load.kept] == ["10.0.0.2:7447", "10.0.0.4:7447"]
    assert load.clamped == (future.clamped(NOW),)
    assert load.plan == ("10.0.0.2:7447",)
    assert load.changes


def test_reading_names_each_unusable_file_with_a_package_error(tmp_path: Path) -> None:
    path = tmp_path / "peers.toml"
    with pytest.raises(PeerFileMissingError, match=f"no peer file at {path}"):
        peerfile.read_snapshot(file_target(path))
    path.write_text("hello = 1\n")
    with pytest.raises(NotAPeerFileError, match="is not a peer file"):
        peerfile.read_snapshot(file_target(path))
    path.write_bytes(encode("example", NOW, [entry("10.0.0.1:7447")]))
    with pytest.raises(RealmMismatchError, match="the file is left untouched") as raised:
        peerfile.read_snapshot(file_target(path, "other"))
    assert (raised.value.found, raised.value.expected) == ("example", "other")
    assert peerfile.realm_named_in(path.read_bytes()) == "example"
    snapshot = peerfile.read_snapshot(file_target(path, None))
    assert (snapshot.realm, snapshot.intact, len(snapshot.entries)) == ("example", True, 1)


def test_a_damaged_file_is_read_but_refused_for_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "peers.toml"
    data = encode("example", NOW, [entry("10.0.0.1:7447"), entry("10.0.0.2:7447")])
    path.write_bytes(data.replace(b"10.0.0.2", b"10.0.0.3"))
    target = file_target(path)
    assert not peerfile.read_snapshot(target).intact
    with (
        pytest.raises(PeerFileDamagedError, match="`peerstore seal` keeps the 2 entries"),
        peerfile.editing(target, NOW, must_exist=True, wait_secs=0),
    ):
        pass


def test_a_held_file_is_refused_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "peers.toml"
    holder = PeerFile.open(path, "example")
    try:
        with (
            pytest.raises(StoreLockedError, match=r"held for more than 0\.05 s") as raised,
            peerfile.locked(file_target(path), "example", wait_secs=0.05),
        ):
            pass
    finally:
        holder.close()
    assert isinstance(raised.value, PeerStoreError)
    assert raised.value.pid is not None


def test_an_edit_writes_most_trusted_first_and_keep_backup_never_overwrites(
    tmp_path: Path,
) -> None:
    path = tmp_path / "peers.toml"
    target = file_target(path)
    entries = [entry("10.0.0.1:7447"), entry("10.0.0.2:7447", Source.CONNECTED)]
    with peerfile.editing(target, NOW, must_exist=False, wait_secs=0) as edit:
        edit.commit(edit.load(entries))
    snapshot = peerfile.read_snapshot(target)
    assert [e.addr for e in snapshot.entries] == ["10.0.0.2:7447", "10.0.0.1:7447"]
    first = peerfile.keep_backup(path, NOW)
    second = peerfile.keep_backup(path, NOW)
    assert (first.name, second.name) == (f"peers.toml.bak-{NOW}", f"peers.toml.bak-{NOW}-1")
    assert first.read_bytes() == second.read_bytes() == path.read_bytes()
