"""A realm's peer file addressed from outside a running node, as the node's next start sees it:
the operator's door to the file.

The operator's ``peerstore`` command, and any tool like it, names a node's file by its host
config (resolved as the plugin resolves it: :func:`target_from_host_config`) or by its path
(:class:`Target`); reads it without a lock, as a start would (:func:`read_snapshot`: the
entries that validate, what is wrong, the stopped intervals); asks the store what the next
start keeps, drops and dials (:func:`next_load`); and changes it only in one transaction under
its lock, refusing while a node holds it (:func:`editing`): read once, the entries the command
leaves loaded by the node's own rules (:meth:`Edit.load`), and exactly what the store kept
written (:meth:`Edit.commit`).

Reading and writing the file itself, bytes, seal and format, is the one door's
(:mod:`thenodes_peerstore.door`), which the node's
:class:`~thenodes_peerstore.persistent.PersistentPeerStore` goes through too; this module says
what a finding means to a command. Every error it raises is a
:class:`~thenodes_peerstore.errors.StoreFileError` or another
:class:`~thenodes_peerstore.errors.PeerStoreError`, its message naming the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from thenodes_console import counted
from thenodes_naming import DEFAULT_REALM_CODE, DEFAULT_REALM_VERSION, realm_code
from thenodes_peerstore import door, sealing
from thenodes_peerstore.config import PersistenceConfig, locate, path_is_set
from thenodes_peerstore.convert import converter, describe_error, show
from thenodes_peerstore.door import Contents, Status
from thenodes_peerstore.errors import (
    AddressError,
    ConfigError,
    KeyRefusedError,
    NewerSchemaError,
    NotAPeerFileError,
    PeerFileDamagedError,
    PeerFileMissingError,
    PeerStoreError,
    RealmMismatchError,
    StoreFileError,
    StoreLockedError,
)
from thenodes_peerstore.files import (
    MAX_FILE_BYTES,
    PeerFile,
    read_capped,
    read_peer_file,
    validate_realm_code,
)
from thenodes_peerstore.model import PeerEntry, PlanHead, canonical_addr, valid_node_id
from thenodes_peerstore.persistent import configured_store
from thenodes_peerstore.sealing import Sealing
from thenodes_peerstore.store import Dropped, LoadReport, PeerStore

__all__ = [
    "Edit",
    "NextLoad",
    "Target",
    "by_trust",
    "editing",
    "entries_phrase",
    "export_document",
    "keep_backup",
    "key_of",
    "locked",
    "next_load",
    "read_bytes",
    "read_export",
    "read_snapshot",
    "realm_named_in",
    "store_for",
    "target_from_host_config",
    "unsealed",
    "warn_if_damaged",
]

logger = logging.getLogger(__name__)

DEFAULT_STATE_DIR = "data"
DEFAULT_PORT = 50000
THENODES_DEFAULT_NAME = "peers.json"
"""TheNodes' own peer store when its ``path`` is not set: ``{state_dir}/peers.json``."""


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
    keys: Sealing = sealing.PLAIN
    """The key that opens the file and seals what is written (``--key-file``, ``--key-env``,
    or the config's); with none, what is written is plain."""
    state_dir: Path | None = None
    """The node's state directory (from ``--config``)."""
    thenodes: Path | None = None
    """Where TheNodes keeps its own peer store for this node (from ``--config``): the
    ``peers.json`` its ``path`` names, else TheNodes' default, ``{state_dir}/peers.json``."""


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
        located = locate(config, state_dir, code, path_set=path_is_set(data))
        path = located.path
        legacy = located.legacy
        if legacy is not None and not os.path.lexists(path) and os.path.lexists(legacy):
            # the node's next start moves it to `path`
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
        keys = Sealing.from_config(config)
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
        state_dir,
        located.thenodes or state_dir / THENODES_DEFAULT_NAME,
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


realm_named_in = door.named_realm


