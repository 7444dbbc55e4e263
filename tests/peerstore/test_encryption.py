"""Encryption at rest: sealed peer files, their keys, and what a wrong or missing key does."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.books import fingerprint, open_book
from tests.support.clocks import FakeClock as Clock
from tests.support.command import run_peerstore as run
from tests.support.keys import SECRET_KEY, encrypted, write_key
from thenodes_peerstore import codec, sealing
from thenodes_peerstore.cli import main
from thenodes_peerstore.config import PersistenceConfig
from thenodes_peerstore.errors import (
    ConfigError,
    EncryptionUnavailableError,
    KeyRefusedError,
    KeyUnusableError,
    NewerSchemaError,
    PeerStoreError,
    RealmMismatchError,
    SealDamagedError,
)
from thenodes_peerstore.model import PeerEntry, Source
from thenodes_peerstore.persistent import LoadStatus, PersistentPeerStore, load_file
from thenodes_peerstore.sealing import MAGIC, Key, Sealing

START = 1_763_700_000
REALM = "example"
VERSION = "1.0"
PEERS = ["45.76.12.34:7447", "91.121.5.6:7447", "[2001:db8::10]:7447"]


def fill(path: Path, config: PersistenceConfig, clock: Clock, addrs: list[str] = PEERS) -> None:
    with open_book(path, clock, config, version=VERSION) as book:
        for n, addr in enumerate(addrs):
            book.store.record_connected(addr, node_id=f"node-{n}")


def addrs_of(book: PersistentPeerStore) -> set[str]:
    return {e.addr for e in book.store.entries()}


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A raw key, kept outside the state directory."""
    (tmp_path / "keys").mkdir(mode=0o700)
    return write_key(tmp_path / "keys" / "realm.key")


@pytest.fixture
def peers(tmp_path: Path) -> Path:
    return tmp_path / "state" / "plugins" / "peerstore" / f"{REALM}.toml"


# -- round trip --------------------------------------------------------------------------------


def test_round_trip_keeps_every_peer_and_no_address_is_readable_on_disk(
    key_file: Path, peers: Path
) -> None:
    clock = Clock()
    fill(peers, encrypted(key_file), clock)
    data = peers.read_bytes()
    assert data.startswith(MAGIC)
    assert not any(addr.encode() in data for addr in PEERS)
    assert b"node-0" not in data
    clock.t += 60
    with open_book(peers, clock, encrypted(key_file), version=VERSION) as book:
        assert addrs_of(book) == set(PEERS)
        assert book.writable
        assert set(book.store.reconnect_plan()) == set(PEERS)


@pytest.mark.parametrize(
    ("secret", "kdf"),
    [
        (SECRET_KEY, "none"),
        (SECRET_KEY.hex().encode() + b"\n", "none"),
        (b"correct horse battery staple\n", "scrypt"),
    ],
    ids=["raw", "hex", "passphrase"],
)
def test_each_kind_of_key_file_round_trips(
    tmp_path: Path, peers: Path, secret: bytes, kdf: str
) -> None:
    key = write_key(tmp_path / "k", secret)
    fill(peers, encrypted(key), Clock())
    envelope, _, _ = sealing.parse(peers.read_bytes())
    assert envelope.kdf.name == kdf
    if kdf == "scrypt":
        assert (envelope.kdf.n, envelope.kdf.r, envelope.kdf.p) == sealing.SCRYPT
        assert len(envelope.kdf.salt) == sealing.SALT_BYTES
    with open_book(peers, Clock(), encrypted(key), version=VERSION) as book:
        assert addrs_of(book) == set(PEERS)


