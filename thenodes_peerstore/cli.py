"""The ``peerstore`` command: look into a realm's peer file, repair it after a hand edit, and
move peers from and to TheNodes' ``peers.json``.

Every command names its file one of two ways:

- ``--config HOSTCONFIG``: the node's host config, resolved exactly as the plugin resolves its
  file: the state directory (``[node] state_dir``, default ``data``, a relative one against the
  working directory, as TheNodes does), the path template (``[network.persistence] path``) and
  the realm code (``[realm] code``, else derived from ``[realm] name``; no ``[realm]`` table is
  TheNodes' realm ``default``). The store's settings (``max_entries``, ``ttl_secs``,
  ``reconnect_limit``...) come from the same file.
- ``--file PATH``: the peer file itself, with the default settings. Its realm is the one the
  file names; ``--realm CODE`` checks it, and names the realm of a file that does not exist yet.

An encrypted file is opened with ``--key-file PATH`` or ``--key-env NAME``, else with the key
the ``--config`` names; with a key, every write is sealed (a plain file is encrypted), and
``export`` writes peers in the clear only with ``--plaintext``. ``rekey`` seals the file with
``--new-key-file`` or ``--new-key-env`` in one atomic replace.

Commands that only read (``list``, ``show``, ``stats``, ``verify``, ``export``) take no lock: a
save is an atomic rename, so they always see a whole file, even while a node runs. Commands that
write (``add``, ``remove``, ``prune``, ``seal``, ``import``) take the file's lock, so they refuse,
naming the holder's pid, while a node holds the file, and never change it. Every write replaces
the file atomically with a fresh integrity trailer. A damaged file (a hand edit breaks the
trailer) is only ever rewritten by ``seal``, which keeps the previous file beside it.

Exit status: 0 done; 1 done, but: ``verify`` found the file damaged, ``show`` or ``remove`` did
not find an address, ``add`` found it already there, ``import`` could not use some records;
2 nothing done: a usage error (as ``argparse``), or a file that cannot be used for the command
(missing, not a peer file, another realm, a newer schema, held by a node for a writing command).

TheNodes' ``peers.json`` (``src/network/peer_store.rs``) is a JSON array of records ``addr``,
``source`` (``Bootstrap`` | ``Handshake`` | ``Gossip`` | ``Manual``), ``failures``,
``last_success_epoch`` (an integer or null) and optional ``node_id`` and ``capabilities``.
After a HELLO exchange on a connection it dialled itself, TheNodes stamps the record with
``last_success_epoch`` and the peer's ``node_id`` (``mark_success_with_meta``): a new address
becomes a ``Handshake`` record, while a seed it connected to stays a ``Bootstrap`` record. It
also stamps ``last_success_epoch``, without a ``node_id``, on every known address a peer list
names (``mark_success``), and a gossiped address it dialled keeps ``Gossip``. So an outbound
proof is a ``Handshake`` record with ``last_success_epoch``, or a ``Bootstrap``/``Manual``
record with both ``last_success_epoch`` and ``node_id``; a ``Gossip`` record proves nothing:

=============== ========================= ====================================================
TheNodes        this store                last_success_epoch
=============== ========================= ====================================================
``Handshake``   ``Connected`` (proven)    ``last_connected`` and ``last_seen``; a Handshake
                                          record without it (TheNodes never writes one) is
                                          imported as ``Gossip``, unproven
``Bootstrap``   ``Connected`` with a      ``last_connected`` and ``last_seen`` with a
                ``node_id``, else         ``node_id``; ``last_seen`` only without
                ``Bootstrap``
``Manual``      as ``Bootstrap``          as ``Bootstrap``
``Gossip``      ``Gossip``                ``last_seen``, never proof
=============== ========================= ====================================================

A null ``last_success_epoch`` (TheNodes keeps such records without expiry) becomes a
``last_seen`` of the import's time, so the record gets one full TTL. ``failures``, ``node_id``
and ``capabilities`` are kept (an id or capability this store refuses is left out, and said).
On export a proven entry is written as ``Handshake``, ``Bootstrap`` as ``Bootstrap`` and every
other tier as ``Gossip``; ``last_success_epoch`` is the entry's ``last_connected``, the time this
node last completed a handshake with it, and null for an entry it never connected to (a seed
whose dial failed, gossip). ``first_seen``, ``last_seen`` and ``last_attempt`` have no place in
TheNodes' record (``--format json`` keeps every field).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import enum
import importlib.metadata
import json
import logging
import os
import re
import stat
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from thenodes_naming import DEFAULT_REALM_CODE, realm_code
from thenodes_peerstore import codec, sealing
from thenodes_peerstore.config import LEGACY_DEFAULT_PATH, PersistenceConfig, path_is_set
from thenodes_peerstore.convert import converter, describe_error, show
from thenodes_peerstore.errors import (
    AddressError,
    ConfigError,
    KeyRefusedError,
    KeyUnusableError,
    NewerSchemaError,
    PeerStoreError,
    RealmMismatchError,
    SealDamagedError,
    StoreFileError,
    StoreLockedError,
)
from thenodes_peerstore.files import MAX_FILE_BYTES, PeerFile, read_peer_file, resolve_store_path
from thenodes_peerstore.model import (
    PeerEntry,
    Source,
    canonical_addr,
    network_group,
    valid_capabilities,
    valid_node_id,
)
from thenodes_peerstore.store import LoadReport, PeerStore, retry_at

__all__ = ["main"]

logger = logging.getLogger(__name__)

PROG = "peerstore"
EXIT_OK = 0
EXIT_NOT_ALL = 1
EXIT_ERROR = 2
LOCK_WAIT_SECS = 2.0
"""How long a command that changes the file waits for another command to release it."""

DEFAULT_REALM_VERSION = "1.0"
"""TheNodes' realm version when a host config's ``[realm]`` names none."""
DEFAULT_STATE_DIR = "data"
DEFAULT_PORT = 50000
TOP_GROUPS = 10
"""Network groups ``stats`` lists."""
U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
_MINUTE, _HOUR, _DAY = 60, 3600, 86400
_AGE_BUCKETS = ((_HOUR, "under 1 h"), (_DAY, "1 h to 1 d"), (7 * _DAY, "1 d to 7 d"))
_AGE_OLDEST = "7 d or more"


class CommandError(Exception):
    """A command that cannot be carried out; the message names the file and the problem."""


# -- naming the file ---------------------------------------------------------------------------


@attrs.frozen
class Target:
    """The peer file a command works on, and the settings of the store that keeps it."""

    path: Path
    realm: str | None
    """The realm the file must be of; None to take the one it names."""
    config: PersistenceConfig
    named_by: str
    """How the file was named, for messages."""
    version: str | None = None
    """The realm's version the file must be of (from ``--config``); None to take any."""
    own_addrs: tuple[str, ...] = ()
    """The node's own listen addresses (from ``--config``): never stored, as by the node."""
    own_node_id: str | None = None
    """The node's own id (from ``--config``): never stored, as by the node."""
    keys: sealing.Sealing = sealing.PLAIN
    """The key that opens the file and seals what is written (``--key-file``, ``--key-env``,
    or the config's); with none, what is written is plain."""