def read_snapshot(target: Target, data: bytes | None = None) -> Contents:
    """Read the target's file through the one door (no lock needed), or what ``data`` holds of
    it; raise a :class:`StoreFileError` naming the file when it cannot be used: missing,
    unreadable, not a peer file, of another realm or a newer schema, or encrypted with no key
    that opens it.

    A damaged file is no error: the contents are what a node would salvage of it.
    """
    contents = _read(target, data)
    if contents.status is Status.MISSING:
        raise _missing(target)
    if contents.realm is None:  # a file that names none: shown as the empty realm
        return attrs.evolve(contents, realm="")
    return contents


def _read(target: Target, data: bytes | None = None) -> Contents:
    """:func:`read_snapshot`, a missing file being a ``MISSING`` status."""
    if data is None:
        data = read_peer_file(target.path)
    sealed = data is not None and len(data) <= MAX_FILE_BYTES and door.is_sealed(data)
    if sealed and not target.keys.required:  # how to give a key comes first, then the realm
        raise _refused(target)
    try:
        contents = door.read(
            target.path,
            realm=target.realm,
            version=target.version,
            keys=target.keys,
            data=data,
        )
    except RealmMismatchError as exc:
        raise RealmMismatchError(
            f"peer file {target.path}: {exc}; check {target.named_by}; the file is left untouched",
            found=exc.found,
            expected=exc.expected,
        ) from None
    if contents.status is Status.NEWER_SCHEMA:
        raise NewerSchemaError(
            f"peer file {target.path}: {contents.problems[0]}; it is left untouched (use that "
            "version's peerstore)",
            schema=contents.schema or 0,
        )
    if contents.status is Status.KEY_REFUSED:
        raise _refused(target, contents.problems[0])
    if not contents.recognisable:
        raise NotAPeerFileError(
            f"{target.path} is not a peer file (it has no schema, realm or [[peers]] table that"
            f" can be read); check {target.named_by}. It is left untouched (a node would set it"
            " aside and start without stored peers)"
        )
    return contents


def _missing(target: Target) -> PeerFileMissingError:
    """No file where ``target`` names one; with TheNodes' own peer store at hand, how to bring
    its peers in."""
    message = f"no peer file at {target.path} ({target.named_by})"
    if target.thenodes is not None and os.path.isfile(target.thenodes):
        message += (
            f"; TheNodes' own peer store is {target.thenodes}: `peerstore import --thenodes "
            f"{target.thenodes} {target.named_by}` brings its peers in"
        )
    return PeerFileMissingError(message)


def _refused(target: Target, problem: str | None = None) -> KeyRefusedError:
    """An encrypted file that no key at hand opens: with none given, how to give one."""
    if problem is None or not target.keys.required:
        return KeyRefusedError(
            f"peer file {target.path} is encrypted: give its key with --key-file PATH or "
            "--key-env NAME, or the node's config with -c; it is left untouched"
        )
    return KeyRefusedError(f"{problem}; it is left untouched")


def unsealed(target: Target, data: bytes) -> bytes:
    """The plain bytes of the target's encrypted file, as they are (a damaged one's too);
    raise :class:`KeyRefusedError` when no key at hand opens it, :class:`SealDamagedError`
    when it is not whole."""
    if not target.keys.required:
        raise _refused(target)
    try:
        return door.plain_of(
            data, target.path, realm=target.realm, keys=target.keys, version=target.version
        )
    except KeyRefusedError as exc:
        raise _refused(target, str(exc)) from None


def read_bytes(target: Target) -> bytes:
    """The target's file as it is; :class:`PeerFileMissingError` when there is none."""
    data = read_peer_file(target.path)
    if data is None:
        raise _missing(target)
    return data


def warn_if_damaged(snapshot: Contents) -> None:
    """Log a warning when the file is damaged: what is wrong, and what is shown of it."""
    if not snapshot.intact:
        logger.warning(
            "peer file %s is damaged (%s); showing the %d entries a node would salvage. "
            "`peerstore verify` lists the problems, `peerstore seal` repairs it",
            snapshot.path,
            "; ".join(snapshot.problems[:3]) + ("; ..." if len(snapshot.problems) > 3 else ""),
            len(snapshot.entries),
        )


# -- the file as JSON --------------------------------------------------------------------------


