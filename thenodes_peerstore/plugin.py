"""PeerStorePlugin: the hook implementations, a thin adapter over the store and its file.

The host makes one instance per node. The plugin imports nothing from the host: it reads the
hook arguments by attribute (see the Protocols below, which mirror the host's contract).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import pluggy

from thenodes_console import counted
from thenodes_peerstore import sealing
from thenodes_peerstore.config import PersistenceConfig, locate, path_is_set
from thenodes_peerstore.door import Status
from thenodes_peerstore.errors import AddressError, CertificateError, ClockError
from thenodes_peerstore.model import certificate_phrase
from thenodes_peerstore.persistent import PersistentPeerStore, adopt_legacy_file
from thenodes_peerstore.store import CertificateCheck, CertVerdict, IngestReport

hookimpl = pluggy.HookimplMarker("thenodes")
logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class Realm(Protocol):
    """What the plugin reads of ``host.realm``."""

    @property
    def code(self) -> str: ...
    @property
    def version(self) -> str: ...


class Host(Protocol):
    """What the plugin reads of ``host``."""

    @property
    def realm(self) -> Realm: ...
    @property
    def node_id(self) -> str: ...
    @property
    def listen_addrs(self) -> Sequence[str]: ...
    @property
    def state_dir(self) -> Path: ...
    @property
    def config(self) -> Mapping[str, Any]: ...
    def now(self) -> float: ...


class Peer(Protocol):
    """What the plugin reads of ``peer`` and ``sender``."""

    @property
    def node_id(self) -> str: ...
    @property
    def addr(self) -> str: ...
    @property
    def listen_addr(self) -> str | None: ...
    @property
    def direction(self) -> str: ...
    @property
    def capabilities(self) -> tuple[str, ...]: ...

    # ``cert_fingerprint`` (str | None) too, from a host that knows TLS: read with getattr,
    # as a host that predates it passes none.


def _guarded(
    hook: Callable[Concatenate[PeerStorePlugin, P], None],
) -> Callable[Concatenate[PeerStorePlugin, P], None]:
    """Run a runtime hook only while the store is open, and never let it fail the host."""

    @functools.wraps(hook)
    def run(self: PeerStorePlugin, /, *args: P.args, **kwargs: P.kwargs) -> None:
        if self.book is None:
            return
        try:
            hook(self, *args, **kwargs)
        except ClockError as exc:  # every hook would fail alike: say it once per streak
            if self.book is not None:
                self.book.clock_failed(exc)
        except Exception:
            logger.exception("peerstore: %s failed; the node carries on", hook.__name__)

    return run


class PeerStorePlugin:
    """Keeps a node's peers across restarts, one TOML file per realm."""

    def __init__(self) -> None:
        self.book: PersistentPeerStore | None = None
        """The open store; None while the plugin is disabled or stopped."""

    @hookimpl
    def on_startup(self, host: Host) -> list[str]:
        """Open the realm's file and return the proven peers to dial before the seeds.

        The plan is read from the file's head when the head tells it, and the rest of the file
        at the first hook after this one (:meth:`PersistentPeerStore.start_plan`). A bad
        ``[network.persistence]`` table, another realm's file or a file held by another store
        raises, which stops the node's startup with that message.

        A ``path`` naming TheNodes' own ``peers.json`` leaves the file at its default, and a
        start that finds no file there imports that one's peers
        (:func:`~thenodes_peerstore.config.locate`).
        """
        config = PersistenceConfig.from_host_config(host.config)
        if not config.enabled:
            logger.debug("peerstore: [network.persistence] enabled = false; inert")
            return []
        where = locate(config, host.state_dir, host.realm.code, path_set=path_is_set(host.config))
        path = where.path if where.legacy is None else adopt_legacy_file(where.legacy, where.path)
        self.book = PersistentPeerStore.open(
            path=path,
            realm=host.realm.code,
            clock=host.now,
            config=config,
            own_addrs=host.listen_addrs,
            own_node_id=host.node_id,
            version=host.realm.version,
            keys=sealing.Sealing.from_config(config, host.state_dir),
            plan_first=True,
        )
        if where.thenodes is not None and self.book.found is Status.MISSING:
            self.book.import_thenodes(where.thenodes)
        plan = self.book.start_plan()
        if plan:
            logger.info(
                "peerstore: %s to dial first: %s",
                counted(len(plan), "stored peer"),
                ", ".join(plan),
            )
        else:
            logger.info("peerstore: no proven peer stored yet; the node starts from its seeds")
        changed = self.book.start_suspended()
        if changed:
            logger.warning(
                "peerstore: %s not planned: a dial met another certificate than the one it was "
                "proven with (`peerstore list` shows which; `peerstore accept-cert ADDR` "
                "accepts one)",
                counted(changed, "stored peer"),
            )
        return plan

    @hookimpl
    @_guarded
    def on_bootstrap(self, host: Host, seeds: list[str]) -> None:
        """Record the seeds as Bootstrap entries."""
        assert self.book is not None
        _log_rejected("bootstrap", self.book.store.record_bootstrap(seeds))

    @hookimpl
    @_guarded
    def on_connect(self, host: Host, peer: Peer) -> None:
        """Record the peer's dialable address as Connected, a dialled one as the peer of the
        certificate it presented (``peer.cert_fingerprint``): a peer proven with another
        certificate is not the one the node proved, and the node says so."""
        assert self.book is not None
        store = self.book.store
        outbound = peer.direction != "inbound"
        fingerprint = getattr(peer, "cert_fingerprint", None)
        try:
            check = store.check_certificate(peer.addr, fingerprint) if outbound else None
            store.record_connected(
                peer.addr,
                listen_addr=peer.listen_addr,
                direction="outbound" if outbound else "inbound",
                node_id=peer.node_id,
                capabilities=peer.capabilities,
                cert_fingerprint=fingerprint,
            )
        except AddressError as exc:
            logger.debug("peerstore: not storing %s (%s): %s", peer.node_id, peer.direction, exc)
        except CertificateError as exc:
            logger.warning("peerstore: not storing %s: %s", peer.node_id, exc)
        else:
            if check is not None:
                _say_certificate(check)

    @hookimpl
    @_guarded
    def on_disconnect(self, host: Host, peer: Peer, reason: str) -> None:
        """Refresh the peer's ``last_seen``; nothing is forgotten."""
        assert self.book is not None
        self.book.store.record_disconnected(
            peer.addr,
            listen_addr=peer.listen_addr,
            direction="inbound" if peer.direction == "inbound" else "outbound",
        )

    @hookimpl
    @_guarded
    def on_peer_list(self, host: Host, sender: Peer, peers: list[str]) -> None:
        """Validate an untrusted peer list and record new addresses as Gossip."""
        assert self.book is not None
        if not isinstance(peers, list | tuple):
            logger.debug("peerstore: ignoring a peer list that is not a list, from %s", sender.addr)
            return
        report = self.book.store.record_gossip(peers, sender=sender.addr)
        if report.counts:
            _log_rejected(f"peer list from {sender.addr}", report)

    @hookimpl
    @_guarded
    def on_dial_failed(self, host: Host, addr: str, error: str) -> None:
        """Count the failure and back the address off."""
        assert self.book is not None
        self.book.store.record_dial_failed(addr)

    @hookimpl
    @_guarded
    def on_tick(self, host: Host) -> None:
        """Save if there are changes and the save interval has passed."""
        assert self.book is not None
        self.book.tick()

    @hookimpl
    @_guarded
    def on_shutdown(self, host: Host) -> None:
        """Save if there are changes and release the file."""
        assert self.book is not None
        book, self.book = self.book, None
        book.close()