def target_of(args: argparse.Namespace) -> Target:
    """The file named by ``--file`` or ``--config``, and its key."""
    if args.file is not None:
        path = Path(os.path.abspath(args.file))
        target = Target(path, args.realm, PersistenceConfig(enabled=True), f"--file {args.file}")
    elif args.realm is not None:
        raise CommandError("--realm goes with --file; with --config the realm is the config's")
    else:
        target = target_from_host_config(Path(args.config))
    key = key_of(args.key_file, args.key_env)
    if key is not None:
        return attrs.evolve(target, keys=sealing.Sealing.with_key(key))
    return target


def key_of(key_file: str | None, key_env: str | None) -> sealing.Key | None:
    """The key named on the command line, or None."""
    if key_file is None and key_env is None:
        return None
    try:
        sealing.require_backend()
        if key_file is not None:
            return sealing.read_key_file(Path(os.path.abspath(key_file)))
        assert key_env is not None
        return sealing.read_key_env(key_env)
    except (KeyUnusableError, ConfigError) as exc:
        raise CommandError(str(exc)) from None


def target_from_host_config(config_path: Path) -> Target:
    """The peer file a node with this host config keeps, as the plugin resolves it."""
    where = f"host config {config_path}"
    try:
        data = tomllib.loads(config_path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise CommandError(f"{where}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CommandError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise CommandError(f"{where}: not valid TOML ({exc})") from None
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
        raise CommandError(f"{where}: {exc}") from None
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
        raise CommandError(f"{where}: {exc}") from None
    return Target(
        path,
        code,
        config,
        f"--config {config_path}",
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
    """Read the target's file (no lock needed); raise :class:`CommandError` if it is unusable."""
    if data is None:
        try:
            data = read_peer_file(target.path)
        except StoreFileError as exc:
            raise CommandError(str(exc)) from None
    if data is None:
        raise CommandError(f"no peer file at {target.path} ({target.named_by})")
    named = realm_named_in(data)
    realm = target.realm if target.realm is not None else named
    sealed = sealing.is_sealed(data)
    if len(data) > MAX_FILE_BYTES:
        too_large = codec.Decoded(entries=(), problems=(f"larger than {MAX_FILE_BYTES} bytes",))
        return Snapshot(target.path, realm or "", named is not None, too_large, sealed)
    try:
        if sealed:
            data = _unseal(target, data, realm or "")
        decoded = codec.decode(data, realm=realm or "", version=target.version)
    except SealDamagedError as exc:
        decoded = codec.Decoded(entries=(), problems=(str(exc),))
    except NewerSchemaError as exc:
        raise CommandError(
            f"peer file {target.path}: {exc}; it is left untouched (use that version's peerstore)"
        ) from None
    except RealmMismatchError as exc:
        raise CommandError(
            f"peer file {target.path}: {exc}; check {target.named_by}; the file is left untouched"
        ) from None
    if data.strip() and named is None and not decoded.entries and not _PEER_FILE_RE.search(data):
        raise CommandError(
            f"{target.path} is not a peer file (it has no schema, realm or [[peers]] table that"
            f" can be read); check {target.named_by}. It is left untouched (a node would set it"
            " aside and start without stored peers)"
        )
    return Snapshot(target.path, realm or "", named is not None, decoded, sealed)


def _unseal(target: Target, data: bytes, realm: str) -> bytes:
    if not target.keys.required:
        raise CommandError(
            f"peer file {target.path} is encrypted: give its key with --key-file PATH or "
            "--key-env NAME, or the node's config with -c; it is left untouched"
        )
    try:
        return sealing.unseal(
            data, target.keys, path=target.path, realm=realm, version=target.version
        )
    except KeyRefusedError as exc:
        raise CommandError(f"{exc}; it is left untouched") from None


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


def _warn_if_damaged(snapshot: Snapshot) -> None:
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
    the node's store, so what this store decides is what the node will decide.
    """
    return PeerStore(
        clock=lambda: now,
        max_entries=config.max_entries,
        ttl_secs=config.ttl_secs,
        reconnect_limit=config.reconnect_limit,
        gossip_per_sender_per_hour=config.gossip_per_sender_per_hour,
        own_addrs=own_addrs,
        own_node_id=own_node_id,
    )


@attrs.frozen
class Drop:
    """An entry the next load does not keep, and why."""

    entry: PeerEntry
    reason: str


@attrs.frozen
class NextLoad:
    """What the node's next start makes of a list of entries: the store decides."""

    kept: tuple[PeerEntry, ...]
    """Most trusted first."""
    dropped: tuple[Drop, ...]
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
    age by the node's running time.

    Which entries are dropped is the store's decision. The reason given for each is found by
    loading the entries once more into a store without the cap: an address that store does not
    keep at all went by its load rules (the TTL), one it keeps as another entry was a
    duplicate, and one it keeps as given went over the cap.
    """
    offline = list(offline)
    own_addrs, own_id = (own.own_addrs, own.own_node_id) if own is not None else ((), None)
    store = store_for(config, now, own_addrs, own_id)
    report = store.load(entries, offline=offline)
    roomy = store_for(
        attrs.evolve(config, max_entries=max(1, len(entries))), now, own_addrs, own_id
    )
    roomy.load(entries, offline=offline)
    cutoff = store.cutoff()
    matched: set[str] = set()
    dropped: list[Drop] = []
    clamped: list[PeerEntry] = []
    for entry in entries:
        fixed = entry.clamped(now)
        survivor = store.get(entry.addr)
        if survivor == fixed and entry.addr not in matched:
            matched.add(entry.addr)
            if fixed is not entry:
                clamped.append(fixed)
            continue
        candidate = roomy.get(entry.addr)
        itself = entry.addr in own_addrs or (own_id is not None and entry.node_id == own_id)
        if candidate is None and itself:
            dropped.append(Drop(entry, "the node's own address or id: it never stores itself"))
        elif candidate is None:
            dropped.append(Drop(entry, _load_rule_reason(entry, cutoff, config, now)))
        elif candidate != fixed or entry.addr in matched:
            dropped.append(
                Drop(
                    entry,
                    "a second entry for this address; the more trusted, more recent one stays",
                )
            )
        else:
            dropped.append(
                Drop(
                    entry,
                    f"over the cap (max_entries = {config.max_entries}): the most trusted, "
                    "most recently seen entries stay",
                )
            )
    return NextLoad(
        kept=tuple(store.entries()),
        dropped=tuple(dropped),
        clamped=tuple(clamped),
        report=report,
        plan=tuple(store.reconnect_plan()),
        offline=store.offline,
    )


def _load_rule_reason(entry: PeerEntry, cutoff: int, config: PersistenceConfig, now: int) -> str:
    if entry.last_seen < cutoff:
        return (
            f"past its TTL: last seen {_ago(entry.last_seen, now)}, more than ttl_secs = "
            f"{config.ttl_secs} ({_span(config.ttl_secs)}) of the node's running time ago"
        )
    return "not kept by the store's rules at load"


def by_trust(entries: Iterable[PeerEntry]) -> list[PeerEntry]:
    """Most trusted first, then most recently seen, then by address."""
    return sorted(entries, key=lambda e: (-e.source.rank, -e.last_seen, e.addr))


# -- writing the file --------------------------------------------------------------------------


@contextlib.contextmanager
def locked(target: Target, realm: str) -> Iterator[PeerFile]:
    """The target's file, locked; refuse (naming the holder's pid) while a node holds it.

    Another command holds the file for a moment only: wait up to :data:`LOCK_WAIT_SECS` for it.
    """
    deadline = time.monotonic() + LOCK_WAIT_SECS
    while True:
        try:
            peer_file = PeerFile.open(target.path, realm)
            break
        except StoreLockedError as exc:
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            holder = f"pid {exc.pid}" if exc.pid is not None else "its holder"
            raise CommandError(
                f"{exc}; it was held for more than {LOCK_WAIT_SECS:g} s: stop the node or"
                f" command holding it ({holder}) first: a command never changes a file a node"
                " holds"
            ) from None
        except StoreFileError as exc:
            raise CommandError(str(exc)) from None
    try:
        yield peer_file
    finally:
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
        raise CommandError(
            f"peer file {peer_file.path}: encryption is on and its key cannot be used: "
            f"{keys.problem}; it is unchanged"
        )
    written: bytes | Iterable[bytes] = data
    if keys.key is not None:
        written = sealing.seal_chunks(data, keys.key, realm=peer_file.realm, version=version)
    try:
        peer_file.save(written)
    except OSError as exc:
        raise CommandError(
            f"cannot write peer file {peer_file.path}: {exc.strerror or exc}; it is unchanged"
        ) from None


def keep_backup(path: Path, now: int) -> Path:
    """Keep the file as it is now beside it, as ``<name>.bak-<now>`` (never over another).

    A hard link where the file system allows one and the file is 0600 (the bytes are not copied
    and cannot differ), else a copy made 0600, flushed to disk before the file is replaced: a
    backup is never readable by more than its owner, whatever the old file's mode.
    """
    n = 0
    private = stat.S_IMODE(os.lstat(path).st_mode) & 0o077 == 0
    while True:
        suffix = f".bak-{now}" if n == 0 else f".bak-{now}-{n}"
        backup = path.with_name(path.name + suffix)
        try:
            if not private:
                raise OSError("a copy, not a link: the file is readable by others")
            os.link(path, backup, follow_symlinks=False)
        except FileExistsError:
            n += 1
            continue
        except OSError:
            try:
                _copy_exclusive(path, backup)
            except FileExistsError:
                n += 1
                continue
            except OSError as exc:
                raise CommandError(
                    f"cannot keep a backup of peer file {path} as {backup}: "
                    f"{exc.strerror or exc}; nothing was changed"
                ) from None
        return backup


def _copy_exclusive(source: Path, target: Path) -> None:
    data = source.read_bytes()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _writable_snapshot(target: Target, peer_file: PeerFile, *, must_exist: bool) -> Snapshot | None:
    """The locked file's contents for a command that rewrites it; None when there is no file.

    A damaged file is refused: only ``seal`` rewrites one, keeping the previous file.
    """
    data = _read_locked(peer_file)
    if data is None:
        if must_exist:
            raise CommandError(f"no peer file at {target.path} ({target.named_by})")
        return None
    snapshot = read_snapshot(attrs.evolve(target, realm=peer_file.realm), data)
    if not snapshot.intact:
        raise CommandError(
            f"peer file {target.path} is damaged ({'; '.join(snapshot.problems[:3])}); it is "
            f"unchanged. `peerstore seal` keeps the {_entries(len(snapshot.entries))} that "
            "validate and sets the previous file beside it"
        )
    return snapshot


def _read_locked(peer_file: PeerFile) -> bytes | None:
    try:
        return peer_file.read()
    except StoreFileError as exc:
        raise CommandError(str(exc)) from None


def _realm_for_writing(target: Target) -> str:
    """The realm a writing command locks the file under: the configured one or the file's own."""
    if target.realm is not None:
        return target.realm
    try:
        data = read_peer_file(target.path)
    except StoreFileError as exc:
        raise CommandError(str(exc)) from None
    if data is None:
        raise CommandError(
            f"no peer file at {target.path}: give --realm CODE to create one, or use --config"
        )
    realm = realm_named_in(data)
    if realm is None:
        read_snapshot(target, data)  # raises for a newer schema
        raise CommandError(
            f"peer file {target.path} names no readable realm; give --realm CODE, or fix its "
            'realm line by hand (realm = "...")'
        )
    return realm


# -- formatting --------------------------------------------------------------------------------


def _span(secs: int) -> str:
    """A duration, in its largest whole unit: ``"45 s"``, ``"12 min"``, ``"3 h"``, ``"7 d"``."""
    if secs < _MINUTE:
        return f"{secs} s"
    if secs < _HOUR:
        return f"{secs // _MINUTE} min"
    if secs < _DAY:
        return f"{secs // _HOUR} h"
    return f"{secs // _DAY} d"


def _ago(t: int | None, now: int) -> str:
    if t is None:
        return "never"
    if t > now:
        return f"in {_span(t - now)}"
    return "now" if t == now else f"{_span(now - t)} ago"


def _until(t: int | None, now: int) -> str:
    return "-" if t is None or t <= now else f"in {_span(t - now)}"


def _stamp(t: int) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(t, tz=datetime.UTC)
    except (OverflowError, ValueError, OSError):
        return str(t)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _when(t: int | None, now: int) -> str:
    if t is None:
        return "-"
    return f"{t} ({_stamp(t)}, {_ago(t, now)})"


def _backing_off_until(entry: PeerEntry, now: int) -> int | None:
    due = retry_at(entry)
    return due if due is not None and due > now else None


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _entry_json(entry: PeerEntry, now: int) -> dict[str, Any]:
    """Every field of an entry (null where unset), and what the store makes of it."""
    data: dict[str, Any] = {}
    for field in attrs.fields(PeerEntry):
        value = getattr(entry, field.name)
        if isinstance(value, Source):
            value = value.label
        elif isinstance(value, tuple):
            value = list(value)
        data[field.name] = value
    data["proven"] = entry.proven
    data["network_group"] = network_group(entry.addr)
    data["backing_off_until"] = _backing_off_until(entry, now)
    return data


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2))


