"""A realm's peer file addressed from outside a running node, as the node's next start sees it.

The operator's ``peerstore`` command, and any tool like it, names a node's file by its host
config (resolved as the plugin resolves it: :func:`target_from_host_config`) or by its path
(:class:`Target`); reads it without a lock, as a start would (:func:`read_snapshot`: the
entries that validate, what is wrong, the stopped intervals); asks the store what the next
start keeps, drops and dials (:func:`next_load`); and writes it only under its lock, refusing
while a node holds it (:func:`locked`, :func:`save`, :func:`keep_backup`).

A running node keeps its file through :class:`~thenodes_peerstore.persistent.PersistentPeerStore`;
this module is the file seen from beside the node: hence its name. Every error it raises is a
:class:`~thenodes_peerstore.errors.StoreFileError` or another
:class:`~thenodes_peerstore.errors.PeerStoreError`, its message naming the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from thenodes_console import counted
from thenodes_naming import DEFAULT_REALM_CODE, DEFAULT_REALM_VERSION, realm_code
from thenodes_peerstore import codec, sealing
from thenodes_peerstore.config import LEGACY_DEFAULT_PATH, PersistenceConfig, path_is_set
from thenodes_peerstore.convert import show
from thenodes_peerstore.errors import (
    AddressError,
    ConfigError,
    KeyRefusedError,
    KeyUnusableError,
    NewerSchemaError,
    NotAPeerFileError,
    PeerFileDamagedError,
    PeerFileMissingError,
    PeerStoreError,
    RealmMismatchError,
    SealDamagedError,
    StoreFileError,
    StoreLockedError,
)
from thenodes_peerstore.files import MAX_FILE_BYTES, PeerFile, read_peer_file, resolve_store_path
from thenodes_peerstore.model import PeerEntry, canonical_addr, valid_node_id
from thenodes_peerstore.persistent import configured_store
from thenodes_peerstore.store import Dropped, LoadReport, PeerStore

__all__ = [
    "NextLoad",
    "Snapshot",
    "Target",
    "by_trust",
    "entries_phrase",
    "keep_backup",
    "key_of",
    "locked",
    "next_load",
    "read_existing",
    "read_snapshot",
    "realm_for_writing",
    "realm_named_in",
    "save",
    "store_for",
    "target_from_host_config",
    "unseal",
    "version_for_writing",
    "warn_if_damaged",
    "writable_snapshot",
    "write",
]

logger = logging.getLogger(__name__)

DEFAULT_STATE_DIR = "data"
DEFAULT_PORT = 50000


# -- naming the file ---------------------------------------------------------------------------


@attrs.frozen
class Target:
    """The peer file a command works on, and the settings of the store that keeps it."""

    path: Path
    realm: str | None
    """The realm the file must be of; None to take the one it names."""
    config: PersistenceConfig
    named_by: str
    """How the file was named (``--file PATH``, ``--config HOSTCONFIG``), for messages."""
    version: str | None = None
    """The realm's version the file must be of (from ``--config``, or ``--realm-version``);
    None to take any."""
    own_addrs: tuple[str, ...] = ()
    """The node's own listen addresses (from ``--config``): never stored, as by the node."""
    own_node_id: str | None = None
    """The node's own id (from ``--config``): never stored, as by the node."""
    keys: sealing.Sealing = sealing.PLAIN
    """The key that opens the file and seals what is written (``--key-file``, ``--key-env``,
    or the config's); with none, what is written is plain."""


def key_of(key_file: str | None, key_env: str | None) -> sealing.Key | None:
    """The key in a file or an environment variable, or None when neither is named; raise
    :class:`KeyUnusableError`, or :class:`ConfigError` without the encryption backend."""
    if key_file is None and key_env is None:
        return None
    sealing.require_backend()
    if key_file is not None:
        return sealing.read_key_file(Path(os.path.abspath(key_file)))
    assert key_env is not None
    return sealing.read_key_env(key_env)