def _say_certificate(check: CertificateCheck) -> None:
    """What a dial's certificate changed, in one line naming the address and the certificates:
    a warning when a proof is lost (once per certificate met), else at info."""
    addr, remembered = check.addr, check.remembered
    if check.verdict is CertVerdict.CHANGED and check.news:
        logger.warning(
            "peerstore: %s presented %s, not the certificate it was proven with, %s: it is not "
            "the peer this node proved, and is no longer planned as proven until that "
            "certificate answers there again or `peerstore accept-cert %s` accepts the new one "
            "(whether this connection stays is the TLS trust policy's decision)",
            addr,
            certificate_phrase(check.presented),
            remembered,
            addr,
        )
    elif check.verdict is CertVerdict.CHANGED:
        logger.info(
            "peerstore: %s presented %s again, not %s: still not proven",
            addr,
            certificate_phrase(check.presented),
            remembered,
        )
    elif check.verdict is CertVerdict.RESTORED:
        logger.info(
            "peerstore: %s presented the certificate it was proven with again, %s (after %s): "
            "proven again",
            addr,
            remembered,
            certificate_phrase(check.recorded),
        )
    elif check.verdict is CertVerdict.FIRST:
        logger.debug("peerstore: %s proven with certificate %s", addr, check.presented)


def _log_rejected(what: str, report: IngestReport) -> None:
    if report.counts:
        logger.debug(
            "peerstore: %s: %d added, %d refreshed, %d rejected (%s; e.g. %s)",
            what,
            report.added,
            report.refreshed,
            report.rejected_total,
            ", ".join(f"{n} {kind.value}" for kind, n in report.counts.items()),
            "; ".join(f"{r.addr!r}: {r.reason}" for r in report.rejected[:3]),
        )