def _source(text: str) -> Source:
    """A tier named on the command line, in any case."""
    for source in Source:
        if source.label.lower() == text.lower():
            return source
    raise argparse.ArgumentTypeError(f"{text!r} is not a tier (choose from {_labels()})")


def _labels() -> str:
    return ", ".join(s.label for s in sorted(Source, reverse=True))


def _address(text: str) -> str:
    try:
        return canonical_addr(text)
    except AddressError as exc:
        raise argparse.ArgumentTypeError(f"bad address {exc}") from None


def _node_id(text: str) -> str:
    node_id = valid_node_id(text)
    if node_id is None:
        raise argparse.ArgumentTypeError(
            f"bad node id {text!r}: it must be 1 to 128 of [A-Za-z0-9._-]"
        )
    return node_id


# -- the commands ------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace, target: Target, now: int) -> int:
    """The peers, most trusted first."""
    snapshot = read_snapshot(target)
    _warn_if_damaged(snapshot)
    entries = by_trust(snapshot.entries)
    if args.source:
        entries = [e for e in entries if e.source in args.source]
    if args.json:
        _print_json([_entry_json(e, now) for e in entries])
        return EXIT_OK
    if not entries:
        print(f"no peers in {snapshot.path}" + (" of those tiers" if args.source else ""))
        return EXIT_OK
    rows = [("ADDRESS", "TIER", "PROVEN", "LAST SEEN", "FAILURES", "BACKING OFF", "NODE ID")]
    rows += [
        (
            e.addr,
            e.source.label,
            "yes" if e.proven else "no",
            _ago(e.last_seen, now),
            str(e.failures),
            _until(_backing_off_until(e, now), now),
            e.node_id or "-",
        )
        for e in entries
    ]
    print("\n".join(_table(rows)))
    return EXIT_OK