def target_from_host_config(config_path: Path, named_by: str | None = None) -> Target:
    """The peer file a node with this host config keeps, as the plugin resolves it, and the
    settings, own addresses and id, realm and version the node would use; raise
    :class:`ConfigError` naming the config when it cannot be read.

    ``named_by`` is how the config was named, for messages (default ``--config PATH``).
    """
    where = f"host config {config_path}"
    try:
        data = tomllib.loads(config_path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    try:
        code = _realm_code_of(data)
        state_dir = _state_dir_of(data)
        config = PersistenceConfig.from_host_config(data)
        path = resolve_store_path(state_dir, config.path, code)
        if not path_is_set(data) and not os.path.lexists(path):
            legacy = resolve_store_path(state_dir, LEGACY_DEFAULT_PATH, code)
            if os.path.lexists(legacy):  # the node's next start moves it to `path`
                logger.info("%s: using %s, not yet moved to %s", where, legacy, path)
                path = legacy
    except PeerStoreError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not config.enabled:
        logger.warning(
            "%s: [network.persistence] enabled is not true: a node with this config does not "
            "use %s",
            where,
            path,
        )
    own_addrs, own_node_id = _own_of(data, state_dir)
    try:
        keys = sealing.Sealing.from_config(config)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return Target(
        path,
        code,
        config,
        f"--config {config_path}" if named_by is None else named_by,
        _realm_version_of(data),
        own_addrs,
        own_node_id,
        keys,
    )


def _own_of(data: Mapping[str, Any], state_dir: Path) -> tuple[tuple[str, ...], str | None]:
    """The node's own listen addresses and id, as its host gives them to the plugin: ``[node]
    listen_addrs`` (else ``127.0.0.1:{port}``), and ``[node] id`` (else its id file)."""
    node = data.get("node", {})
    node = node if isinstance(node, Mapping) else {}
    listen = node.get("listen_addrs")
    if not isinstance(listen, list):
        listen = [f"127.0.0.1:{data.get('port', DEFAULT_PORT)}"]
    own_addrs = tuple(a for a in (_canonical_or_none(x) for x in listen) if a is not None)
    node_id = node.get("id")
    if not isinstance(node_id, str):
        id_file = node.get("id_file", "node_id")
        try:
            node_id = (state_dir / str(id_file)).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError, ValueError):
            node_id = None
    return own_addrs, valid_node_id(node_id)


def _canonical_or_none(addr: object) -> str | None:
    try:
        return canonical_addr(addr)
    except AddressError:
        return None


def _realm_code_of(data: Mapping[str, Any]) -> str:
    realm = data.get("realm")
    if realm is None:
        return DEFAULT_REALM_CODE
    if not isinstance(realm, Mapping):
        raise ConfigError(f"[realm]: expected a table, got {show(realm)}")
    if "code" in realm:
        code = realm["code"]
        if not isinstance(code, str):
            raise ConfigError(f"[realm] code: expected a string, got {show(code)}")
        return code
    name = realm.get("name")
    if not isinstance(name, str):
        raise ConfigError(f"[realm] name: expected a string, got {show(name)}")
    return realm_code(name)


def _realm_version_of(data: Mapping[str, Any]) -> str:
    """``[realm] version``, "1.0" when not given, as TheNodes defaults it."""
    realm = data.get("realm", {})
    version = realm.get("version", DEFAULT_REALM_VERSION) if isinstance(realm, Mapping) else None
    if not isinstance(version, str):
        raise ConfigError(f"[realm] version: expected a string, got {show(version)}")
    return version


def _state_dir_of(data: Mapping[str, Any]) -> Path:
    node = data.get("node", {})
    if not isinstance(node, Mapping):
        raise ConfigError(f"[node]: expected a table, got {show(node)}")
    state_dir = node.get("state_dir", DEFAULT_STATE_DIR)
    if not isinstance(state_dir, str) or not state_dir.strip():
        raise ConfigError(f"[node] state_dir: expected a directory name, got {show(state_dir)}")
    return Path(os.path.abspath(state_dir))


# -- reading the file --------------------------------------------------------------------------


@attrs.frozen
class Snapshot:
    """What a peer file holds: the entries that validate, and what is wrong with it."""

    path: Path
    realm: str
    realm_readable: bool
    """Whether the file names a realm; without one, no entry can be read from it."""
    decoded: codec.Decoded
    sealed: bool = False
    """Whether the file is encrypted."""

    @property
    def entries(self) -> tuple[PeerEntry, ...]:
        """The entries that validate (all of them, when the file is intact)."""
        return self.decoded.entries

    @property
    def problems(self) -> tuple[str, ...]:
        return self.decoded.problems

    @property
    def saved_at(self) -> int | None:
        return self.decoded.saved_at

    @property
    def intact(self) -> bool:
        """Whether the file is complete and unaltered since the store wrote it."""
        return self.decoded.intact

    def offline_at(self, now: int) -> list[tuple[int, int]]:
        """When the node was stopped, as a start at ``now`` counts it: the intervals the file
        records, and the time since its last save (as
        :meth:`~thenodes_peerstore.persistent.PersistentPeerStore.open` counts it)."""
        offline = list(self.decoded.offline)
        if self.saved_at is not None and self.saved_at < now:
            offline.append((self.saved_at, now))
        return offline


