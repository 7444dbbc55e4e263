"""Opening a store on a file, as a node does, and looking at the file it keeps."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.clocks import FakeClock
from thenodes_peerstore import PersistenceConfig, PersistentPeerStore
from thenodes_peerstore.codec import decode
from thenodes_peerstore.errors import AddressError
from thenodes_peerstore.model import PeerEntry, Source, canonical_addr
from thenodes_peerstore.store import PeerStore


def open_book(
    path: Path,
    clock: Callable[[], float] | None = None,
    config: PersistenceConfig | None = None,
    *,
    realm: str = "example",
    version: str | None = None,
    **settings: Any,
) -> PersistentPeerStore:
    """The store of ``realm`` on ``path``, persistence on with ``settings``, unless ``config``.

    Without ``clock``, the time stands still at the tests' start.
    """
    if config is None:
        config = PersistenceConfig(enabled=True, **settings)
    elif settings:
        raise TypeError("settings go in the config given")
    return PersistentPeerStore.open(
        path=path,
        realm=realm,
        clock=FakeClock() if clock is None else clock,
        config=config,
        version=version,
    )


def file_names(directory: Path) -> list[str]:
    """The names in ``directory``, sorted."""
    return sorted(p.name for p in directory.iterdir())


def fingerprint(path: Path) -> tuple[bytes, int, int]:
    """Bytes, inode and modification time: any rewrite changes at least one of them."""
    st_ = path.stat()
    return path.read_bytes(), st_.st_ino, st_.st_mtime_ns


def addr_key(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> str:
    """The address ``ip``:``port`` as the store keys it."""
    return canonical_addr(f"{ip}:{port}" if ip.version == 4 else f"[{ip}]:{port}")


def read_file(path: Path, realm: str = "example") -> tuple[PeerEntry, ...]:
    """The entries of an intact file."""
    decoded = decode(path.read_bytes(), realm=realm)
    assert decoded.intact, decoded.problems
    return decoded.entries


def addrs_in(path: Path, realm: str = "example") -> set[str]:
    """The addresses of an intact file."""
    return {e.addr for e in read_file(path, realm)}


def storable(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a store keeps an address on ``ip``.

    test_model.py pins down which addresses are storable; where any of them will do, this says.
    """
    try:
        addr_key(ip, 1)
    except AddressError:
        return False
    return True


def make_store(clock: Callable[[], float], **settings: Any) -> PeerStore:
    """A store in memory only, reading the time from ``clock``, with ``settings``."""
    return PeerStore(clock=clock, **settings)


def full_entry(i: int, saved_at: int, capabilities: tuple[str, ...]) -> PeerEntry:
    """The ``i``-th (from 1) proven IPv6 peer of a file saved at ``saved_at``, with every
    optional field of schema 2 set."""
    return PeerEntry(
        addr=f"[2001:db8::{i:x}]:7447",
        source=Source.CONNECTED,
        first_seen=saved_at - 1000,
        last_seen=saved_at - i,
        last_connected=saved_at - i,
        last_attempt=saved_at - i,
        failures=i,
        node_id=f"node-{i}",
        capabilities=capabilities,
    )