def cmd_show(args: argparse.Namespace, target: Target, now: int) -> int:
    """One entry, every field."""
    snapshot = read_snapshot(target)
    _warn_if_damaged(snapshot)
    found = [e for e in snapshot.entries if e.addr == args.addr]
    if not found:
        print(f"{PROG}: {args.addr} is not in peer file {snapshot.path}", file=sys.stderr)
        return EXIT_NOT_ALL
    for index, entry in enumerate(found):
        if args.json:
            _print_json(_entry_json(entry, now))
            continue
        if index:
            print()
        lines: list[tuple[str, str]] = []
        for field in attrs.fields(PeerEntry):
            value = getattr(entry, field.name)
            if isinstance(value, Source):
                text = value.label
            elif isinstance(value, tuple):
                text = ", ".join(value) or "-"
            elif field.name in ("addr", "failures", "node_id"):
                text = "-" if value is None else str(value)
            else:
                text = _when(value, now)
            lines.append((field.name, text))
        lines += [
            ("proven", "yes" if entry.proven else "no"),
            ("network_group", network_group(entry.addr)),
            ("backing_off_until", _when(_backing_off_until(entry, now), now)),
        ]
        width = max(len(name) for name, _ in lines)
        print("\n".join(f"{name + ':':<{width + 1}} {text}" for name, text in lines))
    return EXIT_OK


def cmd_stats(args: argparse.Namespace, target: Target, now: int) -> int:
    """Counts per tier, network group and age; what the next start would do."""
    snapshot = read_snapshot(target)
    _warn_if_damaged(snapshot)
    entries = snapshot.entries
    load = next_load(entries, target.config, now, snapshot.offline_at(now), own=target)
    tiers = Counter(e.source for e in entries)
    groups = Counter(network_group(e.addr) for e in entries).most_common()
    ages: Counter[str] = Counter(_age_bucket(now - e.last_seen) for e in entries)
    data: dict[str, Any] = {
        "file": str(snapshot.path),
        "realm": snapshot.realm,
        "saved_at": snapshot.saved_at,
        "intact": snapshot.intact,
        "entries": len(entries),
        "max_entries": target.config.max_entries,
        "tiers": {s.label: tiers[s] for s in sorted(Source, reverse=True)},
        "proven": sum(e.proven for e in entries),
        "backing_off": sum(_backing_off_until(e, now) is not None for e in entries),
        "network_groups": len(groups),
        "top_network_groups": [{"group": g, "entries": n} for g, n in groups[:TOP_GROUPS]],
        "last_seen": {label: ages[label] for label in _age_labels()},
        "next_start": {
            "kept": len(load.kept),
            "dropped": len(load.dropped),
            **attrs.asdict(load.report, filter=lambda a, _: a.name not in ("loaded", "dropped")),
            "reconnect_plan": list(load.plan),
        },
    }
    if args.json:
        _print_json(data)
        return EXIT_OK
    state = "intact" if snapshot.intact else f"damaged, {_entries(len(entries))} readable"
    saved = "" if snapshot.saved_at is None else f", saved {_ago(snapshot.saved_at, now)}"
    print(f"peer file {snapshot.path}")
    print(f"  realm {snapshot.realm}{saved}, {state}")
    print(f"entries: {len(entries)} (max_entries {target.config.max_entries})")
    for label, count in data["tiers"].items():
        print(f"  {label:<12}{count:>6}")
    print(f"  proven      {data['proven']:>6}")
    print(f"  backing off {data['backing_off']:>6}")
    print(f"network groups: {len(groups)}" + (f", top {TOP_GROUPS}:" if groups else ""))
    for group, count in groups[:TOP_GROUPS]:
        print(f"  {group:<24}{count:>6}")
    print("last seen:")
    for label, count in data["last_seen"].items():
        print(f"  {label:<12}{count:>6}")
    drops = ", ".join(f"{v} {k}" for k, v in data["next_start"].items() if isinstance(v, int))
    print(f"next start: {drops}")
    print(
        f"  reconnect plan ({len(load.plan)} of reconnect_limit {target.config.reconnect_limit}):"
    )
    for number, addr in enumerate(load.plan, start=1):
        print(f"    {number}. {addr}")
    if not load.plan:
        print("    (none: no proven peer to dial; the node starts from its seeds)")
    return EXIT_OK