def read_snapshot(target: Target, data: bytes | None = None) -> Snapshot:
    """Read the target's file (no lock needed), or what ``data`` holds of it; raise a
    :class:`StoreFileError` naming the file when it cannot be used: missing, unreadable, not a
    peer file, of another realm or a newer schema, or encrypted with no key that opens it.

    A damaged file is no error: the snapshot holds what a node would salvage of it.
    """
    if data is None:
        data = read_peer_file(target.path)
    if data is None:
        raise PeerFileMissingError(f"no peer file at {target.path} ({target.named_by})")
    named = realm_named_in(data)
    realm = target.realm if target.realm is not None else named
    sealed = sealing.is_sealed(data)
    if len(data) > MAX_FILE_BYTES:
        too_large = codec.Decoded(entries=(), problems=(f"larger than {MAX_FILE_BYTES} bytes",))
        return Snapshot(target.path, realm or "", named is not None, too_large, sealed)
    try:
        if sealed:
            data = unseal(target, data, realm or "")
        decoded = codec.decode(data, realm=realm or "", version=target.version)
    except SealDamagedError as exc:
        decoded = codec.Decoded(entries=(), problems=(str(exc),))
    except NewerSchemaError as exc:
        raise NewerSchemaError(
            f"peer file {target.path}: {exc}; it is left untouched (use that version's peerstore)",
            schema=exc.schema,
        ) from None
    except RealmMismatchError as exc:
        raise RealmMismatchError(
            f"peer file {target.path}: {exc}; check {target.named_by}; the file is left untouched",
            found=exc.found,
            expected=exc.expected,
        ) from None
    if data.strip() and named is None and not decoded.entries and not _PEER_FILE_RE.search(data):
        raise NotAPeerFileError(
            f"{target.path} is not a peer file (it has no schema, realm or [[peers]] table that"
            f" can be read); check {target.named_by}. It is left untouched (a node would set it"
            " aside and start without stored peers)"
        )
    return Snapshot(target.path, realm or "", named is not None, decoded, sealed)


def unseal(target: Target, data: bytes, realm: str) -> bytes:
    """The plain bytes of the target's encrypted file; raise :class:`KeyRefusedError` when no
    key at hand opens it, :class:`SealDamagedError` when it is not whole."""
    if not target.keys.required:
        raise KeyRefusedError(
            f"peer file {target.path} is encrypted: give its key with --key-file PATH or "
            "--key-env NAME, or the node's config with -c; it is left untouched"
        )
    try:
        return sealing.unseal(
            data, target.keys, path=target.path, realm=realm, version=target.version
        )
    except KeyRefusedError as exc:
        raise KeyRefusedError(f"{exc}; it is left untouched") from None


_PEER_FILE_RE = re.compile(rb"^(?:schema\s*=|realm\s*=|\[\[peers\]\])", re.MULTILINE)
"""A line only a peer file has: a file without one is not a peer file, damaged or not."""


def realm_named_in(data: bytes) -> str | None:
    """The realm a peer file's header names, or None when it names none readable."""
    if sealing.is_sealed(data):
        return sealing.realm_of(data)
    try:
        codec.decode(data[: MAX_FILE_BYTES + 1], realm="")  # "" is never a realm code
    except RealmMismatchError as exc:
        return exc.found
    except NewerSchemaError:
        return None
    return None


def warn_if_damaged(snapshot: Snapshot) -> None:
    """Log a warning when the file is damaged: what is wrong, and what is shown of it."""
    if not snapshot.intact:
        logger.warning(
            "peer file %s is damaged (%s); showing the %d entries a node would salvage. "
            "`peerstore verify` lists the problems, `peerstore seal` repairs it",
            snapshot.path,
            "; ".join(snapshot.problems[:3]) + ("; ..." if len(snapshot.problems) > 3 else ""),
            len(snapshot.entries),
        )


# -- the store's view --------------------------------------------------------------------------


def store_for(
    config: PersistenceConfig,
    now: int,
    own_addrs: Iterable[str] = (),
    own_node_id: str | None = None,
) -> PeerStore:
    """An empty store with the node's settings, its clock standing at ``now``.

    The same settings :meth:`~thenodes_peerstore.persistent.PersistentPeerStore.open` gives
    the node's store (:func:`~thenodes_peerstore.persistent.configured_store`), so what this
    store decides is what the node will decide.
    """
    return configured_store(config, lambda: now, own_addrs=own_addrs, own_node_id=own_node_id)


