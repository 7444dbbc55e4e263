"""PersistentPeerStore: a PeerStore kept in its realm's file, saved on a cadence.

This is the library entry point for a host that does not use the plugin::

    book = PersistentPeerStore.open(
        path=Path("data/plugins/peerstore/example.toml"), realm="example", clock=time.time,
    )
    for addr in book.store.reconnect_plan():
        dial(addr)
    ...
    book.store.record_connected("203.0.113.10:7447", node_id="node-b")
    book.tick()      # call about once a second: saves at most once per save_interval_secs
    ...
    book.close()     # saves if needed and releases the file

This is the node's door to its file: reading and writing it (bytes, seal, format) is the one
door's, :mod:`thenodes_peerstore.door`, which the ``peerstore`` command goes through too; this
module keeps the store and says what a finding means to a running node (a damaged file set
aside, a newer one or one no key opens left alone, a failed save tried again).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from thenodes_console import counted
from thenodes_peerstore import codec, door, files, sealing
from thenodes_peerstore.config import PersistenceConfig
from thenodes_peerstore.door import Contents, FirstRead, Status
from thenodes_peerstore.errors import (
    ClockError,
    KeyUnusableError,
    RealmMismatchError,
    TheNodesFileError,
)
from thenodes_peerstore.files import PeerFile
from thenodes_peerstore.store import LoadReport, PeerStore, plan_from_head
from thenodes_peerstore.thenodes import entries_from_thenodes, read_thenodes_file

logger = logging.getLogger(__name__)

MAX_TICK_GAP_SECS = 600
"""Host time between two ticks past which the node was not running (a suspended host, a clock
that jumped ahead): the rest of the gap ages no entry. Hosts tick about once a second."""
HEARTBEAT_MAX_SECS = 3600
"""A running node with nothing to save still writes at least this often (and at least every
sixteenth of ``ttl_secs``), so its running time is not later taken for downtime."""
HEADER_BYTES = 4096 + sealing.MAX_HEADER + sealing.TAG_BYTES
"""Room kept in the file for its header and trailer, and for the envelope of an encrypted
file (its header and tag), so that an encrypted file of a full store also loads whole."""


def extras_budget(max_entries: int) -> int:
    """What the entries of a store capped at ``max_entries`` may hold in node ids and
    capabilities, so that the file it writes is always one the loader reads whole."""
    return files.MAX_FILE_BYTES - HEADER_BYTES - max_entries * codec.MAX_BARE_ENTRY_BYTES


def configured_store(
    config: PersistenceConfig,
    clock: Callable[[], float],
    *,
    own_addrs: Iterable[str] = (),
    own_node_id: str | None = None,
) -> PeerStore:
    """An empty store with the settings ``config`` gives it, its size budget
    (:func:`extras_budget`) and the node's own addresses and id: the one place they are
    applied, to a node's store and to the ``peerstore`` command's view of its next start."""
    return PeerStore(
        clock=clock,
        max_entries=config.max_entries,
        ttl_secs=config.ttl_secs,
        reconnect_limit=config.reconnect_limit,
        gossip_per_sender_per_hour=config.gossip_per_sender_per_hour,
        own_addrs=own_addrs,
        own_node_id=own_node_id,
        extras_budget=extras_budget(config.max_entries),
    )


LoadStatus = Status
"""What a start found on disk (:class:`~thenodes_peerstore.door.Status`)."""


def load_file(
    peer_file: PeerFile,
    now: int,
    *,
    version: str | None = None,
    keys: sealing.Sealing = sealing.PLAIN,
    first: FirstRead | None = None,
) -> Contents:
    """Read -> decode -> set aside if damaged: what an open store starts from
    (:func:`thenodes_peerstore.door.load`); ``first``, what a start read of it for its plan.

    A damaged file is renamed aside to ``<name>.corrupt-<now>`` and the entries that still
    validate are returned. If it cannot be renamed, the error is logged, the file is left where
    it is and the salvaged entries are returned all the same, with ``quarantined`` None. A file
    of a newer schema is left untouched. Raise :class:`RealmMismatchError` naming the file for
    another realm's file, which is left untouched too, and
    :class:`~thenodes_peerstore.errors.StoreFileError` naming the file when it cannot be read.
    With ``version``, a file of another version of the realm is another realm's file.

    An encrypted file is opened with ``keys``; one that they cannot open is left untouched
    (``KEY_REFUSED``), and one that fails authentication is damaged: nothing of it is salvaged.
    With encryption on, nothing is set aside in the clear: a damaged plain file is set aside
    sealed under the key, and left in place when it cannot be (no usable key, too large).
    """
    try:
        return door.load(peer_file, now, version=version, keys=keys, first=first)
    except RealmMismatchError as exc:
        raise RealmMismatchError(
            f"peer file {peer_file.path}: {exc}. Check [network.persistence] path and "
            "[realm]; the file is left unchanged",
            found=exc.found,
            expected=exc.expected,
        ) from exc


def adopt_legacy_file(legacy: Path, path: Path) -> Path:
    """Move a realm's file from ``legacy``, where the default ``path`` put it before TheNodes
    0.4, to ``path``, the default now; return the file the store opens.

    That is ``path``, except when the file could not be renamed (a different file system, for
    one): then it stays at ``legacy``, which this run uses, with an error naming both, and the
    next start tries again. When both exist, ``path`` is kept and ``legacy`` is left untouched,
    with a warning naming both. Nothing is ever copied or overwritten.

    Raise :class:`~thenodes_peerstore.errors.StoreLockedError` when another store holds either
    file, and :class:`~thenodes_peerstore.errors.StoreFileError` naming what cannot be made.
    """
    try:
        move = files.move_peer_file(legacy, path)
    except OSError as exc:
        used = path if path.exists() and not legacy.exists() else legacy
        logger.error(
            "cannot move peer file %s to %s (TheNodes 0.4's plugin data directory): %s; "
            "using %s until it can be moved",
            legacy,
            path,
            exc.strerror or exc,
            used,
        )
        return used
    if move is files.Move.MOVED:
        logger.info("moved peer file %s to %s (TheNodes 0.4's plugin data directory)", legacy, path)
    elif move is files.Move.BOTH:
        logger.warning(
            "peer files at both %s and %s: using %s and leaving %s untouched; remove it, or "
            "`peerstore import` its peers, once you no longer need it",
            legacy,
            path,
            path,
            legacy,
        )
    return path


class PersistentPeerStore:
    """A realm's peers in memory, backed by its locked file."""

    def __init__(
        self,
        store: PeerStore,
        peer_file: PeerFile,
        *,
        save_interval_secs: int,
        heartbeat_secs: int = HEARTBEAT_MAX_SECS,
        writable: bool = True,
        version: str | None = None,
        keys: sealing.Sealing = sealing.PLAIN,
    ) -> None:
        if peer_file.realm is None:
            raise ValueError(f"peer file {peer_file.path} was opened without its realm")
        self._store = store
        self._loading: Callable[[], None] | None = None
        """The rest of an open whose plan was read first: reading the file whole."""
        self._first_plan: list[str] | None = None
        self._first_suspended = 0
        """The suspended entries of the head the first plan came from (``PlanHead.suspended``)."""
        self.realm: str = peer_file.realm
        """The realm's code, recorded in the file and checked at load."""
        self.keys = keys
        """The key each save seals the file with, if encryption is on."""
        self.file = peer_file
        self.save_interval_secs = save_interval_secs
        self.heartbeat_secs = max(heartbeat_secs, save_interval_secs)
        """A tick writes the file this long after the last save even with nothing new, so
        that the file says the node was running until then."""
        self.version = version
        """The realm's version, recorded in the file and checked at load."""

        self._writable = writable
        self.saves = 0
        """How many times the file was written."""
        self._found = Status.MISSING
        self._saved_changes = store.changes
        self._last_save = store.now()
        self._last_tick: int | None = None
        self._failing = False
        self._clock_failing = False
        self._closed = False

    @classmethod
    def open(
        cls,
        *,
        path: Path,
        realm: str,
        clock: Callable[[], float],
        config: PersistenceConfig | None = None,
        own_addrs: Iterable[str] = (),
        own_node_id: str | None = None,
        version: str | None = None,
        keys: sealing.Sealing | None = None,
        plan_first: bool = False,
    ) -> PersistentPeerStore:
        """Lock and load the realm's file; the file need not exist yet.

        :param version: The realm's version: a file of another version is another realm's.
        :param keys: The key, if encryption is on; by default the one ``config`` names.
        :param plan_first: Read the plan (:meth:`start_plan`) from the file's head, when it
            has one that tells it, and the rest of the file at the store's first use: a start
            waits for its plan only (:func:`~thenodes_peerstore.store.plan_from_head`).

        Raise :class:`~thenodes_peerstore.errors.StoreLockedError` when another store holds it and
        :class:`~thenodes_peerstore.errors.RealmMismatchError` when it belongs to another realm.
        """
        config = config or PersistenceConfig(enabled=True)
        store = configured_store(config, clock, own_addrs=own_addrs, own_node_id=own_node_id)
        now = store.now()  # a clock that cannot tell the time stops the start, naming it
        if keys is None:
            keys = sealing.Sealing.from_config(config)
        peer_file = PeerFile.open(path, realm)
        book = cls(
            store,
            peer_file,
            save_interval_secs=config.save_interval_secs,
            heartbeat_secs=min(HEARTBEAT_MAX_SECS, max(1, config.ttl_secs // 16)),
            version=version,
            keys=keys,
        )
        try:
            if plan_first:
                scratch = configured_store(
                    config, lambda: now, own_addrs=own_addrs, own_node_id=own_node_id
                )
                book._plan_first(scratch, now)
            if book._loading is None:
                book._load(now)
        except BaseException:
            peer_file.close()
            raise
        return book

    def _plan_first(self, scratch: PeerStore, now: int) -> None:
        """Read the file and, when its head tells the plan, keep that plan and leave the rest
        of the file for the store's first use; else leave everything to :meth:`_load`."""
        # A start at the default cap has its plan in 1.3 ms so, 4.3 when it reads the whole
        # file first (``python -m benchmarks.bench_paths``, start).
        first = door.read_head(self.file, version=self.version, keys=self.keys)
        if first is None:
            return
        plan = plan_from_head(scratch, first.head, offline=first.offline_at(now))
        if plan is None:
            return
        self._first_plan = plan
        self._first_suspended = first.head.suspended
        self._loading = functools.partial(self._load, now, first=first)

    def _load(self, now: int, *, first: FirstRead | None = None) -> None:
        """Load the file into the store, as it stood at ``now``; with ``first``, what a start
        read of it for its plan (the bytes, not read again, and the head, which must describe
        the entries)."""
        keys, path = self.keys, self.file.path
        outcome = load_file(self.file, now, version=self.version, keys=keys, first=first)
        report = self._store.load(outcome.entries, offline=outcome.offline_at(now))
        # A newer schema's file, or a damaged file that could not be moved aside, is never
        # overwritten: the store then runs in memory only.
        left_in_place = outcome.status is Status.SALVAGED and outcome.quarantined is None
        # Nor is a file written without the key encryption asks for, or that its key cannot open.
        keyless = keys.required and keys.key is None
        self._writable = (
            outcome.status not in (Status.NEWER_SCHEMA, Status.KEY_REFUSED)
            and not left_in_place
            and not keyless
        )
        self._found = outcome.status
        self._saved_changes = self._store.changes
        unchanged = report.loaded == len(outcome.entries) and not report.clamped
        migrated = outcome.schema is not None and outcome.schema < codec.SCHEMA
        to_seal = keys.key is not None and outcome.status is not Status.MISSING
        to_seal = to_seal and (not outcome.sealed or outcome.stale_key)
        if outcome.status is Status.SALVAGED or not unchanged or migrated or to_seal:
            self._saved_changes = -1  # write back what was salvaged, expired, capped or migrated
        if first is not None and not first.head.describes(outcome.entries):
            logger.warning(
                "peer file %s: its head does not describe its entries (written by something "
                "else?); the start's plan came from the head, and the next save writes it anew",
                path,
            )
            self._saved_changes = -1
        _log_load(path, outcome, report)
        _log_keys(path, outcome, keys, self._writable, to_seal)

    @property
    def writable(self) -> bool:
        """False when the file is of a newer schema, is damaged and could not be moved aside,
        is encrypted and no key at hand opens it, or encryption is on and its key cannot be
        used: the store then runs in memory only and the file is left as it is. Known once
        the file is read whole (which asking reads it)."""
        self._load_rest()
        return self._writable

    @property
    def found(self) -> Status:
        """What the store found on disk when it opened the file (asking reads it whole)."""
        self._load_rest()
        return self._found

    def _load_rest(self) -> None:
        """Read the rest of the file, after an open that read its plan first. What stops it
        (a clock that cannot tell the time) stops it before the store changes: the next use
        tries again, and nothing is written before."""
        loading, self._loading = self._loading, None
        if loading is None:
            return
        try:
            loading()
        except BaseException:
            self._loading = loading
            raise

    @property
    def store(self) -> PeerStore:
        """The realm's peers in memory. After an open that read its plan from the file's head
        (``plan_first``), the rest of the file is read here, at the first use."""
        self._load_rest()
        return self._store

    def start_plan(self) -> list[str]:
        """The proven peers to dial first at this start, before the seeds: the plan
        :meth:`open` read from the file's head, or else the store's."""
        if self._first_plan is not None:
            return list(self._first_plan)
        return self.store.reconnect_plan()

    def start_suspended(self) -> int:
        """How many stored peers this start does not plan because a dial met another
        certificate at their address than the one they were proven with: as the head the plan
        came from counts them, or else the store."""
        if self._first_plan is not None:
            return self._first_suspended
        return self.store.suspended()

    @property
    def dirty(self) -> bool:
        """Whether memory holds changes the file does not."""
        return self.store.changes != self._saved_changes

    def tick(self) -> bool:
        """Expire what is due; save if there are changes and ``save_interval_secs`` has passed
        since the last save, or when ``heartbeat_secs`` has, changes or not.

        Return whether the file was written.

        Host time between two ticks beyond :data:`MAX_TICK_GAP_SECS` (a suspended host, a
        clock that jumped ahead) is time the node did not run: it ages no entry. A clock that
        steps back restarts the interval from the new time, so saves go on at their pace; a
        clock that cannot tell the time is logged once per streak and nothing is saved.
        """
        now = self._now()
        if now is None:
            return False
        last, self._last_tick = self._last_tick, now
        if last is not None and now - last > MAX_TICK_GAP_SECS:
            self.store.skip(last + MAX_TICK_GAP_SECS, now)
            logger.info(
                "peer file %s: the host clock moved %ss ahead between two ticks; entries age "
                "by at most %ss of it",
                self.file.path,
                now - last,
                MAX_TICK_GAP_SECS,
            )
        self._last_save = min(self._last_save, now)  # a clock that stepped back restarts it
        self.store.expire_due()
        since = now - self._last_save
        if (self.dirty and since >= self.save_interval_secs) or since >= self.heartbeat_secs:
            return self.save()
        return False

    def clock_failed(self, error: ClockError) -> None:
        """The host clock could not tell the time: log it once per streak, whoever met it."""
        if not self._clock_failing:
            logger.error(
                "peer file %s: %s; peers are not recorded or saved until it can",
                self.file.path,
                error,
            )
        self._clock_failing = True

    def _now(self) -> int | None:
        """The clock, or None (logged once per streak) when it cannot tell the time."""
        try:
            now = self.store.now()
        except ClockError as exc:
            self.clock_failed(exc)
            return None
        if self._clock_failing:
            logger.info("peer file %s: the host clock tells the time again", self.file.path)
        self._clock_failing = False
        return now

    def save(self) -> bool:
        """Expire entries past their TTL and write the file now; return whether it was written.

        A failed write is logged once per streak of failures, keeps the changes for the next
        attempt, and never raises.
        """
        if not self.writable:
            return False
        now = self._now()
        if now is None:
            return False
        self._last_save = now
        self.store.expire()
        head = self.store.plan_head()
        try:
            door.write(
                self.file,
                self.store.by_tier(first=head.entries),
                now,
                realm=self.realm,
                version=self.version,
                offline=self.store.offline,
                keys=self.keys,
                head=head,
            )
        except (OSError, KeyUnusableError) as exc:
            # A full disk, a read-only mount, or a key scrypt cannot stretch here (it needs
            # 32 MiB): the peers stay in memory and the next save tries again.
            if not self._failing:
                logger.error(
                    "cannot save peer file %s: %s; will retry every %ss",
                    self.file.path,
                    (exc.strerror or exc) if isinstance(exc, OSError) else exc,
                    self.save_interval_secs,
                )
            self._failing = True
            return False
        if self._failing:
            logger.info("saved peer file %s again", self.file.path)
        self._failing = False
        self._saved_changes = self.store.changes
        self.saves += 1
        logger.debug("saved %s to %s", counted(len(self.store), "peer"), self.file.path)
        return True

    def import_thenodes(self, path: Path) -> bool:
        """Load the peers of TheNodes' own ``peers.json`` at ``path`` into the empty store, by
        the store's rules and TheNodes' proof mapping
        (:func:`~thenodes_peerstore.thenodes.entries_from_thenodes`), and save them at once, so
        that a later start reads its own file and never imports again. The JSON file is only
        read. Return whether anything was read; what is imported, and how much of it is
        proven, is logged.
        """
        if not path.exists():
            logger.info("no TheNodes peer store at %s: nothing to import", path)
            return False
        now = self._now()
        if now is None:
            return False
        try:
            records = read_thenodes_file(path)
        except TheNodesFileError as exc:
            logger.warning("%s; nothing imported from it", exc)
            return False
        imported, unusable = entries_from_thenodes(records, now)
        report = self.store.load([i.entry for i in imported])
        proven = sum(entry.proven for entry in self.store)
        logger.info(
            "imported %d of %d records from TheNodes' peer store %s, %d of them proven "
            "(%d not TheNodes' records or not dialable, %d expired, %d over the cap, %d the "
            "node's own); it is not read again once this file is saved",
            report.loaded,
            len(records),
            path,
            proven,
            len(unusable),
            report.expired,
            report.evicted,
            report.own,
        )
        if report.loaded and not proven:
            logger.warning(
                "none of the %d peers imported from %s is proven: TheNodes drops the proof of "
                "every record it reloads (last_success_epoch null, no node_id), so the node "
                "starts from its seeds and proves its peers anew",
                report.loaded,
                path,
            )
        self._saved_changes = -1
        self.save()
        return True

    def close(self) -> None:
        """Save if there are changes, then release the file. Safe to call twice."""
        if self._closed:
            return
        try:
            now = self._now()
            if now is not None:
                # The node was connected to these peers until this moment.
                self.store.touch_connected()
                # A file deleted under a running node (its directory too) is written again.
                if self.dirty or (len(self.store) and not self.file.path.exists()):
                    self.save()
        finally:
            self._closed = True
            self.file.close()

    def __enter__(self) -> PersistentPeerStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _log_keys(
    path: Path, outcome: Contents, keys: sealing.Sealing, writable: bool, to_seal: bool
) -> None:
    if outcome.status is Status.KEY_REFUSED:
        logger.error(
            "%s; leaving it untouched and keeping peers in memory only: the node starts from "
            "its seeds",
            "; ".join(outcome.problems),
        )
    elif keys.required and keys.key is None:
        logger.error(
            "peer file %s: encryption is on and its key cannot be used: %s; the file is not "
            "written and peers are kept in memory only",
            path,
            keys.problem,
        )
    elif to_seal and writable and keys.key is not None and outcome.sealed:
        logger.info("peer file %s: the next save encrypts it with %s", path, keys.key.described)
    elif to_seal and writable and keys.key is not None:
        logger.info(
            "peer file %s is not encrypted; the next save encrypts it with %s",
            path,
            keys.key.source,
        )


def _log_load(path: Path, outcome: Contents, report: LoadReport) -> None:
    if outcome.status is Status.SALVAGED and outcome.quarantined is None:
        logger.warning(
            "peer file %s is damaged (%s); leaving it as it is and keeping the %d entries that "
            "validate in memory only",
            path,
            "; ".join(outcome.problems),
            len(outcome.entries),
        )
    elif outcome.status is Status.SALVAGED:
        logger.warning(
            "peer file %s is damaged (%s); moved it to %s and kept the %d entries that validate",
            path,
            "; ".join(outcome.problems),
            outcome.quarantined,
            len(outcome.entries),
        )
    elif outcome.status is Status.NEWER_SCHEMA:
        logger.warning(
            "peer file %s was written by a newer version (%s); leaving it untouched and keeping "
            "peers in memory only",
            path,
            "; ".join(outcome.problems),
        )
    if outcome.status is Status.MISSING:
        logger.info("no peer file at %s yet; starting empty", path)
        return
    if outcome.status is Status.KEY_REFUSED:
        return  # said by _log_keys
    logger.info(
        "loaded %s from %s (%s; %d expired, %d over the cap, %d clamped to now)",
        counted(report.loaded, "peer"),
        path,
        outcome.status.value,
        report.expired,
        report.evicted,
        report.clamped,
    )