def _age_bucket(age: int) -> str:
    for limit, label in _AGE_BUCKETS:
        if age < limit:
            return label
    return _AGE_OLDEST


def _age_labels() -> list[str]:
    return [label for _, label in _AGE_BUCKETS] + [_AGE_OLDEST]


def cmd_verify(args: argparse.Namespace, target: Target, now: int) -> int:
    """Schema, realm and integrity: 0 intact, 1 damaged, 2 unusable."""
    try:
        snapshot = read_snapshot(target)
    except CommandError as exc:
        print(f"unusable: {exc}")
        return EXIT_ERROR
    if snapshot.intact:
        saved = "" if snapshot.saved_at is None else f", saved {_when(snapshot.saved_at, now)}"
        print(
            f"intact: peer file {snapshot.path}, realm {snapshot.realm}, "
            f"{_entries(len(snapshot.entries))}{saved}"
        )
        schema = snapshot.decoded.schema
        if schema is not None and schema < codec.SCHEMA:
            print(
                f"  schema {schema}: a node reads it and writes schema {codec.SCHEMA} "
                "at its next save"
            )
        return EXIT_OK
    print(f"damaged: peer file {snapshot.path}")
    for problem in snapshot.problems:
        print(f"  - {problem}")
    print(
        f"{_entries(len(snapshot.entries))} would be salvaged: at its next start a node moves the "
        f"file aside ({snapshot.path.name}.corrupt-<time>) and keeps them; `peerstore seal` "
        "keeps them in place now"
    )
    return EXIT_NOT_ALL


def cmd_add(args: argparse.Namespace, target: Target, now: int) -> int:
    """Add one address."""
    realm = target.realm if target.realm is not None else _realm_for_writing(target)
    with locked(target, realm) as peer_file:
        snapshot = _writable_snapshot(target, peer_file, must_exist=False)
        entries = list(snapshot.entries) if snapshot is not None else []
        offline = snapshot.offline_at(now) if snapshot is not None else []
        version = snapshot.decoded.version if snapshot is not None else None
        present = next((e for e in entries if e.addr == args.addr), None)
        if present is not None:
            print(
                f"{PROG}: {args.addr} is already in peer file {target.path} "
                f"({present.source.label}); nothing changed. Remove it first to add it anew",
                file=sys.stderr,
            )
            return EXIT_NOT_ALL
        if args.addr in target.own_addrs or (
            args.node_id is not None and args.node_id == target.own_node_id
        ):
            what = "address" if args.addr in target.own_addrs else f"id ({args.node_id})"
            raise CommandError(
                f"{args.addr}: this is the node's own {what} in {target.named_by}; the node never "
                "stores itself; nothing changed"
            )
        entry = PeerEntry.new(args.addr, args.source, now).replace(node_id=args.node_id)
        load = next_load([*entries, entry], target.config, now, offline, own=target)
        if any(d.entry is entry for d in load.dropped):
            raise CommandError(
                f"peer file {target.path} is full of more trusted peers (max_entries = "
                f"{target.config.max_entries}): the node would drop {args.addr} at its next start; "
                "nothing changed"
            )
        save(
            peer_file,
            [*entries, entry],
            now,
            offline=load.offline,
            version=version,
            keys=target.keys,
        )
    proof = ""
    if entry.proven and args.addr in load.plan:
        proof = " (proven: the next start dials it before the seeds)"
    elif entry.proven:
        proof = (
            f" (proven, but not in the next start's plan: it dials the {len(load.plan)} most"
            " recently connected proven peers, one per network group first; `peerstore stats`"
            " shows the plan)"
        )
    print(f"added {args.addr} as {entry.source.label}{proof} to {target.path}")
    if len(load.dropped) > 0:
        print(
            f"note: the next start drops {_entries(len(load.dropped))};"
            " `peerstore prune` lists them"
        )
    return EXIT_OK


def cmd_remove(args: argparse.Namespace, target: Target, now: int) -> int:
    """Remove addresses."""
    realm = _realm_for_writing(target)
    wanted = list(dict.fromkeys(args.addrs))
    with locked(target, realm) as peer_file:
        snapshot = _writable_snapshot(target, peer_file, must_exist=True)
        assert snapshot is not None
        present = {e.addr for e in snapshot.entries}
        removed = [a for a in wanted if a in present]
        missing = [a for a in wanted if a not in present]
        if removed:
            kept = [e for e in snapshot.entries if e.addr not in removed]
            load = next_load(kept, target.config, now, snapshot.offline_at(now), own=target)
            save(
                peer_file,
                kept,
                now,
                offline=load.offline,
                version=snapshot.decoded.version,
                keys=target.keys,
            )
    for addr in removed:
        print(f"removed {addr}")
    for addr in missing:
        print(f"{PROG}: {addr} is not in peer file {target.path}", file=sys.stderr)
    if not removed:
        print(f"{target.path} unchanged")
    return EXIT_NOT_ALL if missing else EXIT_OK