@attrs.frozen
class NextLoad:
    """What the node's next start makes of a list of entries: the store decides."""

    kept: tuple[PeerEntry, ...]
    """Most trusted first."""
    dropped: tuple[Dropped, ...]
    """The entries it does not keep, in the order given, each with the store's reason."""
    clamped: tuple[PeerEntry, ...]
    """Entries kept with a time in the future set to now."""
    report: LoadReport
    plan: tuple[str, ...]
    offline: tuple[tuple[int, int], ...]
    """When the node was stopped, as the store keeps it: what a rewrite of the file records."""

    @property
    def changes(self) -> bool:
        """Whether loading changes anything."""
        return bool(self.dropped or self.clamped)


def next_load(
    entries: Sequence[PeerEntry],
    config: PersistenceConfig,
    now: int,
    offline: Iterable[tuple[int, int]] = (),
    *,
    own: Target | None = None,
) -> NextLoad:
    """Load ``entries`` into a store with the node's settings, and say what it kept and why not.

    ``offline`` are the intervals the node was stopped (:meth:`Snapshot.offline_at`): entries
    age by the node's running time. ``own`` gives the node's own addresses and id (from its
    host config), which it never stores.

    What is dropped, and why, is the store's report of its load
    (:attr:`~thenodes_peerstore.store.LoadReport.dropped`).
    """
    own_addrs, own_id = (own.own_addrs, own.own_node_id) if own is not None else ((), None)
    store = store_for(config, now, own_addrs, own_id)
    report = store.load(entries, offline=offline)
    dropped = {drop.index for drop in report.dropped}
    clamped = [
        fixed
        for index, entry in enumerate(entries)
        if index not in dropped and (fixed := entry.clamped(now)) is not entry
    ]
    return NextLoad(
        kept=tuple(store.entries()),
        dropped=report.dropped,
        clamped=tuple(clamped),
        report=report,
        plan=tuple(store.reconnect_plan()),
        offline=store.offline,
    )


def by_trust(entries: Iterable[PeerEntry]) -> list[PeerEntry]:
    """Most trusted first, then most recently seen, then by address."""
    return sorted(entries, key=lambda e: (-e.source.rank, -e.last_seen, e.addr))


# -- writing the file --------------------------------------------------------------------------


@contextlib.contextmanager
def locked(target: Target, realm: str, *, wait_secs: float) -> Iterator[PeerFile]:
    """The target's file, locked; refuse (:class:`StoreLockedError`, naming the holder's pid)
    while a node holds it.

    Another command holds the file for a moment only: wait up to ``wait_secs`` for it.
    """
    deadline = time.monotonic() + wait_secs
    lock_made = not os.path.lexists(target.path.with_name(f"{target.path.name}.lock"))
    while True:
        try:
            peer_file = PeerFile.open(target.path, realm)
            break
        except StoreLockedError as exc:
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            holder = f"pid {exc.pid}" if exc.pid is not None else "its holder"
            raise StoreLockedError(
                f"{exc}; it was held for more than {wait_secs:g} s: stop the node or"
                f" command holding it ({holder}) first: a command never changes a file a node"
                " holds",
                exc.pid,
            ) from None
    try:
        yield peer_file
    finally:
        if lock_made and not os.path.lexists(target.path):
            # Nothing was written (a refused write on a file that does not exist): leave no
            # lock file behind. It is unlinked while held, and filelock never grants a lock on
            # a lock file unlinked before its flock succeeded, so no two holders can follow.
            with contextlib.suppress(OSError):
                peer_file.lock_path.unlink()
        peer_file.close()


def save(
    peer_file: PeerFile,
    entries: Iterable[PeerEntry],
    now: int,
    *,
    offline: Iterable[tuple[int, int]],
    version: str | None,
    keys: sealing.Sealing = sealing.PLAIN,
) -> None:
    """Write ``entries`` over the file atomically, most trusted first, with a fresh trailer.

    The realm's version and the node's stopped intervals are kept: a command writes only while
    no node runs, so the time since the last save is time the node was stopped. With a key,
    the file is written encrypted; with encryption asked for and no usable key, not at all.
    """
    data = codec.encode(peer_file.realm, now, by_trust(entries), version=version, offline=offline)
    write(peer_file, data, keys, version)


def write(peer_file: PeerFile, data: bytes, keys: sealing.Sealing, version: str | None) -> None:
    """Write a plain file's bytes over the file atomically, sealed when ``keys`` has a key."""
    if keys.required and keys.key is None:
        raise KeyUnusableError(
            f"peer file {peer_file.path}: encryption is on and its key cannot be used: "
            f"{keys.problem}; it is unchanged"
        )
    written: bytes | Iterable[bytes] = data
    if keys.key is not None:
        written = sealing.seal_chunks(data, keys.key, realm=peer_file.realm, version=version)
    try:
        peer_file.save(written)
    except OSError as exc:
        raise StoreFileError(
            f"cannot write peer file {peer_file.path}: {exc.strerror or exc}; it is unchanged"
        ) from None


