"""The peer file on disk: where it lives, its lock, atomic saves, loading and quarantine."""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path

import pytest

from thenodes_peerstore import files
from thenodes_peerstore.codec import encode
from thenodes_peerstore.errors import (
    RealmMismatchError,
    StoreFileError,
    StoreLockedError,
    StorePathError,
)
from thenodes_peerstore.files import PeerFile, resolve_store_path, validate_realm_code
from thenodes_peerstore.model import PeerEntry, Source
from thenodes_peerstore.persistent import LoadStatus, load_file

NOW = 1_763_700_000
ENTRIES = [
    PeerEntry(
        addr="[2001:db8::1]:7447",
        source=Source.CONNECTED,
        first_seen=NOW - 100,
        last_seen=NOW - 10,
        last_connected=NOW - 10,
        node_id="node-b",
        capabilities=("relay",),
    ),
    PeerEntry(addr="203.0.113.10:7447", source=Source.GOSSIP, first_seen=NOW, last_seen=NOW),
]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def peer_file(tmp_path: Path):
    with PeerFile.open(tmp_path / "peers" / "example.toml", "example") as opened:
        yield opened


# -- where the file lives ---------------------------------------------------------------------


def test_the_default_template_gives_one_file_per_realm_under_the_state_dir(tmp_path: Path) -> None:
    assert resolve_store_path(tmp_path, "peers/{realm}.toml", "example") == (
        tmp_path / "peers" / "example.toml"
    )
    assert resolve_store_path(tmp_path, "peers/{realm}.toml", "other") == (
        tmp_path / "peers" / "other.toml"
    )


@pytest.mark.parametrize(
    ("template", "relative"),
    [
        ("peers.toml", "peers.example.toml"),
        ("data/peers.toml", "data/peers.example.toml"),
        ("peers", "peers.example"),
        ("./peers.toml", "peers.example.toml"),
    ],
)
def test_a_template_without_realm_gets_the_code_before_the_suffix(
    tmp_path: Path, template: str, relative: str
) -> None:
    assert resolve_store_path(tmp_path, template, "example") == tmp_path / relative


def test_a_relative_state_dir_works_without_touching_the_disk() -> None:
    assert resolve_store_path(Path("data"), "peers/{realm}.toml", "example") == Path(
        "data/peers/example.toml"
    )


def test_an_absolute_template_is_used_as_given(tmp_path: Path) -> None:
    template = str(tmp_path / "elsewhere" / "{realm}.toml")
    assert resolve_store_path(tmp_path / "state", template, "example") == (
        tmp_path / "elsewhere" / "example.toml"
    )


@pytest.mark.parametrize(
    "template",
    ["../peers/{realm}.toml", "peers/../../{realm}.toml", "../peers.toml", "{realm}/../../x.toml"],
)
def test_a_relative_path_that_leads_outside_the_state_dir_is_refused(
    tmp_path: Path, template: str
) -> None:
    with pytest.raises(StorePathError) as caught:
        resolve_store_path(tmp_path / "state", template, "example")
    assert repr(template) in str(caught.value)


@pytest.mark.parametrize("template", ["{realm}/..", ".", "./", "peers/.."])
def test_a_path_that_names_no_file_is_refused(tmp_path: Path, template: str) -> None:
    with pytest.raises(StorePathError) as caught:
        resolve_store_path(tmp_path, template, "example")
    assert repr(template) in str(caught.value)