def cmd_prune(args: argparse.Namespace, target: Target, now: int) -> int:
    """Drop now what the next start would drop."""
    realm = _realm_for_writing(target)
    with locked(target, realm) as peer_file:
        snapshot = _writable_snapshot(target, peer_file, must_exist=True)
        assert snapshot is not None
        load = next_load(snapshot.entries, target.config, now, snapshot.offline_at(now), own=target)
        _print_drops(load)
        if not load.changes:
            print(f"nothing to prune: the next start keeps all {_entries(len(load.kept))}")
            return EXIT_OK
        if args.dry_run:
            print(f"dry run: {target.path} unchanged; the next start keeps {len(load.kept)}")
            return EXIT_OK
        save(
            peer_file,
            load.kept,
            now,
            offline=load.offline,
            version=snapshot.decoded.version,
            keys=target.keys,
        )
    print(f"pruned {target.path}: {len(load.dropped)} dropped, {len(load.kept)} kept")
    return EXIT_OK


def _print_drops(load: NextLoad) -> None:
    for drop in load.dropped:
        print(f"drop {drop.entry.addr} ({drop.entry.source.label}): {drop.reason}")
    for entry in load.clamped:
        print(f"keep {entry.addr} ({entry.source.label}): a time in the future set to now")


def _read_existing(target: Target, realm: str, peer_file: PeerFile) -> tuple[bytes, Snapshot]:
    """The file's bytes, read under its lock, and what they hold; an error when there is none."""
    data = _read_locked(peer_file)
    if data is None:
        raise CommandError(f"no peer file at {target.path} ({target.named_by})")
    return data, read_snapshot(attrs.evolve(target, realm=realm), data)


def cmd_seal(args: argparse.Namespace, target: Target, now: int) -> int:
    """Rewrite a hand-edited file with the entries that pass the store's rules."""
    realm = _realm_for_writing(target)
    with locked(target, realm) as peer_file:
        _, snapshot = _read_existing(target, realm, peer_file)
        if not snapshot.realm_readable:
            raise CommandError(
                f"peer file {target.path} names no readable realm, so no entry can be read from "
                f'it; fix its realm line by hand (realm = "{realm}") and seal again. It is '
                "unchanged"
            )
        load = next_load(snapshot.entries, target.config, now, snapshot.offline_at(now), own=target)
        if snapshot.intact and not load.changes:
            print(f"intact: {target.path} holds {_entries(len(load.kept))}; nothing to seal")
            return EXIT_OK
        for problem in snapshot.problems:
            print(f"found: {problem}")
        _print_drops(load)
        if args.dry_run:
            print(
                f"dry run: {target.path} unchanged; sealing would keep {_entries(len(load.kept))}"
            )
            return EXIT_OK
        backup = keep_backup(target.path, now)
        save(
            peer_file,
            load.kept,
            now,
            offline=load.offline,
            version=snapshot.decoded.version,
            keys=target.keys,
        )
    print(f"sealed {target.path}: {_entries(len(load.kept))} kept; the previous file is {backup}")
    return EXIT_OK


# -- TheNodes' peers.json ----------------------------------------------------------------------


class TheNodesSource(enum.Enum):
    """``PeerSource`` of TheNodes' ``src/network/peer_store.rs``."""

    BOOTSTRAP = "Bootstrap"
    HANDSHAKE = "Handshake"
    GOSSIP = "Gossip"
    MANUAL = "Manual"


