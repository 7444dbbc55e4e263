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
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

import attrs

from thenodes_peerstore import codec, files, sealing
from thenodes_peerstore.config import PersistenceConfig
from thenodes_peerstore.errors import (
    ClockError,
    KeyRefusedError,
    KeyUnusableError,
    NewerSchemaError,
    PeerStoreError,
    RealmMismatchError,
    SealDamagedError,
)
from thenodes_peerstore.files import PeerFile
from thenodes_peerstore.model import PeerEntry, PlanHead
from thenodes_peerstore.store import LoadReport, PeerStore, plan_from_head

logger = logging.getLogger(__name__)

MAX_TICK_GAP_SECS = 600
"""Host time between two ticks past which the node was not running (a suspended host, a clock
that jumped ahead): the rest of the gap ages no entry. Hosts tick about once a second."""
HEARTBEAT_MAX_SECS = 3600
"""A running node with nothing to save still writes at least this often (and at least every
sixteenth of ``ttl_secs``), so its running time is not later taken for downtime."""
HEADER_BYTES = 4096 + sealing.MAX_HEADER + sealing.TAG_BYTES
"""Room kept in the file for its header, head and trailer, and for the envelope of an encrypted
file (its header and tag), so that an encrypted file of a full store also loads whole."""


def _stopped(
    offline: Iterable[tuple[int, int]], saved_at: int | None, now: int
) -> list[tuple[int, int]]:
    """When the node was stopped, as a file recorded it, and since its last save."""
    stopped = list(offline)
    if saved_at is not None and saved_at < now:
        stopped.append((saved_at, now))  # stopped since the last save
    return stopped


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
    extras_budget: int | None = None,
) -> PeerStore:
    """An empty store with the settings ``config`` gives it: the one place they are applied."""
    return PeerStore(
        clock=clock,
        max_entries=config.max_entries,
        ttl_secs=config.ttl_secs,
        reconnect_limit=config.reconnect_limit,
        gossip_per_sender_per_hour=config.gossip_per_sender_per_hour,
        own_addrs=own_addrs,
        own_node_id=own_node_id,
        extras_budget=extras_budget,
    )


class LoadStatus(enum.Enum):
    """What was found on disk."""

    MISSING = "missing"
    INTACT = "intact"
    SALVAGED = "salvaged"
    NEWER_SCHEMA = "newer schema"
    KEY_REFUSED = "encrypted, and no key at hand opens it"


@attrs.frozen
class LoadOutcome:
    """The entries read from the file, and what happened to the file.

    A ``SALVAGED`` outcome with ``quarantined`` None means the damaged file could not be moved
    aside and is still in place; ``problems`` says why.
    """

    status: LoadStatus
    entries: tuple[PeerEntry, ...] = ()
    problems: tuple[str, ...] = ()
    quarantined: Path | None = None
    saved_at: int | None = None
    """When the file was last written, if it says."""
    offline: tuple[tuple[int, int], ...] = ()
    """When the node was stopped, as the file recorded it."""
    schema: int | None = None
    sealed: bool = False
    """Whether the file on disk is encrypted."""
    stale_key: bool = False
    """Whether it was opened by what an earlier version read its key as
    (:attr:`~thenodes_peerstore.sealing.Key.earlier`): the next save seals it anew."""