def keep_backup(
    path: Path, now: int, *, sealed: Callable[[bytes], Iterable[bytes]] | None = None
) -> Path:
    """Keep the file as it is now beside it, as ``<name>.bak-<now>`` (never over another).

    A hard link where the file system allows one and the file is 0600 (the bytes are not copied
    and cannot differ), else a copy made 0600, flushed to disk before the file is replaced: a
    backup is never readable by more than its owner, whatever the old file's mode.

    With ``sealed`` (what seals a file's bytes under a key), the backup is a copy sealed under
    it, every byte of the file inside: a plain file, when encryption is on, is never kept
    beside in the clear.
    """
    n = 0
    private = stat.S_IMODE(os.lstat(path).st_mode) & 0o077 == 0
    while True:
        suffix = f".bak-{now}" if n == 0 else f".bak-{now}-{n}"
        backup = path.with_name(path.name + suffix)
        try:
            if not private or sealed is not None:
                raise OSError("a copy, not a link: the file is readable by others, or plain")
            os.link(path, backup, follow_symlinks=False)
        except FileExistsError:
            n += 1
            continue
        except OSError:
            try:
                _copy_exclusive(path, backup, sealed)
            except FileExistsError:
                n += 1
                continue
            except OSError as exc:
                raise StoreFileError(
                    f"cannot keep a backup of peer file {path} as {backup}: "
                    f"{exc.strerror or exc}; nothing was changed"
                ) from None
        return backup


def _copy_exclusive(
    source: Path, target: Path, encode: Callable[[bytes], Iterable[bytes]] | None = None
) -> None:
    data = source.read_bytes()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o600)
    try:
        for piece in (data,) if encode is None else encode(data):
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def writable_snapshot(target: Target, peer_file: PeerFile, *, must_exist: bool) -> Snapshot | None:
    """The locked file's contents for a command that rewrites it; None when there is no file
    (:class:`PeerFileMissingError` when it ``must_exist``).

    A damaged file is refused (:class:`PeerFileDamagedError`): only ``seal`` rewrites one,
    keeping the previous file.
    """
    data = peer_file.read()
    if data is None:
        if must_exist:
            raise PeerFileMissingError(f"no peer file at {target.path} ({target.named_by})")
        return None
    snapshot = read_snapshot(attrs.evolve(target, realm=peer_file.realm), data)
    if not snapshot.intact:
        raise PeerFileDamagedError(
            f"peer file {target.path} is damaged ({'; '.join(snapshot.problems[:3])}); it is "
            f"unchanged. `peerstore seal` keeps the {entries_phrase(len(snapshot.entries))} that "
            "validate and sets the previous file beside it"
        )
    return snapshot


def realm_for_writing(target: Target) -> str:
    """The realm a writing command locks the file under: the configured one or the file's own."""
    if target.realm is not None:
        return target.realm
    data = read_peer_file(target.path)
    if data is None:
        raise PeerFileMissingError(
            f"no peer file at {target.path}: give --realm CODE to create one, or use --config"
        )
    realm = realm_named_in(data)
    if realm is None:
        read_snapshot(target, data)  # raises for a newer schema
        raise StoreFileError(
            f"peer file {target.path} names no readable realm; give --realm CODE, or fix its "
            'realm line by hand (realm = "...")'
        )
    return realm


def version_for_writing(target: Target, snapshot: Snapshot | None) -> str:
    """The realm version a writing command records: the configured one (``--config``, or
    ``--file`` with ``--realm-version``), else the file's own, else, for a new file, TheNodes'
    default. A file without its version would be taken by a node of any version."""
    if target.version is not None:
        return target.version
    if snapshot is not None and snapshot.decoded.version is not None:
        return snapshot.decoded.version
    return DEFAULT_REALM_VERSION


def read_existing(target: Target, realm: str, peer_file: PeerFile) -> tuple[bytes, Snapshot]:
    """The file's bytes, read under its lock, and what they hold; :class:`PeerFileMissingError`
    when there is none."""
    data = peer_file.read()
    if data is None:
        raise PeerFileMissingError(f"no peer file at {target.path} ({target.named_by})")
    return data, read_snapshot(attrs.evolve(target, realm=realm), data)


def entries_phrase(count: int) -> str:
    """``1 entry``, ``2 entries``."""
    return counted(count, "entry")