BAD_CODES = [
    pytest.param("..", "names a directory", id="parent"),
    pytest.param(".", "names a directory", id="dot"),
    pytest.param("../x", "path separator", id="traversal"),
    pytest.param("a/../../b", "path separator", id="traversal-inside"),
    pytest.param("/etc/passwd", "path separator", id="absolute"),
    pytest.param("a/b", "path separator", id="slash"),
    pytest.param("a\\b", "path separator", id="backslash"),
    pytest.param("c:x", "':'", id="drive-letter"),
    pytest.param("a\x00", "NUL", id="nul-byte"),
    pytest.param("Example", "uppercase", id="uppercase"),
    pytest.param("A", "uppercase", id="one-uppercase"),
    pytest.param("a" * 65, "65 characters long", id="over-long"),
    pytest.param("", "empty", id="empty"),
    pytest.param("-x", "starts with '-'", id="leading-dash"),
    pytest.param(".hidden", "starts with '.'", id="leading-dot"),
    pytest.param("a b", "' '", id="space"),
    pytest.param("é", "'é'", id="non-ascii"),
    pytest.param("a*", "'*'", id="glob"),
    pytest.param("con", "device name on Windows", id="con"),
    pytest.param("prn", "device name on Windows", id="prn"),
    pytest.param("aux", "device name on Windows", id="aux"),
    pytest.param("nul", "device name on Windows", id="nul"),
    pytest.param("com1", "device name on Windows", id="com1"),
    pytest.param("com9", "device name on Windows", id="com9"),
    pytest.param("lpt1", "device name on Windows", id="lpt1"),
    pytest.param("lpt9", "device name on Windows", id="lpt9"),
    pytest.param("nul.txt", "device name on Windows", id="nul-with-extension"),
    pytest.param("con.tar.gz", "device name on Windows", id="con-with-two-extensions"),
    pytest.param("aux.", "device name on Windows", id="aux-trailing-dot"),
]


@pytest.mark.parametrize(("code", "reason"), BAD_CODES)
def test_a_realm_code_that_cannot_name_a_file_is_refused_naming_it_and_why(
    tmp_path: Path, code: str, reason: str
) -> None:
    with pytest.raises(StorePathError) as caught:
        resolve_store_path(tmp_path, "peers/{realm}.toml", code)
    assert repr(code) in str(caught.value)
    assert reason in str(caught.value)
    with pytest.raises(StorePathError, match="cannot name a file"):
        validate_realm_code(code)
    with pytest.raises(StorePathError):
        PeerFile.open(tmp_path / "peers" / "x.toml", code)
    assert not (tmp_path / "peers").exists()


@pytest.mark.parametrize("code", [None, 7, b"example"])
def test_a_realm_code_must_be_a_string(code: object) -> None:
    with pytest.raises(StorePathError) as caught:
        validate_realm_code(code)
    assert repr(code) in str(caught.value)


@pytest.mark.parametrize(
    "code",
    [
        "example",
        "a",
        "0",
        "my-realm.v2_x",
        "a" * 64,
        "a..",
        "com10",
        "lpt0",
        "console",
        "nullable",
        "auxiliary",
        "my.con",
        "prn-2",
    ],
)
def test_well_formed_realm_codes_are_accepted(code: str) -> None:
    assert validate_realm_code(code) == code


@pytest.mark.parametrize(
    ("template", "part"),
    [("con.toml", "con.example.toml"), ("aux/{realm}.toml", "aux"), ("peers/nul", "nul.example")],
)
def test_a_template_with_a_windows_device_name_is_refused_naming_it(
    tmp_path: Path, template: str, part: str
) -> None:
    with pytest.raises(StorePathError) as caught:
        resolve_store_path(tmp_path, template, "example")
    assert repr(template) in str(caught.value)
    assert repr(part) in str(caught.value)


# -- symbolic links -----------------------------------------------------------------------------


def test_a_directory_below_the_state_dir_that_links_outside_it_is_refused_naming_both(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    outside = tmp_path / "outside"
    state.mkdir()
    outside.mkdir()
    (state / "peers").symlink_to(outside)

    with pytest.raises(StorePathError) as caught:
        resolve_store_path(state, "peers/{realm}.toml", "example")

    assert str(state / "peers") in str(caught.value)
    assert str(outside) in str(caught.value)
    assert list(outside.iterdir()) == []


def test_a_link_deeper_down_that_leads_outside_is_refused_too(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "a").mkdir(parents=True)
    (state / "a" / "b").symlink_to(tmp_path)

    with pytest.raises(StorePathError) as caught:
        resolve_store_path(state, "a/b/c/{realm}.toml", "example")

    assert str(state / "a" / "b") in str(caught.value)


def test_a_directory_link_that_stays_inside_the_state_dir_is_allowed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "real").mkdir(parents=True)
    (state / "peers").symlink_to(state / "real")

    path = resolve_store_path(state, "peers/{realm}.toml", "example")

    assert path == state / "peers" / "example.toml"


def test_a_state_dir_that_is_itself_a_link_works(tmp_path: Path) -> None:
    real = tmp_path / "big-disk" / "state"
    (real / "peers").mkdir(parents=True)
    state = tmp_path / "state"
    state.symlink_to(real)

    path = resolve_store_path(state, "peers/{realm}.toml", "example")
    with PeerFile.open(path, "example") as opened:
        opened.save(b"saved")

    assert (real / "peers" / "example.toml").read_bytes() == b"saved"


