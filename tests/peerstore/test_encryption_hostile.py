"""Hostile keys and sealed headers: a header forged to make a start costly, a key file that is
a FIFO, a variable that is not UTF-8, whitespace around a key, a damaged plain file under
encryption. Each time the node starts (from its seeds when the file cannot be read), the
command says why in one line and prints no traceback, and nothing is lost."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hostsim.live.processes import free_port, write_node_config
from tests.support.books import fingerprint, open_book
from tests.support.clocks import FakeClock as Clock
from tests.support.command import run_peerstore as run
from tests.support.keys import SECRET_KEY, encrypted, write_key
from tests.support.processes import node_processes
from thenodes_peerstore import codec, sealing
from thenodes_peerstore.cli import main
from thenodes_peerstore.config import PersistenceConfig
from thenodes_peerstore.model import PeerEntry, Source
from thenodes_peerstore.persistent import PersistentPeerStore
from thenodes_peerstore.sealing import Key, Sealing

T = TypeVar("T")

START = 1_763_700_000
REALM = "example"
VERSION = "1.0"
PEERS = ["45.76.12.34:7447", "91.121.5.6:7447", "[2001:db8::10]:7447"]
PASSPHRASE = b"correct horse battery staple\n"
HEX = SECRET_KEY.hex().encode()
WAIT = 20.0
"""Seconds anything that must not wait has before the test fails."""


def fill(path: Path, config: PersistenceConfig, addrs: list[str] = PEERS) -> None:
    with open_book(path, Clock(), config, version=VERSION) as book:
        for n, addr in enumerate(addrs):
            book.store.record_connected(addr, node_id=f"node-{n}")


def addrs_of(book: PersistentPeerStore) -> set[str]:
    return {e.addr for e in book.store.entries()}


def env_config(name: str) -> PersistenceConfig:
    return PersistenceConfig(enabled=True, encryption="aes-256-gcm", key_env=name)


def kdf_of(path: Path) -> str:
    return sealing.parse(path.read_bytes())[0].kdf.name


def in_the_clear(directory: Path) -> list[str]:
    """The files in ``directory`` that hold a peer's address readable."""
    return sorted(
        p.name for p in directory.iterdir() if any(a.encode() in p.read_bytes() for a in PEERS)
    )


@pytest.fixture
def peers(tmp_path: Path) -> Path:
    return tmp_path / "state" / "plugins" / "peerstore" / f"{REALM}.toml"


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """Where the keys are kept: outside the state directory."""
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o700)
    return directory


# -- a header that names other scrypt parameters ---------------------------------------------


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Every scrypt derivation asked for, as (n, r, p). One that asks for other parameters
    than the store's fails as it fails in a process limited to 2 GiB of address space."""
    from cryptography.hazmat.primitives.kdf import scrypt as module

    real = module.Scrypt
    calls: list[tuple[int, int, int]] = []

    class Recording:
        def __init__(self, salt: bytes, length: int, n: int, r: int, p: int) -> None:
            calls.append((n, r, p))
            self.asked = (n, r, p)
            self.real = real(salt=salt, length=length, n=n, r=r, p=p)

        def derive(self, key_material: bytes) -> bytes:
            if self.asked != sealing.SCRYPT:
                raise MemoryError("Not enough memory to derive key.")
            return bytes(self.real.derive(key_material))

    monkeypatch.setattr(module, "Scrypt", Recording)
    return calls