def export_document(contents: Contents, entries: Iterable[PeerEntry]) -> dict[str, Any]:
    """The file's ``entries`` as ``peerstore export --format json`` writes them, every field of
    each, with the header's facts: what :func:`read_export` reads back."""
    return {
        "realm": contents.realm,
        "version": contents.version,
        "saved_at": contents.saved_at,
        "offline": [list(pair) for pair in contents.offline],
        "peers": [converter.unstructure(e) for e in entries],
    }


def read_export(path: Path, *, realm: str, version: str) -> Contents:
    """What an export (:func:`export_document`) holds, as the contents of a file of ``realm``
    and ``version``: the entries that validate, and a problem naming each that does not.

    Raise :class:`StoreFileError` naming the file when it is not such an export, and
    :class:`RealmMismatchError` when it is another realm's or another version's: no entry ever
    crosses realms.
    """
    where = f"export {path}"
    try:
        data = read_capped(path)
    except OSError as exc:
        raise StoreFileError(f"{where}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise StoreFileError(f"{where}: larger than {MAX_FILE_BYTES} bytes")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise StoreFileError(f"{where}: not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("peers"), list):
        raise StoreFileError(
            f"{where}: expected an object with a peers array, as `peerstore export --format "
            "json` writes it"
        )
    named = document.get("realm")
    named_version = document.get("version") or DEFAULT_REALM_VERSION
    if named != realm or named_version != version:
        raise RealmMismatchError(
            f"{where} holds version {show(named_version)} of realm {show(named)}, not "
            f"{version!r} of {realm!r}; nothing was imported",
            found=f"{named} {named_version}",
            expected=f"{realm} {version}",
        )
    entries: list[PeerEntry] = []
    problems: list[str] = []
    fields = {a.name for a in attrs.fields(PeerEntry)}
    for index, raw in enumerate(document["peers"]):
        try:
            if not isinstance(raw, dict):
                raise TypeError(f"expected an object, got {show(raw)}")
            known = {k: v for k, v in raw.items() if k in fields and v is not None}
            entries.append(converter.structure(known, PeerEntry))
        except Exception as exc:  # any failure to structure is an entry not imported
            problems.extend(describe_error(exc, f"peers[{index}]"))
    saved_at = document.get("saved_at")
    offline = document.get("offline")
    pairs = (
        tuple((a, b) for a, b in offline)
        if isinstance(offline, list)
        and all(
            isinstance(p, list) and len(p) == 2 and all(type(t) is int for t in p) for p in offline
        )
        else ()
    )
    return Contents(
        path,
        Status.INTACT if not problems else Status.SALVAGED,
        realm=realm,
        entries=tuple(entries),
        problems=tuple(problems),
        saved_at=saved_at if type(saved_at) is int else None,
        offline=pairs,
        version=version,
        realm_readable=True,
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
    head: PlanHead
    """What the next start reads its plan from first (:meth:`PeerStore.plan_head`), which a
    rewrite of the file records too."""

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

    ``offline`` are the intervals the node was stopped (:meth:`Contents.offline_at`): entries
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
        head=store.plan_head(),
    )


def by_trust(entries: Iterable[PeerEntry]) -> list[PeerEntry]:
    """Most trusted first, then most recently seen, then by address."""
    return sorted(entries, key=lambda e: (-e.source.rank, -e.last_seen, e.addr))


# -- writing the file --------------------------------------------------------------------------