def test_a_key_in_an_environment_variable_round_trips(
    peers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERSTORE_TEST_KEY", SECRET_KEY.hex())
    config = PersistenceConfig(enabled=True, encryption="aes-256-gcm", key_env="PEERSTORE_TEST_KEY")
    fill(peers, config, Clock())
    assert sealing.is_sealed(peers.read_bytes())
    with open_book(peers, Clock(), config, version=VERSION) as book:
        assert addrs_of(book) == set(PEERS)


def test_every_save_has_a_fresh_nonce(key_file: Path, peers: Path) -> None:
    clock = Clock()
    nonces = set()
    with open_book(
        peers, clock, encrypted(key_file, save_interval_secs=0), version=VERSION
    ) as book:
        for n in range(20):
            book.store.record_connected(f"45.76.12.{n + 1}:7447", node_id=f"node-{n}")
            assert book.save()
            nonces.add(sealing.parse(peers.read_bytes())[0].nonce)
    assert len(nonces) == 20


def test_the_envelope_written_is_the_envelope_read(key_file: Path) -> None:
    key = sealing.read_key_file(key_file)
    plain = codec.encode(REALM, START, [], version=VERSION)
    data = sealing.seal(plain, key, realm=REALM, version=VERSION)
    envelope, header, ciphertext = sealing.parse(data)
    assert header == envelope.header()
    assert data == header + ciphertext
    assert (envelope.realm, envelope.version, envelope.schema) == (REALM, VERSION, codec.SCHEMA)
    assert len(ciphertext) == len(plain) + sealing.TAG_BYTES
    opened = sealing.unseal(data, Sealing.with_key(key), path=Path("p"), realm=REALM)
    assert opened == plain


# -- a wrong or missing key never crashes and never loses the file ----------------------------


def _refused(
    peers: Path, config: PersistenceConfig, caplog: pytest.LogCaptureFixture, *names: str
) -> None:
    """Open, record, close: the store ran in memory, the file is as it was, the log says why."""
    before = fingerprint(peers)
    caplog.clear()
    with (
        caplog.at_level(logging.ERROR, "thenodes_peerstore"),
        open_book(peers, Clock(), config, version=VERSION) as book,
    ):
        assert not book.writable
        assert len(book.store) == 0  # the node starts from its seeds
        book.store.record_connected("203.0.113.99:7447", node_id="node-z")
        assert not book.save()
    assert fingerprint(peers) == before
    assert sorted(p.name for p in peers.parent.iterdir()) == [peers.name, f"{peers.name}.lock"]
    errors = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert str(peers) in errors
    for name in names:
        assert name in errors


def test_a_wrong_key_leaves_the_file_untouched_and_says_which_key_and_file(
    tmp_path: Path, key_file: Path, peers: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(peers, encrypted(key_file), Clock())
    wrong = write_key(tmp_path / "wrong.key", bytes(range(100, 132)))
    _refused(peers, encrypted(wrong), caplog, f"key_file {wrong}", "another key")
    with open_book(peers, Clock(), encrypted(key_file), version=VERSION) as book:
        assert addrs_of(book) == set(PEERS)


def test_a_wrong_passphrase_is_a_wrong_key(
    tmp_path: Path, peers: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(peers, encrypted(write_key(tmp_path / "a", b"one passphrase")), Clock())
    wrong = write_key(tmp_path / "b", b"another passphrase")
    _refused(peers, encrypted(wrong), caplog, f"key_file {wrong}")


@pytest.mark.parametrize(
    "broken",
    [
        lambda d: {"key_file": str(d / "no-such.key")},
        lambda d: {"key_file": str(write_key(d / "open.key", SECRET_KEY, 0o640))},
        lambda d: {"key_file": str(write_key(d / "empty.key", b"\n"))},
        lambda d: {"key_env": "PEERSTORE_UNSET_KEY"},
        lambda d: {},
        lambda d: {"key_file": str(d / "k1"), "key_env": "PEERSTORE_UNSET_KEY"},
    ],
    ids=["missing", "group-readable", "empty", "unset-variable", "none-given", "both-given"],
)
def test_a_missing_or_unusable_key_leaves_the_file_untouched(
    tmp_path: Path,
    key_file: Path,
    peers: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    broken: Callable[[Path], dict[str, str]],
) -> None:
    monkeypatch.delenv("PEERSTORE_UNSET_KEY", raising=False)
    fill(peers, encrypted(key_file), Clock())
    settings_ = broken(tmp_path)
    config = PersistenceConfig(enabled=True, encryption="aes-256-gcm", **settings_)
    _refused(peers, config, caplog, *(f"{k} {v}" for k, v in settings_.items()))


def test_with_an_unusable_key_and_no_file_yet_nothing_is_written(
    tmp_path: Path, peers: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = encrypted(tmp_path / "no-such.key")
    with caplog.at_level(logging.ERROR), open_book(peers, Clock(), config, version=VERSION) as book:
        book.store.record_connected(PEERS[0], node_id="node-a")
        assert not book.writable
    assert not peers.exists()
    assert f"key_file {tmp_path / 'no-such.key'}" in caplog.text


def test_an_encrypted_file_with_encryption_off_is_an_error_and_stays(
    key_file: Path, peers: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(peers, encrypted(key_file), Clock())
    _refused(peers, PersistenceConfig(enabled=True), caplog, "encrypted", "encryption is off")


def test_a_key_file_inside_the_state_directory_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    key = write_key(state / "realm.key")
    with caplog.at_level(logging.WARNING):
        keys = Sealing.from_config(encrypted(key), state)
    assert keys.key is not None
    assert "inside the state directory" in caplog.text


def test_rekey_to_a_key_inside_the_state_directory_warns_as_the_node_does(
    tmp_path: Path, peers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "node.toml"
    state = tmp_path / "state"
    config.write_text(
        tomli_w.dumps(
            {
                "realm": {"code": REALM},
                "node": {"state_dir": str(state)},
                "network": {"persistence": {"enabled": True}},
            }
        )
    )
    fill(peers, PersistenceConfig(enabled=True), Clock())
    outside = write_key(tmp_path / "outside.key")
    inside = write_key(state / "realm.key")

    status, _, quiet = run(capsys, "rekey", "-c", config, "--new-key-file", outside)
    assert status == 0, quiet
    status, _, err = run(
        capsys, "rekey", "-c", config, "--key-file", outside, "--new-key-file", inside
    )

    assert status == 0, err
    assert "inside the state directory" not in quiet
    assert (
        f"peerstore: warning: key_file {inside} is inside the state directory {state}: a copy "
        "of that directory carries its key; keep the key elsewhere"
    ) in err


@pytest.mark.parametrize("secret", [b"x\n", b"eleven char\n"], ids=["1", "11"])
def test_a_short_passphrase_is_warned_of_by_the_node_and_the_command_and_still_opens_the_file(
    tmp_path: Path,
    peers: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    secret: bytes,
) -> None:
    key = write_key(tmp_path / "short.key", secret)
    length = len(secret.strip())
    warning = (
        f"key_file {key} is read as a passphrase of {length} character{'s' * (length > 1)}: "
        f"under {sealing.MIN_PASSPHRASE_CHARS}, one that short can be guessed despite scrypt"
    )
    with caplog.at_level(logging.WARNING):
        fill(peers, encrypted(key), Clock())  # the node
    assert warning in caplog.text

    status, out, err = run(capsys, "list", "-f", peers, "--key-file", key)  # the command

    assert status == 0, err
    assert all(addr in out for addr in PEERS)
    assert f"peerstore: warning: {warning}" in err


def test_a_passphrase_of_twelve_characters_or_a_random_key_is_not_warned_of(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        for secret in (b"twelve chars\n", SECRET_KEY, SECRET_KEY.hex().encode()):
            sealing.read_key_file(write_key(tmp_path / "k", secret))
    assert "passphrase" not in caplog.text


def test_a_key_file_that_others_can_read_is_refused_naming_it(tmp_path: Path) -> None:
    key = write_key(tmp_path / "k", SECRET_KEY, 0o604)
    with pytest.raises(KeyUnusableError, match=f"key_file {key} is readable by group or others"):
        sealing.read_key_file(key)


def test_encryption_is_none_or_aes_256_gcm() -> None:
    assert PersistenceConfig().encryption == "none"
    with pytest.raises(ConfigError, match="encryption = 'aes-128-cbc'"):
        PersistenceConfig.from_mapping({"encryption": "aes-128-cbc"})


def test_without_cryptography_encryption_is_a_startup_error_naming_the_extra(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(EncryptionUnavailableError, match=r"thenodes-peerstore\[encryption\]"):
        Sealing.from_config(encrypted(key_file))
    assert isinstance(EncryptionUnavailableError("x"), ConfigError)


# -- damage, other realms, other schemas, older files -----------------------------------------


def _sealed_file(key: Key, entries: int = 2) -> bytes:
    plain = codec.encode(
        REALM,
        START,
        [PeerEntry.new(f"45.76.12.{n + 1}:7447", Source.CONNECTED, START) for n in range(entries)],
        version=VERSION,
    )
    return sealing.seal(plain, key, realm=REALM, version=VERSION)


def _flipped(data: bytes, at: int, mask: int) -> bytes:
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :]


def test_a_flipped_byte_at_any_position_is_never_read(key_file: Path) -> None:
    key = sealing.read_key_file(key_file)
    data = _sealed_file(key)
    keys = Sealing.with_key(key)
    for at in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            with pytest.raises(PeerStoreError) as caught:
                sealing.unseal(
                    _flipped(data, at, mask), keys, path=Path("p"), realm=REALM, version=VERSION
                )
            assert isinstance(
                caught.value,
                SealDamagedError | KeyRefusedError | RealmMismatchError | NewerSchemaError,
            )


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_node_never_loads_a_peer_from_an_altered_file_and_never_loses_it(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    root = tmp_path_factory.mktemp("flip")
    key_file = write_key(root / "k")
    original = _sealed_file(sealing.read_key_file(key_file))
    at = data.draw(st.integers(0, len(original) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="mask")
    altered = _flipped(original, at, mask)
    peers = root / "peers" / f"{REALM}.toml"
    peers.parent.mkdir()
    peers.write_bytes(altered)
    try:
        book = open_book(peers, Clock(), encrypted(key_file), version=VERSION)
    except RealmMismatchError:
        assert peers.read_bytes() == altered  # a startup error; the file is never written
        return
    with book:
        assert len(book.store) == 0
    keys = Sealing.with_key(sealing.read_key_file(key_file))

    def holds_it(path: Path) -> bool:
        data = path.read_bytes()
        if data == altered:
            return True
        # An altered first line is no longer an encrypted file's: a damaged plain file, which
        # is set aside encrypted under the key, every byte of it.
        return path.name.startswith(f"{peers.name}.corrupt-") and (
            sealing.unseal(data, keys, path=path, realm=REALM, version=VERSION) == altered
        )

    kept = [p for p in peers.parent.iterdir() if not p.name.endswith(".lock") and holds_it(p)]
    assert kept, "the altered file is neither in place nor set aside"


def test_a_damaged_encrypted_file_is_set_aside_and_salvages_nothing(
    key_file: Path, peers: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(peers, encrypted(key_file), Clock())
    data = peers.read_bytes()
    peers.write_bytes(data[:-40])  # torn
    with (
        caplog.at_level(logging.WARNING),
        open_book(peers, Clock(), encrypted(key_file), version=VERSION) as book,
    ):
        assert len(book.store) == 0
        assert book.writable
    (aside,) = peers.parent.glob(f"{peers.name}.corrupt-*")
    assert aside.read_bytes() == data[:-40]
    assert "fails authentication" in caplog.text
    assert str(aside) in caplog.text


def test_a_file_moved_to_another_realm_is_refused(
    tmp_path: Path, key_file: Path, peers: Path
) -> None:
    fill(peers, encrypted(key_file), Clock())
    other = tmp_path / "state" / "plugins" / "peerstore" / "other.toml"
    other.write_bytes(peers.read_bytes())
    with pytest.raises(RealmMismatchError, match="other"):
        PersistentPeerStore.open(
            path=other, realm="other", clock=Clock(), config=encrypted(key_file)
        )
    assert other.read_bytes() == peers.read_bytes()


def test_a_header_edited_to_another_realm_or_schema_fails_authentication(key_file: Path) -> None:
    key = sealing.read_key_file(key_file)
    data = _sealed_file(key)
    envelope, _header, ciphertext = sealing.parse(data)
    keys = Sealing.with_key(key)
    for edit in (
        {"realm": "other"},
        {"schema": 1},
        {"version": "2.0"},
        {"version": None},
    ):
        forged = attrs.evolve(envelope, **edit)
        realm = forged.realm
        with pytest.raises(SealDamagedError, match="fails authentication"):
            sealing.unseal(forged.header() + ciphertext, keys, path=Path("p"), realm=realm)


def test_rollback_an_older_genuine_file_opens_one_from_before_a_rekey_does_not(
    tmp_path: Path, key_file: Path, peers: Path
) -> None:
    """AEAD cannot tell an older genuine file of the same key from the newest: it opens, with
    its older saved_at. A file sealed before a key rotation is refused, and left untouched."""
    clock = Clock()
    fill(peers, encrypted(key_file), clock, PEERS[:1])
    older = peers.read_bytes()
    clock.t += 3600
    fill(peers, encrypted(key_file), clock, PEERS[1:])
    peers.write_bytes(older)  # rolled back by someone who can write the state directory
    outcome = load_file_of(peers, encrypted(key_file))
    assert outcome.status is LoadStatus.INTACT
    assert outcome.saved_at == START
    new_key = write_key(tmp_path / "new.key", bytes(range(60, 92)))
    peers.write_bytes(_rekeyed(peers, key_file, new_key))
    peers.write_bytes(older)
    assert load_file_of(peers, encrypted(new_key)).status is LoadStatus.KEY_REFUSED
    assert peers.read_bytes() == older


def load_file_of(path: Path, config: PersistenceConfig) -> Any:
    from thenodes_peerstore.files import PeerFile

    with PeerFile.open(path, REALM) as peer_file:
        return load_file(peer_file, START, version=VERSION, keys=Sealing.from_config(config))


def _rekeyed(peers: Path, old: Path, new: Path) -> bytes:
    assert (
        main(["rekey", "-f", str(peers), "--key-file", str(old), "--new-key-file", str(new)]) == 0
    )
    return peers.read_bytes()


# -- migration ---------------------------------------------------------------------------------


def test_a_plain_file_is_encrypted_at_the_next_save(
    key_file: Path, peers: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    fill(peers, PersistenceConfig(enabled=True), clock)
    assert peers.read_bytes().startswith(b"schema = ")
    with (
        caplog.at_level(logging.INFO, "thenodes_peerstore"),
        open_book(peers, clock, encrypted(key_file), version=VERSION) as book,
    ):
        assert addrs_of(book) == set(PEERS)
        assert book.dirty
    assert "is not encrypted; the next save encrypts it with key_file" in caplog.text
    assert sealing.is_sealed(peers.read_bytes())
    with open_book(peers, clock, encrypted(key_file), version=VERSION) as book:
        assert addrs_of(book) == set(PEERS)


# -- the command -------------------------------------------------------------------------------


def test_the_command_reads_and_writes_with_the_key(
    key_file: Path, peers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(peers, encrypted(key_file), Clock())
    status, _, err = run(capsys, "list", "-f", peers)
    assert status == 2
    assert "is encrypted" in err
    assert "--key-file" in err
    status, out, _ = run(capsys, "list", "-f", peers, "--key-file", key_file)
    assert status == 0
    assert all(addr in out for addr in PEERS)
    status, out, _ = run(capsys, "verify", "-f", peers, "--key-file", key_file)
    assert status == 0
    assert out.startswith("intact")
    status, _, _ = run(capsys, "add", "203.0.113.7:7447", "-f", peers, "--key-file", key_file)
    assert status == 0
    assert sealing.is_sealed(peers.read_bytes())
    status, _, _ = run(capsys, "seal", "-f", peers, "--key-file", key_file)
    assert status == 0
    assert sealing.is_sealed(peers.read_bytes())
    with open_book(peers, Clock(), encrypted(key_file), version=VERSION) as book:
        assert "203.0.113.7:7447" in addrs_of(book)


def test_the_command_takes_the_key_from_the_node_config(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "node.toml"
    persistence = {"enabled": True, "encryption": "aes-256-gcm", "key_file": str(key_file)}
    config.write_text(
        tomli_w.dumps(
            {
                "realm": {"code": REALM},
                "node": {"state_dir": str(tmp_path / "state")},
                "network": {"persistence": persistence},
            }
        )
    )
    records = tmp_path / "peers.json"
    records.write_text('[{"addr": "45.76.12.34:7447", "source": "Bootstrap", "failures": 0}]')
    status, _, err = run(capsys, "import", "-c", config, "--thenodes", records)
    assert status == 0, err
    peers = tmp_path / "state" / "plugins" / "peerstore" / f"{REALM}.toml"
    assert sealing.is_sealed(peers.read_bytes())
    status, out, _ = run(capsys, "list", "-c", config)
    assert status == 0
    assert "45.76.12.34:7447" in out


def test_an_export_is_plaintext_only_when_asked_for(
    key_file: Path, peers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(peers, encrypted(key_file), Clock())
    for form in ("thenodes", "json"):
        status, out, err = run(
            capsys, "export", "--format", form, "-f", peers, "--key-file", key_file
        )
        assert status == 2
        assert "--plaintext" in err
        assert PEERS[0] not in out
        status, out, _ = run(
            capsys, "export", "--format", form, "--plaintext", "-f", peers, "--key-file", key_file
        )
        assert status == 0
        assert PEERS[0] in out
    status, out, _ = run(
        capsys, "export", "--format", "toml", "--plaintext", "-f", peers, "--key-file", key_file
    )
    assert status == 0
    assert out.startswith("schema = ")
    assert PEERS[0] in out


def test_an_encrypted_toml_export_is_a_sealed_peer_file(
    key_file: Path, peers: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    fill(peers, encrypted(key_file), Clock())
    capfdbinary.readouterr()
    assert main(["export", "--format", "toml", "-f", str(peers), "--key-file", str(key_file)]) == 0
    out = capfdbinary.readouterr().out
    assert sealing.is_sealed(out)
    plain = sealing.unseal(
        out, Sealing.with_key(sealing.read_key_file(key_file)), path=peers, realm=REALM
    )
    assert PEERS[0].encode() in plain


# -- rekey -------------------------------------------------------------------------------------


def test_rekey_seals_with_the_new_key_only(
    tmp_path: Path, key_file: Path, peers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(peers, encrypted(key_file), Clock())
    new_key = write_key(tmp_path / "new.key", b"a new passphrase\n")
    status, out, err = run(
        capsys, "rekey", "-f", peers, "--key-file", key_file, "--new-key-file", new_key
    )
    assert status == 0, err
    assert f"now encrypted with key_file {new_key}" in out
    assert load_file_of(peers, encrypted(key_file)).status is LoadStatus.KEY_REFUSED
    with open_book(peers, Clock(), encrypted(new_key), version=VERSION) as book:
        assert addrs_of(book) == set(PEERS)


def test_rekey_encrypts_a_plain_file(
    key_file: Path, peers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(peers, PersistenceConfig(enabled=True), Clock())
    status, _, err = run(capsys, "rekey", "-f", peers, "--new-key-file", key_file)
    assert status == 0, err
    with open_book(peers, Clock(), encrypted(key_file), version=VERSION) as book:
        assert addrs_of(book) == set(PEERS)


def test_rekey_that_fails_at_the_replace_leaves_the_old_file(
    tmp_path: Path,
    key_file: Path,
    peers: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(peers, encrypted(key_file), Clock())
    before = peers.read_bytes()
    new_key = write_key(tmp_path / "new.key", bytes(range(60, 92)))

    def failing_replace(src: object, dst: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", failing_replace)
    status, _, err = run(
        capsys, "rekey", "-f", peers, "--key-file", key_file, "--new-key-file", new_key
    )
    monkeypatch.undo()
    assert status == 2
    assert "unchanged" in err
    assert peers.read_bytes() == before
    with open_book(peers, Clock(), encrypted(key_file), version=VERSION) as book:
        assert addrs_of(book) == set(PEERS)


CRASHING_REKEY = textwrap.dedent(
    """
    import os, sys
    from thenodes_peerstore.cli import main
    real_replace = os.replace
    def crash(src, dst):
        if sys.argv[1] == "after":
            real_replace(src, dst)
        os._exit(9)  # the process dies: no cleanup, no flush
    os.replace = crash
    main(sys.argv[2:])
    """
)


@pytest.mark.parametrize("when", ["before", "after"])
def test_rekey_killed_at_the_replace_leaves_the_old_file_or_the_new_never_neither(
    tmp_path: Path, key_file: Path, peers: Path, when: str
) -> None:
    fill(peers, encrypted(key_file), Clock())
    new_key = write_key(tmp_path / "new.key", bytes(range(60, 92)))
    args = ["rekey", "-f", str(peers), "--key-file", str(key_file), "--new-key-file", str(new_key)]
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_REKEY, when, *args],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 9, done.stderr
    old_opens = load_file_of(peers, encrypted(key_file)).status is LoadStatus.INTACT
    new_opens = load_file_of(peers, encrypted(new_key)).status is LoadStatus.INTACT
    assert (old_opens, new_opens) == ((True, False) if when == "before" else (False, True))
    with open_book(
        peers, Clock(), encrypted(new_key if new_opens else key_file), version=VERSION
    ) as book:
        assert addrs_of(book) == set(PEERS)
    assert not list(peers.parent.glob(".*.tmp"))  # the next open clears what the crash left


# -- through the plugin ------------------------------------------------------------------------


def test_a_node_restarts_from_its_encrypted_file_and_from_its_seeds_with_a_wrong_key(
    tmp_path: Path,
) -> None:
    from hostsim.clock import VirtualClock
    from hostsim.host import PluginHost

    key = write_key(tmp_path / "realm.key")
    wrong = write_key(tmp_path / "wrong.key", bytes(range(100, 132)))
    clock = VirtualClock(START)

    def node(key_path: Path) -> PluginHost:
        config = tmp_path / "host.toml"
        persistence = {"enabled": True, "encryption": "aes-256-gcm", "key_file": str(key_path)}
        config.write_text(
            tomli_w.dumps(
                {
                    "port": 7447,
                    "bootstrap_nodes": ["203.0.113.1:7447"],
                    "realm": {"name": "Example"},
                    "node": {
                        "id": "node-a",
                        "state_dir": "state",
                        "listen_addrs": ["198.51.100.5:7447"],
                    },
                    "network": {"persistence": persistence},
                    "plugins": {"enabled": ["peerstore"]},
                }
            )
        )
        return PluginHost.from_file(config, clock=clock)

    host = node(key)
    host.start()
    host.connect(PEERS[0], node_id="node-b")
    host.advance(120)
    host.shutdown()
    stored = host.config.state_dir / "plugins" / "peerstore" / "example.toml"
    before = stored.read_bytes()
    assert sealing.is_sealed(before)

    host = node(key)
    assert [d.addr for d in host.start() if d.origin != "seed"] == [PEERS[0]]
    host.shutdown()

    host = node(wrong)
    assert [d.origin for d in host.start()] == ["seed"]
    host.connect(PEERS[1], node_id="node-c")
    host.advance(120)
    host.shutdown()
    assert stored.read_bytes() == before