SCRYPT_LINE = b"scrypt = [32768, 8, 1]"
FORGED = {
    "4-GiB": (SCRYPT_LINE, b"scrypt = [1048576, 32, 16]"),
    "one-digit": (SCRYPT_LINE, b"scrypt = [32767, 8, 1]"),
    "twice-the-work": (SCRYPT_LINE, b"scrypt = [65536, 8, 1]"),
    "p-2": (SCRYPT_LINE, b"scrypt = [32768, 8, 2]"),
    "long-salt": (b'salt = "', b'salt = "' + b"00" * 16),
}
"""Edits of a passphrase's header: the line it has, and what it is made to say."""
SAID = {
    "4-GiB": "scrypt = [1048576, 32, 16]: not the parameters this version writes",
    "one-digit": "scrypt = [32767, 8, 1]: not the parameters this version writes",
    "twice-the-work": "scrypt = [65536, 8, 1]: not the parameters this version writes",
    "p-2": "scrypt = [32768, 8, 2]: not the parameters this version writes",
    "long-salt": "salt: 32 bytes, not the 16 this version writes",
}
"""What the warning says of each."""


def forged(data: bytes, edit: tuple[bytes, bytes]) -> bytes:
    old, new = edit
    assert data.count(old) == 1
    return data.replace(old, new)


@pytest.fixture
def passphrase_file(keys_dir: Path, peers: Path) -> Path:
    """A passphrase's key file, and the peer file sealed with it (a scrypt header)."""
    key = write_key(keys_dir / "pass.key", PASSPHRASE)
    fill(peers, encrypted(key))
    assert kdf_of(peers) == "scrypt"
    return key


@pytest.mark.parametrize("edit", FORGED.keys())
def test_a_header_naming_other_scrypt_parameters_is_set_aside_before_anything_is_derived(
    peers: Path,
    passphrase_file: Path,
    scrypt_calls: list[tuple[int, int, int]],
    caplog: pytest.LogCaptureFixture,
    edit: str,
) -> None:
    data = forged(peers.read_bytes(), FORGED[edit])
    peers.write_bytes(data)
    scrypt_calls.clear()
    with (
        caplog.at_level(logging.WARNING, "thenodes_peerstore"),
        open_book(peers, Clock(), encrypted(passphrase_file), version=VERSION) as book,
    ):
        assert scrypt_calls == []  # not one derivation: the header alone is refused
        assert len(book.store) == 0  # the node starts from its seeds
        assert book.writable
        book.store.record_connected(PEERS[0], node_id="node-a")
    assert all(call == sealing.SCRYPT for call in scrypt_calls)  # its own save, as ever
    (aside,) = peers.parent.glob(f"{peers.name}.corrupt-*")
    assert aside.read_bytes() == data  # nothing lost
    assert SAID[edit] in caplog.text
    with open_book(peers, Clock(), encrypted(passphrase_file), version=VERSION) as book:
        assert addrs_of(book) == {PEERS[0]}


