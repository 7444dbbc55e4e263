"""PersistentPeerStore: a PeerStore kept in its realm's file, saved on a cadence.

This is the library entry point for a host that does not use the plugin::

    book = PersistentPeerStore.open(
        path=Path("data/peers/example.toml"), realm="example", clock=time.time,
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

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from thenodes_peerstore.codec import EntryTexts, encode
from thenodes_peerstore.config import PersistenceConfig
from thenodes_peerstore.files import LoadOutcome, LoadStatus, PeerFile
from thenodes_peerstore.store import LoadReport, PeerStore

logger = logging.getLogger(__name__)


class PersistentPeerStore:
    """A realm's peers in memory, backed by its locked file."""

    def __init__(
        self,
        store: PeerStore,
        peer_file: PeerFile,
        *,
        save_interval_secs: int,
        writable: bool = True,
    ) -> None:
        self.store = store
        self.file = peer_file
        self.save_interval_secs = save_interval_secs
        self.writable = writable
        """False when the file is of a newer schema, or is damaged and could not be moved
        aside: the store then runs in memory only and the file is left as it is."""
        self.saves = 0
        """How many times the file was written."""
        self._saved_changes = store.changes
        self._last_save = store.now()
        self._failing = False
        self._closed = False
        self._texts = EntryTexts()

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
    ) -> PersistentPeerStore:
        """Lock and load the realm's file; the file need not exist yet.

        Raise :class:`~thenodes_peerstore.files.StoreLockedError` when another store holds it and
        :class:`~thenodes_peerstore.files.RealmFileError` when it belongs to another realm.
        """
        config = config or PersistenceConfig(enabled=True)
        store = PeerStore(
            clock=clock,
            max_entries=config.max_entries,
            ttl_secs=config.ttl_secs,
            reconnect_limit=config.reconnect_limit,
            gossip_per_sender_per_hour=config.gossip_per_sender_per_hour,
            own_addrs=own_addrs,
            own_node_id=own_node_id,
        )
        peer_file = PeerFile.open(path, realm)
        try:
            outcome = peer_file.load(store.now())
        except BaseException:
            peer_file.close()
            raise
        report = store.load(outcome.entries)
        # A newer schema's file, or a damaged file that could not be moved aside, is never
        # overwritten: the store then runs in memory only.
        left_in_place = outcome.status is LoadStatus.SALVAGED and outcome.quarantined is None
        book = cls(
            store,
            peer_file,
            save_interval_secs=config.save_interval_secs,
            writable=outcome.status is not LoadStatus.NEWER_SCHEMA and not left_in_place,
        )
        unchanged = report.loaded == len(outcome.entries) and not report.clamped
        if outcome.status is LoadStatus.SALVAGED or not unchanged:
            book._saved_changes = -1  # write back what was salvaged, expired or capped
        _log_load(path, outcome, report)
        return book

    @property
    def dirty(self) -> bool:
        """Whether memory holds changes the file does not."""
        return self.store.changes != self._saved_changes

    def tick(self) -> bool:
        """Save if there are changes and ``save_interval_secs`` has passed since the last save.

        Return whether the file was written.
        """
        if not self.dirty or self.store.now() - self._last_save < self.save_interval_secs:
            return False
        return self.save()

    def save(self) -> bool:
        """Expire entries past their TTL and write the file now; return whether it was written.

        A failed write is logged once per streak of failures, keeps the changes for the next
        attempt, and never raises.
        """
        if not self.writable:
            return False
        now = self.store.now()
        self._last_save = now
        self.store.expire()
        data = encode(self.file.realm, now, self.store.by_tier(), texts=self._texts)
        try:
            self.file.save(data)
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
            # The node was connected to these peers until this moment.
            self.store.touch_connected()
            if self.dirty:
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
    logger.info(
        "loaded %d peers from %s (%s; %d expired, %d over the cap, %d clamped to now)",
        report.loaded,
        path,
        outcome.status.value,
        report.expired,
        report.evicted,
        report.clamped,
    )