def test_an_absolute_path_may_lead_through_links(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    template = str(tmp_path / "link" / "{realm}.toml")

    path = resolve_store_path(tmp_path / "state", template, "example")
    with PeerFile.open(path, "example") as opened:
        opened.save(b"saved")

    assert (tmp_path / "elsewhere" / "example.toml").read_bytes() == b"saved"


@pytest.mark.parametrize("inside", [True, False], ids=["target-inside", "target-outside"])
def test_a_peer_file_that_is_a_symlink_is_refused_at_open_naming_its_target(
    tmp_path: Path, inside: bool
) -> None:
    path = tmp_path / "peers" / "example.toml"
    path.parent.mkdir()
    target = (path.parent if inside else tmp_path) / "real.toml"
    target.write_bytes(b"not ours to touch")
    path.symlink_to(target)

    with pytest.raises(StorePathError) as caught:
        PeerFile.open(path, "example")

    assert str(path) in str(caught.value)
    assert str(target) in str(caught.value)
    assert target.read_bytes() == b"not ours to touch"
    assert path.is_symlink()
    PeerFile.open(tmp_path / "peers" / "other.toml", "example").close()  # nothing left locked


def test_a_lock_file_that_is_a_symlink_is_refused_at_open(tmp_path: Path) -> None:
    target = tmp_path / "somewhere"
    target.write_bytes(b"")
    (tmp_path / "example.toml.lock").symlink_to(target)

    with pytest.raises(StorePathError) as caught:
        PeerFile.open(tmp_path / "example.toml", "example")

    assert str(tmp_path / "example.toml.lock") in str(caught.value)
    assert target.read_bytes() == b""


def test_a_peer_file_replaced_by_a_symlink_while_open_is_not_read_through(
    peer_file: PeerFile,
) -> None:
    secret = peer_file.path.parent / "secret"
    secret.write_bytes(encode("example", NOW, ENTRIES))
    peer_file.path.symlink_to(secret)

    with pytest.raises(StorePathError) as caught:
        load_file(peer_file, NOW)

    assert str(peer_file.path) in str(caught.value)
    assert "symbolic link" in str(caught.value)


def test_a_save_replaces_a_symlink_rather_than_writing_through_it(peer_file: PeerFile) -> None:
    target = peer_file.path.parent / "target"
    target.write_bytes(b"untouched")
    peer_file.path.symlink_to(target)

    peer_file.save(b"new")

    assert target.read_bytes() == b"untouched"
    assert not peer_file.path.is_symlink()
    assert peer_file.path.read_bytes() == b"new"


def test_a_peer_file_that_is_not_a_regular_file_cannot_be_loaded(peer_file: PeerFile) -> None:
    peer_file.path.mkdir()
    with pytest.raises(StoreFileError, match="not a regular file") as caught:
        load_file(peer_file, NOW)
    assert str(peer_file.path) in str(caught.value)


# -- permissions --------------------------------------------------------------------------------


def test_a_file_others_can_write_is_reported_at_open_and_saved_private_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "example.toml"
    path.write_bytes(b"old")
    path.chmod(0o666)

    with caplog.at_level(logging.WARNING, logger="thenodes_peerstore"):
        opened = PeerFile.open(path, "example")
    try:
        assert len(opened.warnings) == 1
        assert str(path) in opened.warnings[0]
        assert "0o666" in opened.warnings[0]
        assert [r.getMessage() for r in caplog.records] == list(opened.warnings)

        opened.save(b"new")
    finally:
        opened.close()

    assert mode(path) == 0o600
    assert path.read_bytes() == b"new"


def test_a_directory_others_can_write_is_reported_and_left_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)

    with caplog.at_level(logging.WARNING, logger="thenodes_peerstore"):
        opened = PeerFile.open(shared / "example.toml", "example")
    opened.close()

    assert len(opened.warnings) == 1
    assert str(shared) in opened.warnings[0]
    assert "0o777" in opened.warnings[0]
    assert any("0o777" in r.getMessage() for r in caplog.records)
    assert mode(shared) == 0o777