def test_the_command_reads_a_forged_header_as_damage_in_one_line_and_derives_nothing(
    peers: Path,
    passphrase_file: Path,
    scrypt_calls: list[tuple[int, int, int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    peers.write_bytes(forged(peers.read_bytes(), FORGED["4-GiB"]))
    before = fingerprint(peers)
    scrypt_calls.clear()
    status, out, err = run(capsys, "verify", "-f", peers, "--key-file", passphrase_file)
    assert status == 1  # the command's "damaged"
    assert out.startswith(f"damaged: peer file {peers}")
    assert "scrypt = [1048576, 32, 16]: not the parameters this version writes" in out
    status, out, err = run(capsys, "list", "-f", peers, "--key-file", passphrase_file)
    assert status == 0
    assert len(err.splitlines()) == 1
    assert "is damaged" in err
    assert scrypt_calls == []
    assert fingerprint(peers) == before


def _limited_to_2_gib() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.skipif(sys.platform != "linux", reason="an address-space limit as Linux sets it")
def test_peerstore_verify_of_a_4_gib_header_under_a_2_gib_address_space_says_damaged(
    peers: Path, passphrase_file: Path
) -> None:
    peers.write_bytes(forged(peers.read_bytes(), FORGED["4-GiB"]))
    verify = ["verify", "-f", str(peers), "--key-file", str(passphrase_file)]
    done = subprocess.run(
        [sys.executable, "-m", "thenodes_peerstore", *verify],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limited_to_2_gib,
        check=False,
    )
    assert "Traceback" not in done.stderr
    assert "MemoryError" not in done.stderr
    assert done.returncode == 1
    assert done.stdout.startswith("damaged:")


# -- a key file that is a FIFO -----------------------------------------------------------------


@pytest.fixture
def fifo(keys_dir: Path) -> Path:
    """A FIFO with no writer, where a key file is expected."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = keys_dir / "realm.key"
    os.mkfifo(path, 0o600)
    return path


def promptly(fifo: Path, call: Callable[[], T]) -> T:
    """``call()``, which must not wait on ``fifo``: if it still runs after WAIT seconds, a
    writer opens the FIFO to set it free, and the test fails."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(call())
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(WAIT)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # frees the waiting open
        thread.join(WAIT)
        pytest.fail(f"opening key file {fifo}, a FIFO with no writer, waited for a writer")
    if errors:
        raise errors[0]
    return results[0]


def test_a_key_file_that_is_a_fifo_is_refused_at_once_naming_it(fifo: Path) -> None:
    keys = promptly(fifo, lambda: Sealing.from_config(encrypted(fifo)))
    assert keys.key is None
    assert keys.problem == f"key_file {fifo} is a FIFO, not a regular file; refusing it"


def test_a_node_whose_key_file_is_a_fifo_starts_from_its_seeds_and_its_file_stays(
    keys_dir: Path, peers: Path, fifo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(peers, encrypted(write_key(keys_dir / "real.key")))
    before = fingerprint(peers)
    with caplog.at_level(logging.ERROR, "thenodes_peerstore"):
        book = promptly(fifo, lambda: open_book(peers, Clock(), encrypted(fifo), version=VERSION))
    with book:
        assert len(book.store) == 0
        assert not book.writable
        book.store.record_connected(PEERS[0], node_id="node-a")
    assert fingerprint(peers) == before
    assert f"key_file {fifo} is a FIFO" in caplog.text


def test_the_command_refuses_a_fifo_key_file_in_one_line(
    keys_dir: Path, peers: Path, fifo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(peers, encrypted(write_key(keys_dir / "real.key")))
    status, out, err = promptly(fifo, lambda: run(capsys, "list", "-f", peers, "--key-file", fifo))
    assert status == 2
    assert err == f"peerstore: error: key_file {fifo} is a FIFO, not a regular file; refusing it\n"
    assert out == ""


def test_a_live_node_whose_key_file_is_a_fifo_listens_and_stops_on_sigterm(
    tmp_path: Path, fifo: Path
) -> None:
    persistence = {"encryption": "aes-256-gcm", "key_file": str(fifo)}
    config = write_node_config(
        tmp_path / "a.toml",
        node_id="a",
        port=free_port(),
        extra={"network": {"persistence": persistence}},
    )
    with node_processes(tmp_path, WAIT) as start:
        node = start(config, "a")  # returns once the node says it listens
        assert node.terminate() == 0  # SIGTERM: a graceful stop
        node.wait_for("stopped", WAIT)
    log = (tmp_path / "a.log").read_text(encoding="utf-8")
    assert f"key_file {fifo} is a FIFO" in log
    assert not (tmp_path / "a-state" / "plugins" / "peerstore" / "cluster.toml").exists()


# -- a variable that is not UTF-8 --------------------------------------------------------------

LATIN_1 = "caf\xe9 au lait".encode("latin-1")
"""A passphrase as a Latin-1 environment holds it: not UTF-8."""


@pytest.fixture
def latin_1_variable(monkeypatch: pytest.MonkeyPatch) -> str:
    if not os.supports_bytes_environ:
        pytest.skip("the environment is not bytes here")
    monkeypatch.setitem(os.environb, b"PEERSTORE_TEST_LATIN_1", LATIN_1)
    return "PEERSTORE_TEST_LATIN_1"


def test_a_passphrase_variable_that_is_not_utf_8_is_its_bytes_as_in_a_key_file(
    keys_dir: Path, peers: Path, latin_1_variable: str
) -> None:
    fill(peers, encrypted(write_key(keys_dir / "latin-1.key", LATIN_1)))
    with open_book(peers, Clock(), env_config(latin_1_variable), version=VERSION) as book:
        assert addrs_of(book) == set(PEERS)
        assert book.writable


def test_the_command_opens_a_file_with_a_variable_that_is_not_utf_8(
    keys_dir: Path, peers: Path, latin_1_variable: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(peers, encrypted(write_key(keys_dir / "latin-1.key", LATIN_1)))
    status, out, err = run(capsys, "list", "-f", peers, "--key-env", latin_1_variable)
    assert (status, err) == (0, "")
    assert all(addr in out for addr in PEERS)


def test_a_file_sealed_with_a_latin_1_variable_as_utf_8_still_opens_and_is_sealed_anew(
    keys_dir: Path,
    peers: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Where the locale is Latin-1, Python decodes the variable as Latin-1; versions before
    this one sealed with that text encoded as UTF-8. Such a file opens, and is sealed with the
    variable's own bytes at the next save."""
    as_before = Key(LATIN_1.decode("latin-1").encode(), passphrase=True, source="key_env K")
    plain = codec.encode(REALM, START, [PeerEntry.new(PEERS[0], Source.CONNECTED, START)])
    peers.parent.mkdir(parents=True)
    peers.write_bytes(sealing.seal(plain, as_before, realm=REALM, version=VERSION))
    with monkeypatch.context() as latin_1_locale:
        latin_1_locale.setattr(os, "fsencode", lambda text: text.encode("latin-1"))
        keys = sealing.read_key_env("K", {"K": LATIN_1.decode("latin-1")})
    with (
        caplog.at_level(logging.WARNING, "thenodes_peerstore"),
        PersistentPeerStore.open(
            path=peers, realm=REALM, clock=Clock(), version=VERSION, keys=Sealing.with_key(keys)
        ) as book,
    ):
        assert addrs_of(book) == {PEERS[0]}
        assert book.dirty
    assert "as versions before this one read it" in caplog.text
    with open_book(
        peers, Clock(), encrypted(write_key(keys_dir / "k", LATIN_1)), version=VERSION
    ) as book:
        assert addrs_of(book) == {PEERS[0]}


# -- whitespace around a key, and the kind of key read -----------------------------------------

PADDED_HEX = {
    "leading-space": b" " + HEX + b"\n",
    "two-final-newlines": HEX + b"\n\n",
    "trailing-tab": HEX + b"\t",
    "crlf-and-tab": b"\t" + HEX + b" \r\n",
}


@pytest.mark.parametrize("content", PADDED_HEX.values(), ids=PADDED_HEX.keys())
def test_64_hex_digits_in_surrounding_whitespace_are_the_key_the_same_digits_are_in_key_env(
    keys_dir: Path,
    peers: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    content: bytes,
) -> None:
    monkeypatch.setenv("PEERSTORE_TEST_HEX", HEX.decode())
    fill(peers, env_config("PEERSTORE_TEST_HEX"))
    key = write_key(keys_dir / "padded.key", content)
    with (
        caplog.at_level(logging.INFO, "thenodes_peerstore"),
        open_book(peers, Clock(), encrypted(key), version=VERSION) as book,
    ):
        assert addrs_of(book) == set(PEERS)
    assert f"with key_file {key}, read as 64 hex digits" in caplog.text


def test_a_passphrase_is_what_lies_between_its_surrounding_whitespace_in_a_file_or_a_variable(
    keys_dir: Path, peers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERSTORE_TEST_PASSPHRASE", "correct horse")
    fill(peers, env_config("PEERSTORE_TEST_PASSPHRASE"))
    key = write_key(keys_dir / "padded.key", b"  correct horse \n\n")
    with open_book(peers, Clock(), encrypted(key), version=VERSION) as book:
        assert addrs_of(book) == set(PEERS)


def test_a_file_sealed_with_padded_hex_read_as_a_passphrase_opens_and_is_sealed_anew(
    keys_dir: Path, peers: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Versions before this one read 64 hex digits with a leading space as a passphrase: a
    file they sealed opens with the same key file, and its next save seals it with the
    digits, which then open it from key_env too."""
    padded = write_key(keys_dir / "padded.key", b" " + HEX + b"\n\n")
    as_before = Key(b" " + HEX + b"\n", passphrase=True, source=f"key_file {padded}")
    plain = codec.encode(REALM, START, [PeerEntry.new(PEERS[0], Source.CONNECTED, START)])
    peers.parent.mkdir(parents=True)
    peers.write_bytes(sealing.seal(plain, as_before, realm=REALM, version=VERSION))
    with (
        caplog.at_level(logging.WARNING, "thenodes_peerstore"),
        open_book(peers, Clock(), encrypted(padded), version=VERSION) as book,
    ):
        assert addrs_of(book) == {PEERS[0]}
        assert book.writable
    assert f"sealed with key_file {padded} as versions before this one read it" in caplog.text
    assert kdf_of(peers) == "none"  # the digits, no longer a passphrase
    monkeypatch.setenv("PEERSTORE_TEST_HEX", HEX.decode())
    with open_book(peers, Clock(), env_config("PEERSTORE_TEST_HEX"), version=VERSION) as book:
        assert addrs_of(book) == {PEERS[0]}


KINDS = {
    "raw": (SECRET_KEY, "32 raw bytes"),
    "hex": (HEX + b"\n", "64 hex digits"),
    "passphrase": (PASSPHRASE, "a passphrase"),
}


@pytest.mark.parametrize(("secret", "kind"), KINDS.values(), ids=KINDS.keys())
def test_the_start_and_the_command_say_what_the_key_was_read_as(
    keys_dir: Path,
    peers: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    secret: bytes,
    kind: str,
) -> None:
    key = write_key(keys_dir / "realm.key", secret)
    with caplog.at_level(logging.INFO, "thenodes_peerstore"):
        fill(peers, encrypted(key))
    assert f'encryption = "aes-256-gcm" with key_file {key}, read as {kind}' in caplog.text
    status, out, _ = run(capsys, "verify", "-f", peers, "--key-file", key)
    assert status == 0
    assert f"encrypted, opened with key_file {key}, read as {kind}" in out
    other = write_key(keys_dir / "other.key", b"another passphrase")
    status, out, _ = run(capsys, "verify", "-f", peers, "--key-file", other)
    assert status == 2
    assert f"key_file {other}, read as a passphrase, does not open it" in out


# -- nothing set aside in the clear ------------------------------------------------------------


@pytest.fixture
def damaged_plain(peers: Path) -> bytes:
    """A plain peer file whose last entry was edited by hand to port 0: its trailer no longer
    matches, and that entry no longer validates."""
    fill(peers, PersistenceConfig(enabled=True))
    data = peers.read_bytes().replace(PEERS[2].encode(), b"[2001:db8::10]:0")
    peers.write_bytes(data)
    return data


def decrypted(capfdbinary: pytest.CaptureFixture[bytes], path: Path, key: Path) -> bytes:
    capfdbinary.readouterr()
    assert main(["decrypt", "-f", str(path), "--key-file", str(key)]) == 0
    return capfdbinary.readouterr().out


def test_with_encryption_on_a_damaged_plain_file_is_set_aside_sealed_every_byte_kept(
    keys_dir: Path,
    peers: Path,
    damaged_plain: bytes,
    caplog: pytest.LogCaptureFixture,
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    key = write_key(keys_dir / "realm.key")
    with (
        caplog.at_level(logging.WARNING, "thenodes_peerstore"),
        open_book(peers, Clock(), encrypted(key), version=VERSION) as book,
    ):
        assert addrs_of(book) == set(PEERS[:2])  # what still validates is salvaged
        assert book.writable
    assert in_the_clear(peers.parent) == []
    (aside,) = peers.parent.glob(f"{peers.name}.corrupt-*")
    assert sealing.is_sealed(aside.read_bytes())
    assert aside.stat().st_mode & 0o777 == 0o600
    assert str(aside) in caplog.text
    assert decrypted(capfdbinary, aside, key) == damaged_plain  # `peerstore decrypt`


def test_peerstore_reads_a_sealed_aside_copy_as_the_damaged_file_it_holds(
    keys_dir: Path, peers: Path, damaged_plain: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    key = write_key(keys_dir / "realm.key")
    open_book(peers, Clock(), encrypted(key), version=VERSION).close()
    (aside,) = peers.parent.glob(f"{peers.name}.corrupt-*")
    status, out, _ = run(capsys, "verify", "-f", aside, "--key-file", key)
    assert status == 1
    assert out.startswith(f"damaged: peer file {aside}")
    assert "2 entries would be salvaged" in out
    status, out, err = run(capsys, "decrypt", "-f", aside)
    assert status == 2
    assert err.count("\n") == 1
    assert "--key-file" in err
    status, _, err = run(capsys, "decrypt", "-f", peers.with_name("plain.toml"), "--key-file", key)
    assert status == 2
    assert "no peer file" in err


def test_with_encryption_on_and_no_usable_key_a_damaged_plain_file_stays_in_place(
    keys_dir: Path, peers: Path, damaged_plain: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, "thenodes_peerstore"),
        open_book(peers, Clock(), encrypted(keys_dir / "missing.key"), version=VERSION) as book,
    ):
        assert addrs_of(book) == set(PEERS[:2])  # in memory only
        assert not book.writable
    assert peers.read_bytes() == damaged_plain
    assert not list(peers.parent.glob("*.corrupt-*"))
    assert "not set aside in the clear" in caplog.text


def test_with_encryption_on_a_plain_file_too_large_to_read_stays_in_place(
    keys_dir: Path, peers: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from thenodes_peerstore.files import MAX_FILE_BYTES

    peers.parent.mkdir(parents=True)
    with peers.open("wb") as out:
        out.write(b"# " * (MAX_FILE_BYTES // 2 + 1))
    before = fingerprint(peers)
    key = write_key(keys_dir / "realm.key")
    with (
        caplog.at_level(logging.ERROR, "thenodes_peerstore"),
        open_book(peers, Clock(), encrypted(key), version=VERSION) as book,
    ):
        assert len(book.store) == 0
        assert not book.writable
    assert fingerprint(peers) == before
    assert not list(peers.parent.glob("*.corrupt-*"))
    assert "too large to set aside encrypted" in caplog.text


def test_a_sealed_aside_copy_that_cannot_replace_the_file_leaves_it_in_place_and_no_copy(
    keys_dir: Path,
    peers: Path,
    damaged_plain: bytes,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from thenodes_peerstore import files

    real_unlink = os.unlink

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if Path(path) == peers:
            raise PermissionError(13, "Permission denied")
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(files.os, "unlink", unlink)
    key = write_key(keys_dir / "realm.key")
    with (
        caplog.at_level(logging.ERROR, "thenodes_peerstore"),
        open_book(peers, Clock(), encrypted(key), version=VERSION) as book,
    ):
        assert addrs_of(book) == set(PEERS[:2])
        assert not book.writable
    assert peers.read_bytes() == damaged_plain
    assert not list(peers.parent.glob("*.corrupt-*"))
    assert "could not be moved aside" in caplog.text


def test_peerstore_seal_with_a_key_keeps_a_plain_file_s_backup_sealed(
    keys_dir: Path,
    peers: Path,
    damaged_plain: bytes,
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    key = write_key(keys_dir / "realm.key")
    assert main(["seal", "-f", str(peers), "--key-file", str(key)]) == 0
    assert in_the_clear(peers.parent) == []
    (backup,) = peers.parent.glob(f"{peers.name}.bak-*")
    assert decrypted(capfdbinary, backup, key) == damaged_plain
