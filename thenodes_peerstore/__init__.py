"""Persistent, per-realm known-peer store for TheNodes-style P2P nodes.

Use it as the ``peerstore`` plugin of a host (entry point group ``thenodes``), or directly:
:class:`PersistentPeerStore` keeps a :class:`PeerStore` in its realm's file.
"""

from importlib.metadata import PackageNotFoundError, version

from thenodes_peerstore.config import PersistenceConfig
from thenodes_peerstore.errors import (
    AddressError,
    ConfigError,
    NewerSchemaError,
    PeerStoreError,
    RealmMismatchError,
    StoreFileError,
    StoreLockedError,
    StorePathError,
)
from thenodes_peerstore.files import resolve_store_path
from thenodes_peerstore.model import Address, PeerEntry, Source
from thenodes_peerstore.persistent import PersistentPeerStore
from thenodes_peerstore.store import PeerStore

try:
    __version__ = version("thenodes-peerstore")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "Address",
    "AddressError",
    "ConfigError",
    "NewerSchemaError",
    "PeerEntry",
    "PeerStore",
    "PeerStoreError",
    "PersistenceConfig",
    "PersistentPeerStore",
    "RealmMismatchError",
    "Source",
    "StoreFileError",
    "StoreLockedError",
    "StorePathError",
    "__version__",
    "resolve_store_path",
]