@pytest.mark.parametrize("file_mode", [0o600, 0o644, 0o400])
def test_a_file_only_its_owner_can_write_is_not_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, file_mode: int
) -> None:
    path = tmp_path / "example.toml"
    path.write_bytes(b"")
    path.chmod(file_mode)
    with caplog.at_level(logging.WARNING, logger="thenodes_peerstore"):
        opened = PeerFile.open(path, "example")
    opened.close()
    assert opened.warnings == ()
    assert caplog.records == []


# -- creating, locking, cleaning up -----------------------------------------------------------


def test_open_creates_missing_directories_private_to_the_owner(tmp_path: Path) -> None:
    path = tmp_path / "state" / "peers" / "example.toml"
    with PeerFile.open(path, "example"):
        assert mode(tmp_path / "state") == 0o700
        assert mode(tmp_path / "state" / "peers") == 0o700


def test_open_leaves_an_existing_directory_alone(tmp_path: Path) -> None:
    existing = tmp_path / "shared"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    with PeerFile.open(existing / "example.toml", "example"):
        pass
    assert mode(existing) == 0o755


def test_a_saved_file_is_private_to_the_owner_and_holds_exactly_the_bytes(
    peer_file: PeerFile,
) -> None:
    data = encode("example", NOW, ENTRIES)
    peer_file.save(data)
    assert peer_file.path.read_bytes() == data
    assert mode(peer_file.path) == 0o600


def test_the_lock_file_sits_beside_the_peer_file_and_outlives_the_store(tmp_path: Path) -> None:
    path = tmp_path / "example.toml"
    opened = PeerFile.open(path, "example")
    assert opened.lock_path == tmp_path / "example.toml.lock"
    assert opened.lock_path.exists()
    assert mode(opened.lock_path) == 0o600
    opened.close()
    assert opened.lock_path.exists()


def test_a_second_open_of_a_held_file_fails_naming_it_until_the_first_is_closed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "peers" / "example.toml"
    first = PeerFile.open(path, "example")
    with pytest.raises(StoreLockedError) as caught:
        PeerFile.open(path, "example")
    assert str(path) in str(caught.value)

    first.close()
    second = PeerFile.open(path, "example")
    second.close()


def test_a_file_in_the_way_of_the_directory_is_a_store_file_error_naming_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "peers").write_bytes(b"not a directory")
    with pytest.raises(StoreFileError) as caught:
        PeerFile.open(tmp_path / "peers" / "example.toml", "example")
    assert not isinstance(caught.value, OSError)
    assert str(tmp_path / "peers") in str(caught.value)
    assert (tmp_path / "peers").read_bytes() == b"not a directory"


def test_a_lock_file_that_cannot_be_opened_is_a_store_file_error_naming_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "example.toml.lock").mkdir()
    with pytest.raises(StoreFileError) as caught:
        PeerFile.open(tmp_path / "example.toml", "example")
    assert not isinstance(caught.value, OSError)
    assert str(tmp_path / "example.toml.lock") in str(caught.value)


def test_different_realm_files_do_not_lock_each_other(tmp_path: Path) -> None:
    with (
        PeerFile.open(tmp_path / "alpha.toml", "alpha"),
        PeerFile.open(tmp_path / "beta.toml", "beta"),
    ):
        pass


def test_leftovers_of_an_unfinished_save_are_removed_at_open(tmp_path: Path) -> None:
    stale = [tmp_path / ".example.toml.k2j3h4.tmp", tmp_path / ".example.toml.x.tmp"]
    kept = [
        tmp_path / ".other.toml.k2j3h4.tmp",
        tmp_path / "example.toml.corrupt-5",
        tmp_path / "notes.tmp",
        tmp_path / "example.toml",
    ]
    for path in stale + kept:
        path.write_bytes(b"x")

    with PeerFile.open(tmp_path / "example.toml", "example"):
        assert not any(p.exists() for p in stale)
        assert all(p.exists() for p in kept)


def test_cleaning_up_takes_a_name_with_glob_characters_literally(tmp_path: Path) -> None:
    own = tmp_path / ".p[ab].toml.x.tmp"
    lookalike = tmp_path / ".pa.toml.x.tmp"
    own.write_bytes(b"x")
    lookalike.write_bytes(b"x")

    with PeerFile.open(tmp_path / "p[ab].toml", "example"):
        assert not own.exists()
        assert lookalike.exists()


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary_file(
    peer_file: PeerFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = encode("example", NOW, ENTRIES[:1])
    peer_file.save(old)

    def disk_full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "replace", disk_full)
    with pytest.raises(OSError, match=os.strerror(errno.ENOSPC)) as caught:
        peer_file.save(encode("example", NOW + 60, ENTRIES))

    assert caught.value.errno == errno.ENOSPC
    assert peer_file.path.read_bytes() == old
    assert sorted(p.name for p in peer_file.path.parent.iterdir()) == [
        "example.toml",
        "example.toml.lock",
    ]


