"""The one door to a peer file: the one reader and the one writer, for the node and its operator.

A realm's peer file is the one document a running node and its operator share. Whatever reads
one goes through :func:`read` (bytes -> unseal -> decode: a :class:`Contents`), and whatever
writes one through :func:`write` (encode -> seal -> an atomic save, under the lock its
:class:`~thenodes_peerstore.files.PeerFile` holds). The node's door,
:mod:`~thenodes_peerstore.persistent`, and the operator's,
:mod:`~thenodes_peerstore.peerfile`, are thin callers: each only says what a finding means to
it (a node sets a damaged file aside and starts, :func:`load`; a command refuses it, or
``seal`` repairs it). No other module of the package decodes or encodes a peer file, or seals
or opens an encrypted one.

A read decodes the file once. A reader that does not know the file's realm (``peerstore
--file`` without ``--realm``) takes it from the file's header before the body is decoded
(:func:`named_realm`: :func:`~thenodes_peerstore.codec.header_of`, or the envelope of an
encrypted file).
"""

from __future__ import annotations

import enum
import functools
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import attrs

from thenodes_peerstore import codec, files, sealing
from thenodes_peerstore.errors import (
    KeyRefusedError,
    KeyUnusableError,
    NewerSchemaError,
    PeerStoreError,
    SealDamagedError,
)
from thenodes_peerstore.files import PeerFile
from thenodes_peerstore.model import PeerEntry, PlanHead

__all__ = [
    "Contents",
    "FirstRead",
    "Status",
    "is_sealed",
    "load",
    "named_realm",
    "plain_of",
    "read",
    "read_head",
    "render",
    "sealer",
    "write",
]

logger = logging.getLogger(__name__)

is_sealed = sealing.is_sealed
"""Whether a file's bytes are an encrypted peer file."""


class Status(enum.Enum):
    """What was found on disk."""

    MISSING = "missing"
    INTACT = "intact"
    SALVAGED = "salvaged"
    """Damaged: :attr:`Contents.entries` are the ones that still validate."""
    NEWER_SCHEMA = "newer schema"
    KEY_REFUSED = "encrypted, and no key at hand opens it"


@attrs.frozen
class Contents:
    """What a peer file holds: the entries that validate, what is wrong with it, and its
    header's facts (realm, version, schema, when it was saved, when its node was stopped).

    A ``SALVAGED`` file with ``quarantined`` None, read by a node's start (:func:`load`), could
    not be moved aside and is still in place; ``problems`` says why.
    """

    path: Path
    status: Status
    realm: str | None = None
    """The realm the file was read as: the one asked for, else the one its header names;
    None when neither."""
    entries: tuple[PeerEntry, ...] = ()
    problems: tuple[str, ...] = ()
    saved_at: int | None = None
    """When the file was last written, if it says."""
    offline: tuple[tuple[int, int], ...] = ()
    """When the node was stopped, as the file recorded it."""
    schema: int | None = None
    version: str | None = None
    """The realm's version of the file, which a rewrite keeps: the one it names, else
    TheNodes' default; None when its header cannot be read."""
    sealed: bool = False
    """Whether the file on disk is encrypted."""
    stale_key: bool = False
    """Whether it was opened by what an earlier version read its key as
    (:attr:`~thenodes_peerstore.sealing.Key.earlier`): the next save seals it anew."""
    realm_readable: bool = False
    """Whether the file's header names a realm; without one, no entry can be read from it."""
    recognisable: bool = True
    """False for a file with nothing a peer file has (no schema, realm or ``[[peers]]`` line,
    no entry): not a peer file at all, though a node would set it aside as a damaged one."""
    quarantined: Path | None = None
    """Where a node's start set the damaged file aside."""

    @property
    def intact(self) -> bool:
        """Whether the file is complete and unaltered since the store wrote it."""
        return self.status is Status.INTACT

    def offline_at(self, now: int) -> list[tuple[int, int]]:
        """When the node was stopped, as a start at ``now`` counts it (:func:`stopped_at`)."""
        return stopped_at(self.offline, self.saved_at, now)


def stopped_at(
    offline: Iterable[tuple[int, int]], saved_at: int | None, now: int
) -> list[tuple[int, int]]:
    """When a file's node was stopped, as a start at ``now`` counts it: the intervals the file
    records (``offline``), and the time since its last save (``saved_at``: a node writes its
    file at least every hour while it runs, and a command writes only while none holds it)."""
    stopped = list(offline)
    if saved_at is not None and saved_at < now:
        stopped.append((saved_at, now))
    return stopped


@attrs.frozen
class FirstRead:
    """A file read by a start for its plan first (:func:`read_head`): its bytes, what its key
    opened of them, and its head, for :func:`load` to read the rest from without reading the
    file again."""

    data: bytes
    opened: sealing.Opened | None
    head: PlanHead
    saved_at: int
    offline: tuple[tuple[int, int], ...]

    def offline_at(self, now: int) -> list[tuple[int, int]]:
        """When the node was stopped, as a start at ``now`` counts it (:func:`stopped_at`)."""
        return stopped_at(self.offline, self.saved_at, now)


