"""Encryption at rest: the sealed peer file's envelope, stated once, and the keys that open it.

A sealed file is a short TOML header, a blank line, then the AES-256-GCM ciphertext (tag
included) of the plain peer file :mod:`thenodes_peerstore.codec` writes::

    # thenodes-peerstore encrypted peer file
    envelope = 1
    encryption = "aes-256-gcm"
    schema = 2
    realm = "example"
    version = "1.0"
    kdf = "none"
    key_id = "<16 hex digits>"
    nonce = "<24 hex digits>"

    <ciphertext>

The whole header, every byte up to and including the blank line, is the associated data: the
realm, its version, the schema, the key derivation and the nonce are bound to the ciphertext, so
a file moved to another realm, or edited to claim another schema, fails authentication. The
schema is the plain file's own (2, or 3 when an entry holds a certificate field), so an earlier
version opens what it can read and leaves the rest untouched. The
nonce is 96 fresh random bits per save. ``key_id`` (an HMAC of a constant under the key) tells a
wrong key, which leaves the file untouched, from a damaged file, which is set aside. A
passphrase goes through scrypt; its salt and parameters are in the header (``kdf = "scrypt"``,
``salt``, ``scrypt = [n, r, p]``). A header is read only if it names what this version writes:
the parameters :data:`SCRYPT` and a salt of :data:`SALT_BYTES` bytes, so a forged header cannot
make a start pay for a costly derivation; any other is a damaged file.

One AEAD covers the whole body: a torn or altered sealed file yields nothing, where a plain file
yields its whole entries. An older sealed file of the same key and realm opens: AEAD cannot tell
a genuine older file from the newest one.

Needs ``cryptography`` (the ``encryption`` extra), imported only when a key is used.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from thenodes_console import counted
from thenodes_peerstore.codec import NEWEST_SCHEMA, schema_named, toml_string
from thenodes_peerstore.config import AES_256_GCM, ENCRYPTIONS, NONE, PersistenceConfig
from thenodes_peerstore.errors import (
    EncryptionUnavailableError,
    KeyRefusedError,
    KeyUnusableError,
    NewerSchemaError,
    RealmMismatchError,
    SealDamagedError,
)

logger = logging.getLogger(__name__)

EXTRA = "thenodes-peerstore[encryption]"

MAGIC = b"# thenodes-peerstore encrypted peer file\n"
"""The first line of every sealed file, and of no plain one."""
ENVELOPE = 1
"""The envelope's own layout version."""
_END = b"\n\n"
MAX_HEADER = 4096
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SEAL_CHUNK = 64 * 1024
"""Bytes encrypted at a time by a save."""
KEY_ID_HEX = 16
SCRYPT = (1 << 15, 8, 1)
"""n, r, p for a passphrase: about 32 MiB and a tenth of a second, once per process and salt.
The only parameters a file's header may name: a header naming others (a forged one asking for
gigabytes, an edited digit) is a damaged file, refused before anything is derived. A version
that writes other parameters writes a newer ``envelope``."""
SALT_BYTES = 16
"""The salt of a passphrase's file; a header naming a salt of another length is damaged."""
MIN_PASSPHRASE_CHARS = 12
"""A passphrase shorter than this is warned of, never refused (files sealed with one must still
open). scrypt makes each guess cost about a tenth of a CPU-second and 32 MiB, but a passphrase
a person chose, under 12 characters, is within reach of a dictionary or of a search on rented
hardware; twelve random letters and digits already hold 62 bits. A random key (32 bytes, or 64
hex digits) needs no stretching at all."""
MAX_KEY_FILE = 4096
_KEY_ID_LABEL = b"thenodes-peerstore key id"
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)


def require_backend() -> None:
    """Raise :class:`EncryptionUnavailableError` when ``cryptography`` is not installed."""
    try:
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401, PLC0415
    except ImportError as exc:
        raise EncryptionUnavailableError(
            f'[network.persistence] encryption = "{AES_256_GCM}" needs the cryptography '
            f"package: pip install '{EXTRA}'"
        ) from exc


# -- the envelope ------------------------------------------------------------------------------


@attrs.frozen
class Kdf:
    """How the AES key is made from the secret: as is (``none``) or through scrypt."""

    name: str = NONE
    salt: bytes = b""
    n: int = 0
    r: int = 0
    p: int = 0