def load_file(
    peer_file: PeerFile,
    now: int,
    *,
    version: str | None = None,
    keys: sealing.Sealing = sealing.PLAIN,
    data: bytes | None = None,
    opened: sealing.Opened | None = None,
) -> LoadOutcome:
    """Read -> decode -> set aside if damaged: what an open store starts from.

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

    ``data`` is the file's bytes when they were read already, and ``opened`` what ``keys``
    opened of them when they are sealed.
    """
    if data is None:
        data = peer_file.read()
    if data is None:
        return LoadOutcome(LoadStatus.MISSING)
    sealed = sealing.is_sealed(data)
    stale_key = False
    if len(data) > files.MAX_FILE_BYTES:
        decoded = codec.Decoded(entries=(), problems=(f"larger than {files.MAX_FILE_BYTES} bytes",))
    else:
        try:
            plain = data
            if sealed:
                opened = opened or sealing.open_sealed(
                    data, keys, path=peer_file.path, realm=peer_file.realm, version=version
                )
                plain, stale_key = opened.plain, opened.stale
            decoded = codec.decode(plain, realm=peer_file.realm, version=version)
        except SealDamagedError as exc:
            decoded = codec.Decoded(entries=(), problems=(str(exc),))
        except KeyRefusedError as exc:
            return LoadOutcome(LoadStatus.KEY_REFUSED, problems=(str(exc),), sealed=True)
        except NewerSchemaError as exc:
            return LoadOutcome(LoadStatus.NEWER_SCHEMA, problems=(str(exc),))
        except RealmMismatchError as exc:
            raise RealmMismatchError(
                f"peer file {peer_file.path}: {exc}. Check [network.persistence] path and "
                "[realm]; the file is left unchanged",
                found=exc.found,
                expected=exc.expected,
            ) from exc
    read = functools.partial(
        LoadOutcome,
        entries=decoded.entries,
        saved_at=decoded.saved_at,
        offline=decoded.offline,
        schema=decoded.schema,
        sealed=sealed,
        stale_key=stale_key,
    )
    if decoded.intact:
        return read(LoadStatus.INTACT)
    try:
        aside = _set_aside(peer_file, now, data, sealed=sealed, keys=keys, version=version)
    except _KeptInPlace as exc:
        reason = str(exc)
        logger.error("peer file %s is damaged and %s; leaving it in place", peer_file.path, reason)
        return read(LoadStatus.SALVAGED, problems=(*decoded.problems, reason))
    except OSError as exc:
        reason = f"it could not be moved aside: {exc.strerror or exc}"
        logger.error("peer file %s is damaged and %s; leaving it in place", peer_file.path, reason)
        return read(LoadStatus.SALVAGED, problems=(*decoded.problems, reason))
    return read(LoadStatus.SALVAGED, problems=decoded.problems, quarantined=aside)


class _KeptInPlace(Exception):
    """A damaged file that is not set aside; the message says why."""