def read_head(
    peer_file: PeerFile, *, version: str | None = None, keys: sealing.Sealing = sealing.PLAIN
) -> FirstRead | None:
    """The head of a locked file this version wrote, read before the rest of it
    (:func:`~thenodes_peerstore.codec.read_head`); None for any other file (missing, too
    large, not opened by ``keys``, damaged, headless), which a start then reads whole with
    :func:`load`, which says why. Raises nothing a whole read would not."""
    data = peer_file.read()
    if data is None or len(data) > files.MAX_FILE_BYTES:
        return None
    opened = None
    if sealing.is_sealed(data):
        try:
            opened = sealing.open_sealed(
                data, keys, path=peer_file.path, realm=peer_file.realm or "", version=version
            )
        except PeerStoreError:
            return None
    plain = data if opened is None else opened.plain
    opening = codec.read_head(plain, realm=peer_file.realm or "", version=version)
    if opening is None:
        return None
    return FirstRead(data, opened, opening.head, opening.saved_at, opening.offline)


_PEER_FILE_RE = re.compile(rb"^(?:schema\s*=|realm\s*=|\[\[peers\]\])", re.MULTILINE)
"""A line only a peer file has: a file without one is not a peer file, damaged or not."""


def read(
    path: Path,
    *,
    realm: str | None = None,
    version: str | None = None,
    keys: sealing.Sealing = sealing.PLAIN,
    data: bytes | None = None,
) -> Contents:
    """Read the peer file at ``path`` (no lock needed: a save is an atomic rename), or what
    ``data`` holds of it, decoding it once.

    ``realm`` is the realm the file must be of, None to take the one its header names;
    ``version`` likewise, None to take any. An encrypted file is opened with ``keys``.

    A missing file, one of a newer schema and an encrypted one that no key at hand opens are
    statuses; a damaged file is ``SALVAGED`` with the entries that validate. Raise
    :class:`~thenodes_peerstore.errors.RealmMismatchError` for a file of another realm or
    version, and :class:`~thenodes_peerstore.errors.StoreFileError` naming the file when it
    cannot be read.
    """
    return _read(path, realm, version, keys, data)[0]


def load(
    peer_file: PeerFile,
    now: int,
    *,
    version: str | None = None,
    keys: sealing.Sealing = sealing.PLAIN,
    first: FirstRead | None = None,
) -> Contents:
    """What a node's start reads of its locked file: :func:`read`, and a damaged file set
    aside to ``<name>.corrupt-<now>`` (:attr:`Contents.quarantined`).

    A file that cannot be set aside is logged and left in place, its salvaged entries returned
    all the same, with ``quarantined`` None. With encryption on, nothing is set aside in the
    clear: a damaged plain file is set aside sealed under the key, and left in place when it
    cannot be (no usable key, too large). An encrypted file that fails authentication under
    its own key is damaged: nothing of it is salvaged.

    ``first``: what :func:`read_head` read of the file already, which is not read again.
    """
    data, opened = (None, None) if first is None else (first.data, first.opened)
    contents, data = _read(peer_file.path, peer_file.realm, version, keys, data, opened)
    if contents.status is not Status.SALVAGED:
        return contents
    assert data is not None
    realm = contents.realm or ""
    try:
        aside = _set_aside(
            peer_file, now, data, sealed=contents.sealed, keys=keys, realm=realm, version=version
        )
    except _KeptInPlace as exc:
        reason = str(exc)
    except OSError as exc:
        reason = f"it could not be moved aside: {exc.strerror or exc}"
    else:
        return attrs.evolve(contents, quarantined=aside)
    logger.error("peer file %s is damaged and %s; leaving it in place", peer_file.path, reason)
    return attrs.evolve(contents, problems=(*contents.problems, reason))


def _read(  # noqa: PLR0917 (private: read's and load's arguments, in their order)
    path: Path,
    realm: str | None,
    version: str | None,
    keys: sealing.Sealing,
    data: bytes | None,
    opened: sealing.Opened | None = None,
) -> tuple[Contents, bytes | None]:
    """:func:`read`, and the bytes it read; ``opened``, what ``keys`` opened of ``data``."""
    if data is None:
        data = files.read_peer_file(path)
    if data is None:
        return Contents(path, Status.MISSING, realm=realm), None
    sealed = sealing.is_sealed(data)
    named = named_realm(data)
    realm = named if realm is None else realm
    found = functools.partial(
        Contents, path, realm=realm, sealed=sealed, realm_readable=named is not None
    )
    if len(data) > files.MAX_FILE_BYTES:
        return found(Status.SALVAGED, problems=(f"larger than {files.MAX_FILE_BYTES} bytes",)), data
    plain, stale = data, False
    try:
        if sealed:
            opened = opened or sealing.open_sealed(
                data, keys, path=path, realm=realm or "", version=version
            )
            plain, stale = opened.plain, opened.stale
        decoded = codec.decode(plain, realm=realm or "", version=version)
    except SealDamagedError as exc:
        decoded = codec.Decoded(entries=(), problems=(str(exc),))
    except KeyRefusedError as exc:
        return found(Status.KEY_REFUSED, problems=(str(exc),)), data
    except NewerSchemaError as exc:
        return found(Status.NEWER_SCHEMA, problems=(str(exc),), schema=exc.schema), data
    recognisable = not (
        named is None and not decoded.entries and plain.strip() and not _PEER_FILE_RE.search(plain)
    )
    contents = found(
        Status.INTACT if decoded.intact else Status.SALVAGED,
        entries=decoded.entries,
        problems=decoded.problems,
        saved_at=decoded.saved_at,
        offline=decoded.offline,
        schema=decoded.schema,
        version=decoded.version,
        stale_key=stale,
        recognisable=recognisable,
    )
    return contents, data