# -- loading ------------------------------------------------------------------------------------


def test_a_missing_file_loads_as_missing(peer_file: PeerFile) -> None:
    outcome = load_file(peer_file, NOW)
    assert outcome.status is LoadStatus.MISSING
    assert outcome.entries == ()


def test_a_saved_file_loads_intact_with_every_entry(peer_file: PeerFile) -> None:
    peer_file.save(encode("example", NOW, ENTRIES))
    outcome = load_file(peer_file, NOW)
    assert outcome.status is LoadStatus.INTACT
    assert outcome.entries == tuple(ENTRIES)
    assert outcome.quarantined is None


def test_a_torn_file_is_set_aside_and_its_complete_entries_salvaged(peer_file: PeerFile) -> None:
    data = encode("example", NOW, ENTRIES)
    torn = data[: data.rindex(b"[[peers]]")]
    peer_file.path.write_bytes(torn)

    outcome = load_file(peer_file, NOW)

    assert outcome.status is LoadStatus.SALVAGED
    assert outcome.entries == tuple(ENTRIES[:1])
    assert outcome.problems
    assert outcome.quarantined == peer_file.path.with_name(f"example.toml.corrupt-{NOW}")
    assert outcome.quarantined.read_bytes() == torn
    assert not peer_file.path.exists()


def test_a_second_quarantine_in_the_same_second_does_not_overwrite_the_first(
    peer_file: PeerFile,
) -> None:
    peer_file.path.write_bytes(b"first garbage")
    first = load_file(peer_file, NOW).quarantined
    peer_file.path.write_bytes(b"second garbage")
    second = load_file(peer_file, NOW).quarantined

    assert first is not None
    assert second is not None
    assert first != second
    assert first.read_bytes() == b"first garbage"
    assert second.read_bytes() == b"second garbage"


@pytest.mark.parametrize("data", [b"\x00\xff garbage \xfe", b"\xff" * 64, b"= not toml ["], ids=str)
def test_a_file_of_junk_is_set_aside_and_loads_empty(peer_file: PeerFile, data: bytes) -> None:
    peer_file.path.write_bytes(data)
    outcome = load_file(peer_file, NOW)
    assert outcome.status is LoadStatus.SALVAGED
    assert outcome.entries == ()
    assert outcome.quarantined is not None
    assert outcome.quarantined.read_bytes() == data


def test_a_file_over_the_size_cap_is_not_read_but_set_aside(
    peer_file: PeerFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = encode("example", NOW, ENTRIES)
    peer_file.path.write_bytes(data)
    monkeypatch.setattr(files, "MAX_FILE_BYTES", len(data) - 1)

    outcome = load_file(peer_file, NOW)

    assert outcome.status is LoadStatus.SALVAGED
    assert outcome.entries == ()
    assert outcome.quarantined is not None
    assert outcome.quarantined.read_bytes() == data


def test_a_file_of_a_newer_schema_is_left_untouched(peer_file: PeerFile) -> None:
    data = b'schema = 4\nrealm = "example"\nsaved_at = 1\nnew_feature = true\n'
    peer_file.path.write_bytes(data)

    outcome = load_file(peer_file, NOW)

    assert outcome.status is LoadStatus.NEWER_SCHEMA
    assert outcome.entries == ()
    assert peer_file.path.read_bytes() == data
    assert sorted(p.name for p in peer_file.path.parent.iterdir()) == [
        "example.toml",
        "example.toml.lock",
    ]


def test_another_realms_file_is_an_error_naming_it_and_is_left_untouched(
    peer_file: PeerFile,
) -> None:
    data = encode("other", NOW, ENTRIES)
    peer_file.path.write_bytes(data)

    with pytest.raises(RealmMismatchError) as caught:
        load_file(peer_file, NOW)

    assert str(peer_file.path) in str(caught.value)
    assert "'other'" in str(caught.value)
    assert peer_file.path.read_bytes() == data