def _set_aside(
    peer_file: PeerFile,
    now: int,
    data: bytes,
    *,
    sealed: bool,
    keys: sealing.Sealing,
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
    copy = sealing.seal_chunks(data, keys.key, realm=peer_file.realm, version=version)
    try:
        return peer_file.quarantine(now, copy)
    except KeyUnusableError as exc:
        raise _KeptInPlace(f"it could not be set aside encrypted: {exc}") from None


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
        self._store = store
        self._loading: Callable[[], None] | None = None
        """The rest of an open whose plan was read first: reading the file whole."""
        self._first_plan: list[str] | None = None
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
        store = configured_store(
            config,
            clock,
            own_addrs=own_addrs,
            own_node_id=own_node_id,
            extras_budget=extras_budget(config.max_entries),
        )
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
        data = self.file.read()
        if data is None or len(data) > files.MAX_FILE_BYTES:
            return
        opened = None
        if sealing.is_sealed(data):
            try:
                opened = sealing.open_sealed(
                    data,
                    self.keys,
                    path=self.file.path,
                    realm=self.file.realm,
                    version=self.version,
                )
            except PeerStoreError:
                return  # the whole read says why
        plain = data if opened is None else opened.plain
        opening = codec.read_head(plain, realm=self.file.realm, version=self.version)
        if opening is None:
            return
        offline = _stopped(opening.offline, opening.saved_at, now)
        plan = plan_from_head(scratch, opening.head, offline=offline)
        if plan is None:
            return
        self._first_plan = plan
        self._loading = functools.partial(
            self._load, now, data=data, opened=opened, head=opening.head
        )

    def _load(
        self,
        now: int,
        *,
        data: bytes | None = None,
        opened: sealing.Opened | None = None,
        head: PlanHead | None = None,
    ) -> None:
        """Load the file (``data``, if it was read already) into the store, as it stood at
        ``now``; with ``head``, the file's head its plan was read from, which must describe it."""
        keys, path = self.keys, self.file.path
        outcome = load_file(
            self.file, now, version=self.version, keys=keys, data=data, opened=opened
        )
        report = self._store.load(
            outcome.entries, offline=_stopped(outcome.offline, outcome.saved_at, now)
        )
        # A newer schema's file, or a damaged file that could not be moved aside, is never
        # overwritten: the store then runs in memory only.
        left_in_place = outcome.status is LoadStatus.SALVAGED and outcome.quarantined is None
        # Nor is a file written without the key encryption asks for, or that its key cannot open.
        keyless = keys.required and keys.key is None
        self._writable = (
            outcome.status not in (LoadStatus.NEWER_SCHEMA, LoadStatus.KEY_REFUSED)
            and not left_in_place
            and not keyless
        )
        self._saved_changes = self._store.changes
        unchanged = report.loaded == len(outcome.entries) and not report.clamped
        migrated = outcome.schema is not None and outcome.schema < codec.SCHEMA
        to_seal = keys.key is not None and outcome.status is not LoadStatus.MISSING
        to_seal = to_seal and (not outcome.sealed or outcome.stale_key)
        if outcome.status is LoadStatus.SALVAGED or not unchanged or migrated or to_seal:
            self._saved_changes = -1  # write back what was salvaged, expired, capped or migrated
        if head is not None and not head.describes(outcome.entries):
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
        data = codec.encode(
            self.file.realm,
            now,
            self.store.by_tier(),
            version=self.version,
            offline=self.store.offline,
            head=self.store.plan_head(),
        )
        written: bytes | Iterable[bytes] = data
        if self.keys.key is not None:
            written = sealing.seal_chunks(
                data, self.keys.key, realm=self.file.realm, version=self.version
            )
        try:
            self.file.save(written)
        except OSError as exc:
            if not self._failing:
                logger.error(
                    "cannot save peer file %s: %s; will retry every %ss",
                    self.file.path,
                    exc.strerror or exc,
                    self.save_interval_secs,
                )
            self._failing = True
            return False
        if self._failing:
            logger.info("saved peer file %s again", self.file.path)
        self._failing = False
        self._saved_changes = self.store.changes
        self.saves += 1
        logger.debug("saved %d peers to %s", len(self.store), self.file.path)
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
    path: Path, outcome: LoadOutcome, keys: sealing.Sealing, writable: bool, to_seal: bool
) -> None:
    if outcome.status is LoadStatus.KEY_REFUSED:
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


def _log_load(path: Path, outcome: LoadOutcome, report: LoadReport) -> None:
    if outcome.status is LoadStatus.SALVAGED and outcome.quarantined is None:
        logger.warning(
            "peer file %s is damaged (%s); leaving it as it is and keeping the %d entries that "
            "validate in memory only",
            path,
            "; ".join(outcome.problems),
            len(outcome.entries),
        )
    elif outcome.status is LoadStatus.SALVAGED:
        logger.warning(
            "peer file %s is damaged (%s); moved it to %s and kept the %d entries that validate",
            path,
            "; ".join(outcome.problems),
            outcome.quarantined,
            len(outcome.entries),
        )
    elif outcome.status is LoadStatus.NEWER_SCHEMA:
        logger.warning(
            "peer file %s was written by a newer version (%s); leaving it untouched and keeping "
            "peers in memory only",
            path,
            "; ".join(outcome.problems),
        )
    if outcome.status is LoadStatus.MISSING:
        logger.info("no peer file at %s yet; starting empty", path)
        return
    if outcome.status is LoadStatus.KEY_REFUSED:
        return  # said by _log_keys
    logger.info(
        "loaded %d peers from %s (%s; %d expired, %d over the cap, %d clamped to now)",
        report.loaded,
        path,
        outcome.status.value,
        report.expired,
        report.evicted,
        report.clamped,
    )