def named_realm(data: bytes) -> str | None:
    """The realm a peer file's header names (an encrypted file's envelope), read without its
    body; None when it names none that can be read."""
    if sealing.is_sealed(data):
        return sealing.realm_of(data)
    realm = codec.header_of(data).get("realm")
    return realm if isinstance(realm, str) else None


class _KeptInPlace(Exception):
    """A damaged file that is not set aside; the message says why."""


def _set_aside(
    peer_file: PeerFile,
    now: int,
    data: bytes,
    *,
    sealed: bool,
    keys: sealing.Sealing,
    realm: str,
    version: str | None,
) -> Path:
    """Set a damaged file aside; with encryption on, a plain one is set aside sealed under the
    key (every byte of it, for ``peerstore decrypt`` to give back), never in the clear."""
    if sealed or not keys.required:
        return peer_file.quarantine(now)
    if keys.key is None:
        raise _KeptInPlace(
            "it is not encrypted, and encryption is on with no usable key: it is not set aside "
            "in the clear"
        )
    if len(data) > files.MAX_FILE_BYTES:
        raise _KeptInPlace(
            f"it is not encrypted, and too large to set aside encrypted (more than "
            f"{files.MAX_FILE_BYTES} bytes): it is not set aside in the clear"
        )
    copy = sealing.seal_chunks(data, keys.key, realm=realm, version=version)
    try:
        return peer_file.quarantine(now, copy)
    except KeyUnusableError as exc:
        raise _KeptInPlace(f"it could not be set aside encrypted: {exc}") from None


def plain_of(
    data: bytes,
    path: Path,
    *,
    realm: str | None,
    keys: sealing.Sealing,
    version: str | None = None,
) -> bytes:
    """The plain bytes inside an encrypted peer file, as they are (damaged ones too: nothing is
    decoded); ``realm`` None takes the one its envelope names.

    Raise :class:`~thenodes_peerstore.errors.KeyRefusedError` when no key at hand opens it,
    :class:`~thenodes_peerstore.errors.SealDamagedError` when it is not whole, and
    :class:`~thenodes_peerstore.errors.RealmMismatchError` or
    :class:`~thenodes_peerstore.errors.NewerSchemaError` as :func:`read` does.
    """
    if realm is None:
        realm = sealing.realm_of(data)
    return sealing.unseal(data, keys, path=path, realm=realm or "", version=version)


def render(
    realm: str,
    saved_at: int,
    entries: Iterable[PeerEntry],
    *,
    version: str | None,
    offline: Iterable[tuple[int, int]] = (),
    key: sealing.Key | None = None,
    head: PlanHead | None = None,
) -> bytes | Iterator[bytes]:
    """The file holding ``entries``, in the order given (``head``'s first: what the next start
    reads its plan from), its bytes, or, sealed under ``key``, the pieces of the encrypted file
    (written one after another, never joined in memory)."""
    data = codec.encode(realm, saved_at, entries, version=version, offline=offline, head=head)
    return data if key is None else sealing.seal_chunks(data, key, realm=realm, version=version)


def sealer(key: sealing.Key, realm: str, version: str | None) -> Callable[[bytes], Iterator[bytes]]:
    """What seals any bytes under ``key`` as a file of ``realm``: for a copy of a file kept
    beside it (a backup), so that a plain file is never kept in the clear."""
    return functools.partial(sealing.seal_chunks, key=key, realm=realm, version=version)


def write(
    peer_file: PeerFile,
    entries: Iterable[PeerEntry],
    now: int,
    *,
    realm: str,
    version: str | None,
    offline: Iterable[tuple[int, int]],
    keys: sealing.Sealing = sealing.PLAIN,
    head: PlanHead | None = None,
) -> None:
    """Encode ``entries`` (in the order given; ``head``, the next start's plan, first) with a
    fresh trailer, seal them when ``keys`` has a key, and replace the locked file atomically.

    Raise ``OSError`` when the file cannot be written and
    :class:`~thenodes_peerstore.errors.KeyUnusableError` when the key cannot seal (encryption
    is on without a usable key; scrypt cannot run here): the file is then as it was.
    """
    if keys.required and keys.key is None:
        raise KeyUnusableError(
            f"peer file {peer_file.path}: encryption is on and its key cannot be used: "
            f"{keys.problem}; it is unchanged"
        )
    peer_file.save(
        render(realm, now, entries, version=version, offline=offline, key=keys.key, head=head)
    )