@contextlib.contextmanager
def locked(target: Target, realm: str | None, *, wait_secs: float) -> Iterator[PeerFile]:
    """The target's file, locked; refuse (:class:`StoreLockedError`, naming the holder's pid)
    while a node holds it. ``realm`` None leaves the realm to be read from the file.

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


@attrs.frozen
class Edit:
    """A writing command's one transaction on its locked file: what the file holds, what the
    node's next start makes of the entries the command leaves in it (:meth:`load`), and the
    one write of exactly that (:meth:`commit`). A command never writes entries the store did
    not load: the file it leaves is the one the next start keeps, entry for entry."""

    target: Target
    file: PeerFile
    contents: Contents | None
    """What the file holds; None when there is none yet."""
    realm: str
    now: int

    @property
    def entries(self) -> tuple[PeerEntry, ...]:
        """The entries the file holds (those that validate, for a damaged one)."""
        return () if self.contents is None else self.contents.entries

    @property
    def version(self) -> str:
        """The realm version the write records: the configured one (``--config``, or
        ``--file`` with ``--realm-version``), else the file's own, else, for a new file,
        TheNodes' default. A file without its version would be taken by a node of any
        version."""
        if self.target.version is not None:
            return self.target.version
        if self.contents is not None and self.contents.version is not None:
            return self.contents.version
        return DEFAULT_REALM_VERSION

    def load(
        self, entries: Sequence[PeerEntry], offline: Iterable[tuple[int, int]] | None = None
    ) -> NextLoad:
        """What the node's next start makes of ``entries`` (:func:`next_load`), with the node's
        settings, own addresses and id, and stopped intervals: the file's own, and the time
        since it was saved, unless ``offline`` says otherwise."""
        if offline is None:
            offline = [] if self.contents is None else self.contents.offline_at(self.now)
        return next_load(entries, self.target.config, self.now, offline, own=self.target)

    def commit(self, load: NextLoad, keys: Sealing | None = None) -> None:
        """Write what the next start keeps, most trusted first, atomically with a fresh
        trailer: sealed with ``keys`` (by default the target's), plain without a key, not at
        all when encryption is asked for without a usable key."""
        try:
            door.write(
                self.file,
                by_trust(load.kept),
                self.now,
                realm=self.realm,
                version=self.version,
                offline=load.offline,
                keys=self.target.keys if keys is None else keys,
                head=load.head,
            )
        except OSError as exc:
            raise StoreFileError(
                f"cannot write peer file {self.target.path}: {exc.strerror or exc}; it is unchanged"
            ) from None

    def keep_backup(self) -> Path:
        """Keep the file as it is now beside it (:func:`keep_backup`), sealed under the
        target's key when the file is plain and encryption is on: nothing in the clear."""
        sealed = None
        key = self.target.keys.key
        if key is not None and not (self.contents is not None and self.contents.sealed):
            sealed = door.sealer(key, self.realm, self.version)
        return keep_backup(self.target.path, self.now, sealed=sealed)


@contextlib.contextmanager
def editing(
    target: Target,
    now: int,
    *,
    must_exist: bool,
    wait_secs: float,
    damaged: str | None = "",
) -> Iterator[Edit]:
    """The target's file, locked and read once, for one writing command's :class:`Edit`.

    Raise :class:`PeerFileMissingError` when there is no file and the command ``must_exist``
    (or has no realm to make one of), and what :func:`read_snapshot` raises for a file that
    cannot be used. A damaged file is refused (:class:`PeerFileDamagedError`, its message
    ending with ``damaged``, by default how ``seal`` repairs it) unless ``damaged`` is None:
    only ``seal`` rewrites one, keeping the previous file.
    """
    no_realm = f"no peer file at {target.path}: give --realm CODE to create one, or use --config"
    if target.realm is None and not os.path.lexists(target.path):
        raise PeerFileMissingError(no_realm)
    with locked(target, target.realm, wait_secs=wait_secs) as peer_file:
        found = _read(target)
        contents = None if found.status is Status.MISSING else found
        if contents is None and target.realm is None:  # gone since it was looked for
            raise PeerFileMissingError(no_realm)
        if contents is None and must_exist:
            raise _missing(target)
        realm = target.realm if contents is None else contents.realm
        if realm is None:
            raise StoreFileError(
                f"peer file {target.path} names no readable realm; give --realm CODE, or fix "
                'its realm line by hand (realm = "...")'
            )
        validate_realm_code(realm)
        if contents is not None and not contents.intact and damaged is not None:
            raise PeerFileDamagedError(
                f"peer file {target.path} is damaged ({'; '.join(contents.problems[:3])}); it "
                "is unchanged. "
                + (
                    damaged
                    or f"`peerstore seal` keeps the {entries_phrase(len(contents.entries))} "
                    "that validate and sets the previous file beside it"
                )
            )
        yield Edit(target, peer_file, contents, realm, now)


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


def entries_phrase(count: int) -> str:
    """``1 entry``, ``2 entries``."""
    return counted(count, "entry")