def _in_range(high: int) -> Callable[[object, attrs.Attribute[Any], int | None], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
        if value is not None and not 0 <= value <= high:
            raise ValueError(f"{attribute.name} = {value}: must be 0 to {high}")

    return check


@attrs.frozen
class TheNodesRecord:
    """One record of TheNodes' ``peers.json`` (``PeerRecord``), as serde reads it.

    ``addr`` is a socket address, ``failures`` a u32, ``last_success_epoch`` a u64 or null
    (absent reads as null), ``node_id`` and ``capabilities`` optional (absent or null). Keys
    beyond these are ignored, as serde ignores them.
    """

    addr: str
    source: TheNodesSource
    failures: int = attrs.field(validator=_in_range(U32_MAX))
    last_success_epoch: int | None = attrs.field(default=None, validator=_in_range(U64_MAX))
    node_id: str | None = None
    capabilities: tuple[str, ...] | None = None


_RECORD_KEYS = tuple(a.name for a in attrs.fields(TheNodesRecord))


@attrs.frozen
class Imported:
    """A TheNodes record as an entry, with what was left out of it."""

    entry: PeerEntry
    notes: tuple[str, ...] = ()


def entry_from_thenodes(record: TheNodesRecord, now: int) -> Imported:
    """The entry for a TheNodes record; raise :class:`AddressError` for an address not stored."""
    addr = canonical_addr(record.addr)
    epoch = record.last_success_epoch
    notes: list[str] = []
    last_connected = None
    if record.source is TheNodesSource.HANDSHAKE and epoch is not None:
        source, last_connected = Source.CONNECTED, epoch
    elif record.source is TheNodesSource.HANDSHAKE:
        source = Source.GOSSIP
        notes.append("a Handshake record without last_success_epoch: imported unproven, as Gossip")
    elif record.source in (TheNodesSource.BOOTSTRAP, TheNodesSource.MANUAL):
        if epoch is not None and record.node_id is not None:  # a seed TheNodes connected to
            source, last_connected = Source.CONNECTED, epoch
        else:
            source = Source.BOOTSTRAP
    else:
        source = Source.GOSSIP
    seen = now if epoch is None else epoch
    node_id = None if record.node_id is None else valid_node_id(record.node_id)
    if record.node_id is not None and node_id is None:
        notes.append(f"node_id {show(record.node_id)} left out: not 1 to 128 of [A-Za-z0-9._-]")
    given = record.capabilities or ()
    capabilities = valid_capabilities(given)
    left_out = [c for c in dict.fromkeys(given) if c not in capabilities]
    if left_out:
        notes.append(f"capabilities left out: {', '.join(show(c) for c in left_out)}")
    entry = PeerEntry(
        addr=addr,
        source=source,
        first_seen=seen,
        last_seen=seen,
        last_connected=last_connected,
        failures=record.failures,
        node_id=node_id,
        capabilities=capabilities,
    )
    return Imported(entry, tuple(notes))


def thenodes_record(entry: PeerEntry) -> dict[str, Any]:
    """The TheNodes record of an entry, keys in the order TheNodes writes them."""
    if entry.proven:
        source = TheNodesSource.HANDSHAKE
    elif entry.source is Source.BOOTSTRAP:
        source = TheNodesSource.BOOTSTRAP
    else:
        source = TheNodesSource.GOSSIP
    epoch = entry.last_connected
    record: dict[str, Any] = {
        "addr": entry.addr,
        "source": source.value,
        "failures": min(entry.failures, U32_MAX),
        "last_success_epoch": None if epoch is None else min(epoch, U64_MAX),
    }
    if entry.node_id is not None:
        record["node_id"] = entry.node_id
    if entry.capabilities:
        record["capabilities"] = list(entry.capabilities)
    return record


def read_thenodes_file(path: Path) -> list[object]:
    """The records of a ``peers.json``; raise :class:`CommandError` if it is not one."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CommandError(f"TheNodes peer file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise CommandError(f"TheNodes peer file {path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CommandError(
            f"TheNodes peer file {path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CommandError(f"TheNodes peer file {path}: not valid JSON ({exc})") from None
    if not isinstance(document, list):
        raise CommandError(
            f"TheNodes peer file {path}: expected a JSON array of peer records, got "
            f"{type(document).__name__}"
        )
    return document


def parse_thenodes_record(raw: object, index: int) -> TheNodesRecord:
    """One record; raise :class:`ValueError` with a message naming where it is wrong."""
    if not isinstance(raw, dict):
        raise ValueError(f"records[{index}]: expected an object, got {show(raw)}")
    known = {key: value for key, value in raw.items() if key in _RECORD_KEYS}
    for key in ("last_success_epoch", "node_id", "capabilities"):
        if known.get(key, 0) is None:
            del known[key]  # serde reads null as None, as it reads an absent key
    try:
        return converter.structure(known, TheNodesRecord)
    except Exception as exc:  # any failure to structure is a record that is not TheNodes'
        raise ValueError("; ".join(describe_error(exc, f"records[{index}]"))) from None


def cmd_import(args: argparse.Namespace, target: Target, now: int) -> int:
    """Bring the peers of a TheNodes ``peers.json`` into the file."""
    source_path = Path(args.thenodes)
    raw_records = read_thenodes_file(source_path)
    imported: list[Imported] = []
    unusable: list[str] = []
    for index, raw in enumerate(raw_records):
        try:
            record = parse_thenodes_record(raw, index)
            imported.append(entry_from_thenodes(record, now))
        except AddressError as exc:
            unusable.append(f"records[{index}]: addr {exc}")
        except ValueError as exc:
            unusable.append(str(exc))
    realm = target.realm if target.realm is not None else _realm_for_writing(target)
    with locked(target, realm) as peer_file:
        snapshot = _writable_snapshot(target, peer_file, must_exist=False)
        existing = list(snapshot.entries) if snapshot is not None else []
        offline = snapshot.offline_at(now) if snapshot is not None else []
        version = snapshot.decoded.version if snapshot is not None else None
        new = [i.entry for i in imported]
        load = next_load([*existing, *new], target.config, now, offline)
        save(peer_file, load.kept, now, offline=load.offline, version=version, keys=target.keys)
    kept = set(load.kept)
    taken = [i for i in imported if i.entry.clamped(now) in kept]
    counts = Counter(i.entry.source for i in taken)
    tiers = ", ".join(f"{counts[s]} {s.label}" for s in sorted(Source, reverse=True) if counts[s])
    print(
        f"imported {len(taken)} of {len(raw_records)}"
        f" record{'' if len(raw_records) == 1 else 's'} from {source_path} into "
        f"{target.path}" + (f" ({tiers})" if tiers else "")
    )
    for item in taken:
        for note in item.notes:
            print(f"  {item.entry.addr}: {note}")
    new_ids = {id(entry) for entry in new}
    for drop in load.dropped:
        where = "not imported" if id(drop.entry) in new_ids else "dropped from the file"
        print(f"  {where}: {drop.entry.addr} ({drop.entry.source.label}): {drop.reason}")
    for problem in unusable:
        print(f"  not imported: {problem}")
    print(f"{target.path} holds {_entries(len(load.kept))}")
    return EXIT_NOT_ALL if unusable else EXIT_OK


def cmd_export(args: argparse.Namespace, target: Target, now: int) -> int:
    """The file's peers, to standard output, as TheNodes' ``peers.json``, JSON or a peer file.

    Peers of an encrypted file (or read with a key) are written in the clear only with
    ``--plaintext``; without it, ``--format toml`` writes an encrypted peer file.
    """
    snapshot = read_snapshot(target)
    _warn_if_damaged(snapshot)
    secret = snapshot.sealed or target.keys.key is not None
    if secret and not args.plaintext and args.format != "toml":
        raise CommandError(
            f"peer file {target.path} is encrypted: add --plaintext to write its peers in the "
            f"clear as {args.format}, or use --format toml for an encrypted peer file"
        )
    entries = by_trust(snapshot.entries)
    if args.format == "thenodes":
        _print_json([thenodes_record(e) for e in entries])
    elif args.format == "json":
        _print_json(
            {
                "realm": snapshot.realm,
                "version": snapshot.decoded.version,
                "saved_at": snapshot.saved_at,
                "offline": [list(pair) for pair in snapshot.decoded.offline],
                "peers": [converter.unstructure(e) for e in entries],
            }
        )
    else:
        data = codec.encode(
            snapshot.realm,
            now if snapshot.saved_at is None else snapshot.saved_at,
            entries,
            version=snapshot.decoded.version,
            offline=snapshot.decoded.offline,
        )
        if secret and not args.plaintext:
            key = target.keys.key
            assert key is not None  # a sealed file was opened with it
            sealed = sealing.seal(data, key, realm=snapshot.realm, version=snapshot.decoded.version)
            sys.stdout.flush()
            sys.stdout.buffer.write(sealed)
        else:
            sys.stdout.write(data.decode())
    return EXIT_OK


def cmd_rekey(args: argparse.Namespace, target: Target, now: int) -> int:
    """Seal the file with a new key, in one atomic replace; a plain file is encrypted."""
    new_key = key_of(args.new_key_file, args.new_key_env)
    assert new_key is not None  # argparse requires one of the two
    realm = _realm_for_writing(target)
    with locked(target, realm) as peer_file:
        data, snapshot = _read_existing(target, realm, peer_file)
        if not snapshot.intact:
            raise CommandError(
                f"peer file {target.path} is damaged ({'; '.join(snapshot.problems[:3])}); it "
                "is unchanged. `peerstore seal` repairs it first"
            )
        plain = _unseal(target, data, realm) if snapshot.sealed else data
        write(peer_file, plain, sealing.Sealing.with_key(new_key), snapshot.decoded.version)
    was = f"encrypted with {target.keys.key.source}" if target.keys.key else "plain"
    print(
        f"rekeyed {target.path}: {_entries(len(snapshot.entries))}, {was} before, now encrypted "
        f"with {new_key.source}"
    )
    return EXIT_OK


# -- the command line --------------------------------------------------------------------------

Command = Callable[[argparse.Namespace, Target, int], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Look into a node's peer file, repair it after a hand edit, and move peers "
        "from and to TheNodes' peers.json.",
        epilog="Exit status: 0 done; 1 done, but verify found damage, an address was not found "
        "or already there, or import could not use some records; 2 nothing done (usage error, "
        "or a file that cannot be used: missing, another realm, newer schema, held by a node).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    naming = common.add_argument_group("which file")
    exclusive = naming.add_mutually_exclusive_group(required=True)
    exclusive.add_argument(
        "-c",
        "--config",
        metavar="HOSTCONFIG",
        help="the node's host config: the file and the store's settings are the node's",
    )
    exclusive.add_argument(
        "-f", "--file", metavar="PATH", help="the peer file itself (default settings)"
    )
    naming.add_argument(
        "--realm",
        metavar="CODE",
        help="with --file: the realm the file must be of (needed to create one)",
    )
    keying = common.add_argument_group(
        "encryption", "the key of an encrypted peer file (else the config's); writes are sealed"
    )
    key_source = keying.add_mutually_exclusive_group()
    key_source.add_argument(
        "--key-file", metavar="PATH", help="32 random bytes, or a passphrase (mode 0600)"
    )
    key_source.add_argument(
        "--key-env", metavar="NAME", help="a variable of 64 hex digits or a passphrase"
    )

    def command(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    tiers = f"one of {_labels()}"
    listing = command("list", cmd_list, "list the peers, most trusted first")
    listing.add_argument(
        "--source",
        type=_source,
        action="append",
        metavar="TIER",
        help=f"only this tier ({tiers}); may be given more than once",
    )
    listing.add_argument("--json", action="store_true", help="print JSON, for scripts")
    showing = command("show", cmd_show, "show every field of one entry")
    showing.add_argument("addr", type=_address, metavar="ADDR")
    showing.add_argument("--json", action="store_true", help="print JSON, for scripts")
    stats = command("stats", cmd_stats, "count per tier, network group and age; next start")
    stats.add_argument("--json", action="store_true", help="print JSON, for scripts")
    command("verify", cmd_verify, "check schema, realm and integrity (exit 0, 1 or 2)")
    adding = command("add", cmd_add, "add an address")
    adding.add_argument("addr", type=_address, metavar="ADDR")
    adding.add_argument(
        "--source",
        type=_source,
        default=Source.BOOTSTRAP,
        metavar="TIER",
        help=f"its tier ({tiers}; default {Source.BOOTSTRAP.label})",
    )
    adding.add_argument("--node-id", type=_node_id, metavar="ID", help="its node id")
    removing = command("remove", cmd_remove, "remove addresses")
    removing.add_argument("addrs", type=_address, nargs="+", metavar="ADDR")
    for name, run, text in (
        ("prune", cmd_prune, "drop now what the next start would drop (TTL, cap, duplicates)"),
        ("seal", cmd_seal, "after a hand edit: keep the valid entries, write a fresh trailer"),
    ):
        sub = command(name, run, text)
        sub.add_argument("--dry-run", action="store_true", help="say what it would do; no write")
    importing = command("import", cmd_import, "import the peers of a TheNodes peers.json")
    importing.add_argument(
        "--thenodes", required=True, metavar="PEERS_JSON", help="TheNodes' peers.json"
    )
    exporting = command("export", cmd_export, "write the peers to standard output")
    exporting.add_argument(
        "--format",
        choices=("thenodes", "json", "toml"),
        required=True,
        help="thenodes: TheNodes' peers.json; json: every field; toml: a peer file",
    )
    exporting.add_argument(
        "--plaintext",
        action="store_true",
        help="write the peers of an encrypted file in the clear",
    )
    rekeying = command("rekey", cmd_rekey, "encrypt the file with a new key (one atomic replace)")
    new_key = rekeying.add_mutually_exclusive_group(required=True)
    new_key.add_argument("--new-key-file", metavar="PATH", help="the new key, in a file")
    new_key.add_argument("--new-key-env", metavar="NAME", help="the new key, in a variable")
    return parser


def _entries(count: int) -> str:
    """``1 entry``, ``2 entries``."""
    return "1 entry" if count == 1 else f"{count} entries"


def _version() -> str:
    try:
        return importlib.metadata.version("thenodes-peerstore")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    with _escaped_output(), _logging_to_stderr():
        try:
            target = target_of(args)
            run: Command = args.run
            return run(args, target, int(time.time()))
        except BrokenPipeError:
            # The reader went away (``peerstore list ... | head``): nothing more to say.
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_NOT_ALL
        except CommandError as exc:
            return _fail(str(exc))
        except PeerStoreError as exc:
            return _fail(str(exc))
        except OSError as exc:
            return _fail(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in "\n\t"}
"""Control characters, but line ends and tabs, as the escapes that show them."""


class _Escaping:
    """A text stream that writes control characters escaped: names and addresses read from a
    file or a command line never move the terminal's cursor or change its colours."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return int(self._stream.write(text.translate(_CONTROL)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def _escaped_output() -> Iterator[None]:
    with (
        contextlib.redirect_stdout(_Escaping(sys.stdout)),
        contextlib.redirect_stderr(_Escaping(sys.stderr)),
    ):
        yield


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


class _Lowercase(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace(record.levelname, record.levelname.lower(), 1)


@contextlib.contextmanager
def _logging_to_stderr() -> Iterator[None]:
    """Show warnings of the store and of this command on stderr, as ``peerstore: warning:``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Lowercase(f"{PROG}: %(levelname)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    package = logging.getLogger("thenodes_peerstore")
    package.addHandler(handler)
    try:
        yield
    finally:
        package.removeHandler(handler)