@attrs.frozen
class Envelope:
    """The header of a sealed file: everything in it is associated data."""

    realm: str
    version: str | None
    schema: int
    kdf: Kdf
    key_id: str
    nonce: bytes
    encryption: str = AES_256_GCM
    envelope: int = ENVELOPE

    def header(self) -> bytes:
        """The header as written, blank line included: the associated data."""
        lines = [
            f"envelope = {self.envelope}",
            f"encryption = {toml_string(self.encryption)}",
            f"schema = {self.schema}",
            f"realm = {toml_string(self.realm)}",
        ]
        if self.version is not None:
            lines.append(f"version = {toml_string(self.version)}")
        lines.append(f"kdf = {toml_string(self.kdf.name)}")
        if self.kdf.name == "scrypt":
            lines.append(f'salt = "{self.kdf.salt.hex()}"')
            lines.append(f"scrypt = [{self.kdf.n}, {self.kdf.r}, {self.kdf.p}]")
        lines.append(f'key_id = "{self.key_id}"')
        lines.append(f'nonce = "{self.nonce.hex()}"')
        return MAGIC + "\n".join(lines).encode() + _END


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` is a sealed file (else it is read as a plain one)."""
    return data.startswith(MAGIC)


def parse(data: bytes) -> tuple[Envelope, bytes, memoryview]:
    """Split a sealed file into its envelope, its header bytes and its ciphertext.

    Raise :class:`SealDamagedError` for anything but a well-formed header and
    :class:`NewerSchemaError` for an envelope or schema newer than this version writes.
    """
    if not is_sealed(data):
        raise SealDamagedError("it does not start as an encrypted peer file")
    end = data.find(_END, len(MAGIC) - 1, MAX_HEADER)
    if end < 0:
        raise SealDamagedError("its encrypted-file header has no end")
    header = data[: end + len(_END)]
    ciphertext = memoryview(data)[end + len(_END) :]  # not copied: it can be 32 MiB
    try:
        table = tomllib.loads(header.decode())
        envelope = _envelope_of(table)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SealDamagedError(f"its encrypted-file header is unreadable ({exc})") from None
    if envelope.header() != header:
        raise SealDamagedError("its encrypted-file header is not as written")
    if len(ciphertext) < TAG_BYTES:
        raise SealDamagedError("it is cut short: no ciphertext")
    return envelope, header, ciphertext


def _envelope_of(table: dict[str, Any]) -> Envelope:
    def get(key: str, kind: type, default: object = KeyError) -> Any:
        value = table.get(key, default)
        if value is KeyError:
            raise KeyError(key)
        if value is not None and type(value) is not kind:
            raise TypeError(f"{key}: expected {kind.__name__}")
        return value

    envelope, schema = get("envelope", int), get("schema", int)
    if envelope > ENVELOPE or schema > NEWEST_SCHEMA:
        raise NewerSchemaError(
            f"encrypted-file envelope {envelope}, schema {schema}: newer than this version "
            f"reads (envelope {ENVELOPE}, schema {NEWEST_SCHEMA})",
            schema=max(schema, NEWEST_SCHEMA + 1),
        )
    if get("encryption", str) != AES_256_GCM:
        raise ValueError("encryption: not aes-256-gcm")
    kdf_name = get("kdf", str)
    if kdf_name == "scrypt":
        kdf = Kdf(
            "scrypt", bytes.fromhex(get("salt", str)), *_scrypt_parameters(get("scrypt", list))
        )
        if len(kdf.salt) != SALT_BYTES:
            raise ValueError(
                f"salt: {len(kdf.salt)} bytes, not the {SALT_BYTES} this version writes"
            )
    elif kdf_name == NONE:
        kdf = Kdf()
    else:
        raise ValueError(f"kdf: unknown {kdf_name!r}")
    nonce = bytes.fromhex(get("nonce", str))
    key_id = get("key_id", str)
    if len(nonce) != NONCE_BYTES or not re.fullmatch(f"[0-9a-f]{{{KEY_ID_HEX}}}", key_id):
        raise ValueError("nonce or key_id: wrong length")
    return Envelope(
        realm=get("realm", str),
        version=get("version", str, None),
        schema=schema,
        kdf=kdf,
        key_id=key_id,
        nonce=nonce,
    )


def _scrypt_parameters(values: list[Any]) -> tuple[int, int, int]:
    """The header's ``scrypt = [n, r, p]``, if it is :data:`SCRYPT`: no other is ever derived."""
    if tuple(values) != SCRYPT or not all(type(v) is int for v in values):
        shown = ", ".join(map(str, values))[:60]
        n, r, p = SCRYPT
        raise ValueError(
            f"scrypt = [{shown}]: not the parameters this version writes and reads "
            f"([{n}, {r}, {p}])"
        )
    return SCRYPT


# -- keys --------------------------------------------------------------------------------------


RAW = "32 raw bytes"
HEX = "64 hex digits"
PASSPHRASE = "a passphrase"  # noqa: S105 (a label, not a secret)
"""The kinds of key, as messages name them."""


class Key:
    """A secret and where it came from: 32 raw bytes, or a passphrase that scrypt stretches.

    A passphrase is stretched once per salt: the salt of the file read last is reused for the
    next save, so that a node does not pay for scrypt at each save.

    ``earlier`` holds what the same key file or variable was read as by versions before
    surrounding whitespace was ignored (and before a variable was taken as bytes), when that
    differs: a file sealed with it still opens, and is sealed with this key when next written.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        passphrase: bool,
        source: str,
        kind: str | None = None,
        earlier: tuple[Key, ...] = (),
    ) -> None:
        self._secret = secret
        self.passphrase = passphrase
        self.source = source
        """``key_file PATH`` or ``key_env NAME``: how messages name it."""
        self.kind = kind or (PASSPHRASE if passphrase else RAW)
        """What the secret was read as: :data:`RAW`, :data:`HEX` or :data:`PASSPHRASE`."""
        self.earlier = earlier
        self._derived: dict[Kdf, bytes] = {}
        self._writing: Kdf | None = None

    def __repr__(self) -> str:
        return f"Key({self.described})"

    @property
    def described(self) -> str:
        """Where the key came from and what it was read as, for messages."""
        return f"{self.source}, read as {self.kind}"

    def same_as(self, other: Key) -> bool:
        """Whether the two seal and open the same files."""
        return (self._secret, self.passphrase) == (other._secret, other.passphrase)

    def derive(self, kdf: Kdf) -> bytes:
        """The AES key for a file written with ``kdf``; b"" when this kind of key never opens
        such a file (a raw key and a passphrase's file, or the other way round).

        Raise :class:`KeyUnusableError` when scrypt cannot run here (too little memory).
        """
        if kdf.name == NONE:
            if self.passphrase:
                return b""  # a passphrase never opens a raw-key file: key_id will not match
            return self._secret
        if not self.passphrase:
            return b""
        if kdf not in self._derived:
            from cryptography.hazmat.primitives.kdf.scrypt import Scrypt  # noqa: PLC0415

            stretch = Scrypt(salt=kdf.salt, length=KEY_BYTES, n=kdf.n, r=kdf.r, p=kdf.p)
            try:
                self._derived[kdf] = stretch.derive(self._secret)
            except (MemoryError, ValueError) as exc:
                raise KeyUnusableError(
                    f"{self.source}: scrypt cannot stretch the passphrase here ({exc})"
                ) from None
        return self._derived[kdf]

    def candidates(self, kdf: Kdf) -> Iterator[tuple[bytes, Key]]:
        """The AES keys that may open a file written with ``kdf``, and the reading each comes
        from: this one first, then each earlier one. Each is derived only when asked for."""
        for key in (self, *self.earlier):
            aes_key = key.derive(kdf)
            if aes_key:
                yield aes_key, key

    def writing_kdf(self) -> Kdf:
        """The key derivation of the next file this key seals."""
        if not self.passphrase:
            return Kdf()
        if self._writing is None:
            n, r, p = SCRYPT
            self._writing = Kdf("scrypt", secrets.token_bytes(SALT_BYTES), n, r, p)
        return self._writing

    def opened(self, kdf: Kdf) -> None:
        """Reuse ``kdf`` (a file this key opened) for the next save."""
        if self.passphrase and kdf.name == "scrypt":
            self._writing = kdf


def key_id(aes_key: bytes) -> str:
    """What a file records of its key: enough to tell a wrong key, nothing of the key."""
    return hmac.new(aes_key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:KEY_ID_HEX]


def key_from_bytes(raw: bytes, source: str) -> Key:
    """A key file's or variable's bytes as a key; the same bytes are the same key from either.

    32 bytes that are not all printable text are a raw key, taken as they are. Otherwise
    surrounding whitespace (spaces, tabs, line breaks) is no part of the key: what lies between
    is 64 hex digits (a raw key) or a passphrase, whose bytes scrypt stretches as they are.
    """
    return _remembering(_key_of(raw, source), raw)


def _remembering(key: Key, before: bytes | None) -> Key:
    """``key``, knowing what versions before this one read instead (from ``before``, the bytes
    they took), when that is another key: :attr:`Key.earlier`."""
    if before is not None:
        earlier = _key_as_before(before, key.source)
        if earlier is not None and not earlier.same_as(key):
            key.earlier = (earlier,)
    return key


def _key_of(raw: bytes, source: str) -> Key:
    if len(raw) == KEY_BYTES and not _is_text(raw):
        return Key(raw, passphrase=False, source=source)
    text = raw.strip()
    if not text:
        raise KeyUnusableError(f"{source} is empty")
    if _HEX_KEY.fullmatch(text.decode("latin-1")):
        return Key(bytes.fromhex(text.decode()), passphrase=False, source=source, kind=HEX)
    _warn_if_short(text, source)
    return Key(text, passphrase=True, source=source)


def _warn_if_short(passphrase: bytes, source: str) -> None:
    """Warn of a passphrase under :data:`MIN_PASSPHRASE_CHARS` characters; it is still used."""
    length = len(passphrase.decode("utf-8", errors="replace"))
    if length < MIN_PASSPHRASE_CHARS:
        logger.warning(
            "%s is read as a passphrase of %s: under %d, one that short can be guessed despite "
            "scrypt; use a longer passphrase, or a random key of 64 hex digits "
            "(openssl rand -hex 32)",
            source,
            counted(length, "character"),
            MIN_PASSPHRASE_CHARS,
        )


def _key_as_before(raw: bytes, source: str) -> Key | None:
    """What versions before whitespace was ignored read ``raw`` as: only its final line break
    was no part of it."""
    if len(raw) == KEY_BYTES and not _is_text(raw):
        return Key(raw, passphrase=False, source=source)
    text = raw.removesuffix(b"\n").removesuffix(b"\r")
    if _HEX_KEY.fullmatch(text.decode("latin-1")):
        return Key(bytes.fromhex(text.decode()), passphrase=False, source=source, kind=HEX)
    if not text.strip():
        return None
    return Key(text, passphrase=True, source=source)


def _is_text(raw: bytes) -> bool:
    return all(32 <= b < 127 or b in b"\t\r\n" for b in raw)


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_key_file(path: Path) -> Key:
    """Read a key file; refuse one that group or others can read, or that is not a file.

    The file is opened without blocking and examined before a byte is read: a FIFO with no
    writer, a device or a directory is refused at once, never waited on.
    """
    source = f"key_file {path}"
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_NOCTTY | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise KeyUnusableError(f"{source} cannot be read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyUnusableError(
                f"{source} is {_file_type(info.st_mode)}, not a regular file; refusing it"
            )
        if os.name == "posix" and info.st_mode & (stat.S_IRGRP | stat.S_IROTH):
            raise KeyUnusableError(
                f"{source} is readable by group or others (mode "
                f"{stat.S_IMODE(info.st_mode):#o}); refusing it: chmod 600 {path}"
            )
        raw = os.read(fd, MAX_KEY_FILE + 1)
    except OSError as exc:
        raise KeyUnusableError(f"{source} cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_KEY_FILE:
        raise KeyUnusableError(f"{source} is larger than {MAX_KEY_FILE} bytes: not a key")
    return key_from_bytes(raw, source)


def read_key_env(name: str, environ: Mapping[str, str] | None = None) -> Key:
    """The key in environment variable ``name``, as the bytes the environment holds, whatever
    the locale: a passphrase that is not UTF-8 is the same key here as in a key file.

    Python decodes the environment with the file system encoding, keeping undecodable bytes as
    surrogates; :func:`os.fsencode` gives back the bytes it was decoded from.
    """
    value = (os.environ if environ is None else environ).get(name)
    if value is None:
        raise KeyUnusableError(f"key_env {name}: the variable is not set")
    try:
        before: bytes | None = value.encode()  # what versions before this one took
    except UnicodeEncodeError:
        before = None  # they stopped on it: no file of theirs to open
    return _remembering(_key_of(os.fsencode(value), f"key_env {name}"), before)


def warn_if_key_inside(key_file: Path, state_dir: Path) -> None:
    """Warn when ``key_file`` lies inside the node's state directory: a copy of the directory,
    a backup of it, carries the key of the file it holds. The node warns so at each start, and
    ``peerstore rekey -c`` of a new key there."""
    if Path(os.path.abspath(key_file)).is_relative_to(os.path.abspath(state_dir)):
        logger.warning(
            "key_file %s is inside the state directory %s: a copy of that directory carries "
            "its key; keep the key elsewhere",
            key_file,
            state_dir,
        )


@attrs.frozen
class Sealing:
    """What the store does about encryption: nothing, seal with ``key``, or (``problem``) keep
    out of the file, because encryption is asked for and its key cannot be used."""

    required: bool = False
    key: Key | None = None
    problem: str | None = None

    @classmethod
    def from_config(cls, config: PersistenceConfig, state_dir: Path | None = None) -> Sealing:
        """The key the config names, loaded; a key that cannot be used is a ``problem``.

        Raise :class:`EncryptionUnavailableError` when encryption is asked for and
        ``cryptography`` is missing: that is a startup error, the rest never is.
        """
        if config.encryption == NONE:
            if config.key_file or config.key_env:
                logger.warning(
                    '[network.persistence] encryption = "none": key_file / key_env is not used'
                )
            return cls()
        require_backend()
        try:
            if config.key_file and config.key_env:
                raise KeyUnusableError(
                    f"key_file {config.key_file} and key_env {config.key_env} are both set; set one"
                )
            if config.key_file:
                path = Path(os.path.abspath(config.key_file))
                if state_dir is not None:
                    warn_if_key_inside(path, state_dir)
                key = read_key_file(path)
            elif config.key_env:
                key = read_key_env(config.key_env)
            else:
                raise KeyUnusableError(
                    f'encryption = "{config.encryption}" and neither key_file nor key_env is set'
                )
        except KeyUnusableError as exc:
            return cls(required=True, problem=str(exc))
        logger.info(
            '[network.persistence] encryption = "%s" with %s', config.encryption, key.described
        )
        return cls(required=True, key=key)

    @classmethod
    def with_key(cls, key: Key) -> Sealing:
        return cls(required=True, key=key)

    def refusal(self, path: Path) -> str:
        """Why a sealed file cannot be opened with what is at hand."""
        if not self.required:
            return (
                f"peer file {path} is encrypted and encryption is off; set "
                f'[network.persistence] encryption = "{AES_256_GCM}" and its key_file or key_env'
            )
        return f"peer file {path} is encrypted and its key cannot be used: {self.problem}"


PLAIN = Sealing()
"""Encryption off."""


# -- sealing and opening -----------------------------------------------------------------------


def seal(plain: bytes, key: Key, *, realm: str, version: str | None) -> bytes:
    """The sealed file holding the plain file ``plain``, under a fresh random nonce: the
    pieces of :func:`seal_chunks`, joined."""
    return b"".join(seal_chunks(plain, key, realm=realm, version=version))


def seal_chunks(
    plain: bytes | bytearray, key: Key, *, realm: str, version: str | None
) -> Iterator[bytes]:
    """The sealed file holding ``plain``, in pieces to write one after another: the header,
    the ciphertext :data:`SEAL_CHUNK` bytes at a time, then the tag (AES-256-GCM, the header
    as associated data, a fresh random nonce).

    A save writes the pieces as they come, so no second buffer the size of the file is ever
    made: at 65,536 entries (14 MB), sealing into one buffer made an encrypted save cost 9.2%
    more CPU time than a plain one, of which sealing itself was 1.4%; written in pieces, the
    two are within noise (-1.8%, `python benchmarks/bench_encryption.py --reps 15`).
    """
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: PLC0415

    kdf = key.writing_kdf()
    aes_key = key.derive(kdf)
    envelope = Envelope(
        realm=realm,
        version=version,
        schema=schema_named(plain),
        kdf=kdf,
        key_id=key_id(aes_key),
        nonce=secrets.token_bytes(NONCE_BYTES),
    )
    header = envelope.header()
    yield header
    encryptor = Cipher(algorithms.AES(aes_key), modes.GCM(envelope.nonce)).encryptor()
    encryptor.authenticate_additional_data(header)
    view = memoryview(plain)
    for start in range(0, len(view), SEAL_CHUNK):
        yield encryptor.update(view[start : start + SEAL_CHUNK])
    yield encryptor.finalize()
    yield encryptor.tag


@attrs.frozen
class Opened:
    """A sealed file, opened."""

    plain: bytes
    """The plain peer file inside it."""
    stale: bool = False
    """Whether an earlier reading of the key (:attr:`Key.earlier`) opened it: the next write
    seals it anew."""


def unseal(
    data: bytes, sealing: Sealing, *, path: Path, realm: str, version: str | None = None
) -> bytes:
    """The plain file inside a sealed one: :func:`open_sealed`'s ``plain``."""
    return open_sealed(data, sealing, path=path, realm=realm, version=version).plain


def open_sealed(
    data: bytes, sealing: Sealing, *, path: Path, realm: str, version: str | None = None
) -> Opened:
    """Open a sealed file: everything its header says is checked before any key is derived.

    Raise :class:`RealmMismatchError` for another realm's (or version's) file,
    :class:`NewerSchemaError` for a newer one, :class:`KeyRefusedError` when no key at hand
    opens it (naming the key, what it was read as, and the file), and
    :class:`SealDamagedError` when it is damaged (a header naming anything this version does
    not write, such as other scrypt parameters, included).
    """
    from cryptography.exceptions import InvalidTag  # noqa: PLC0415
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

    try:
        envelope, header, ciphertext = parse(data)
    except SealDamagedError as exc:
        raise SealDamagedError(f"encrypted peer file {path}: {exc}") from None
    if envelope.realm != realm:
        raise RealmMismatchError(
            f"the file holds realm {envelope.realm!r}, not {realm!r}",
            found=envelope.realm,
            expected=realm,
        )
    if version is not None and envelope.version is not None and envelope.version != version:
        raise RealmMismatchError(
            f"the file holds version {envelope.version!r} of realm {realm!r}, not {version!r}",
            found=f"{envelope.realm} {envelope.version}",
            expected=f"{realm} {version}",
        )
    key = sealing.key
    if key is None:
        raise KeyRefusedError(sealing.refusal(path))
    try:
        found = next(
            (
                (aes_key, reading)
                for aes_key, reading in key.candidates(envelope.kdf)
                if hmac.compare_digest(key_id(aes_key), envelope.key_id)
            ),
            None,
        )
    except KeyUnusableError as exc:
        raise KeyRefusedError(f"peer file {path} cannot be opened: {exc}") from None
    if found is None:
        raise KeyRefusedError(
            f"peer file {path} was encrypted with another key (key id {envelope.key_id}); "
            f"{key.described}, does not open it"
        )
    aes_key, reading = found
    try:
        plain = AESGCM(aes_key).decrypt(envelope.nonce, ciphertext, header)
    except InvalidTag:
        raise SealDamagedError(
            f"encrypted peer file {path} fails authentication under {key.source}, its own key: "
            "it was altered or cut short, and nothing of it can be read"
        ) from None
    if reading is key:
        key.opened(envelope.kdf)
        return Opened(plain)
    logger.warning(
        "peer file %s was sealed with %s as versions before this one read it (%s); it is "
        "sealed with it as read now (%s) when next written",
        path,
        key.source,
        reading.kind,
        key.kind,
    )
    return Opened(plain, stale=True)


def realm_of(data: bytes) -> str | None:
    """The realm a sealed file's header names, or None when it names none readable."""
    try:
        return parse(data)[0].realm
    except (SealDamagedError, NewerSchemaError):
        return None


__all__ = [
    "AES_256_GCM",
    "ENCRYPTIONS",
    "MAGIC",
    "NONE",
    "PLAIN",
    "Envelope",
    "Kdf",
    "Key",
    "Opened",
    "Sealing",
    "is_sealed",
    "key_from_bytes",
    "open_sealed",
    "parse",
    "read_key_env",
    "read_key_file",
    "realm_of",
    "seal",
    "unseal",
    "warn_if_key_inside",
]
