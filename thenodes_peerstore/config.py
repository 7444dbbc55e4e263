"""PersistenceConfig: the ``[network.persistence]`` table of the host config, and the files its
``path`` names (:func:`locate`)."""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import attrs

from thenodes_peerstore.convert import converter, describe_error
from thenodes_peerstore.errors import ConfigError
from thenodes_peerstore.files import resolve_store_path

logger = logging.getLogger(__name__)

NONE = "none"
AES_256_GCM = "aes-256-gcm"
ENCRYPTIONS = (NONE, AES_256_GCM)
"""The values of ``encryption`` (:mod:`thenodes_peerstore.sealing` does the work)."""

SECTION = "network.persistence"
"""Where the settings live in the host config."""
DEFAULT_PATH = "plugins/peerstore/{realm}.toml"
"""The file when ``path`` is not set: in TheNodes 0.4's data directory of the plugin,
``{state_dir}/plugins/{plugin_id}``."""
LEGACY_DEFAULT_PATH = "peers/{realm}.toml"
"""The default ``path`` before TheNodes 0.4; a file found there is moved to :data:`DEFAULT_PATH`
at the first start whose ``path`` is not set."""
THENODES_SUFFIX = ".json"
"""A ``path`` whose name ends so names TheNodes' own peer store, its ``peers.json``
(``src/network/peer_store.rs``), never this plugin's file: see :func:`locate`."""
MAX_ENTRIES_LIMIT = 65_536
"""The highest ``max_entries``: every entry of a store this large, with what its entries may
hold, fits in a file the loader reads whole (its size and table caps)."""


def _max_entries(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    _positive(instance, attribute, value)
    if value > MAX_ENTRIES_LIMIT:
        raise ValueError(
            f"{attribute.name} = {value!r}: at most {MAX_ENTRIES_LIMIT}, the most entries a "
            "peer file holds and loads whole"
        )


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} = {value!r}: must be a positive integer")


def _not_negative(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} = {value!r}: must be zero or more")


def _path(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise ValueError(f"{attribute.name} = {value!r}: must name a file")
    stripped = value.replace("{realm}", "")
    if "{" in stripped or "}" in stripped or "\0" in value:
        raise ValueError(f"{attribute.name} = {value!r}: the only placeholder allowed is {{realm}}")


def _encryption(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in ENCRYPTIONS:
        raise ValueError(f"{attribute.name} = {value!r}: must be one of {', '.join(ENCRYPTIONS)}")


@attrs.frozen
class PersistenceConfig:
    """How the peer store keeps its file. Disabled unless ``enabled = true``."""

    enabled: bool = False
    path: str = attrs.field(default=DEFAULT_PATH, validator=_path)
    max_entries: int = attrs.field(default=1024, validator=_max_entries)
    ttl_secs: int = attrs.field(default=604_800, validator=_positive)
    save_interval_secs: int = attrs.field(default=60, validator=_not_negative)
    reconnect_limit: int = attrs.field(default=5, validator=_not_negative)
    gossip_per_sender_per_hour: int = attrs.field(default=128, validator=_positive)
    encryption: str = attrs.field(default=NONE, validator=_encryption)
    key_file: str = ""
    """A regular file (mode 0600) of 32 random bytes, 64 hex digits or a passphrase; relative
    to the working directory. Surrounding whitespace is no part of a key
    (:func:`thenodes_peerstore.sealing.key_from_bytes`)."""
    key_env: str = ""
    """The environment variable holding 64 hex digits or a passphrase, read as the bytes the
    environment holds, as a key file's are. "" is not set."""

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> PersistenceConfig:
        """Read the ``[network.persistence]`` table itself; raise :class:`ConfigError`."""
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"[{SECTION}]: expected a table, got {type(table).__name__} {table!r}"
            )
        for key in table:
            if key not in _KEYS:  # perhaps a newer TheNodes' key: never a reason not to start
                close = difflib.get_close_matches(str(key), _KEYS, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(_KEYS)}"
                logger.warning("[%s]: ignoring unknown key %r (%s)", SECTION, key, hint)
        try:
            return converter.structure({k: v for k, v in table.items() if k in _KEYS}, cls)
        except Exception as exc:
            messages = describe_error(exc, "$")
            raise ConfigError("; ".join(_tidy(m) for m in messages)) from exc

    @classmethod
    def from_host_config(cls, config: Mapping[str, Any]) -> PersistenceConfig:
        """Read the settings from the whole host config; a missing table means the defaults."""
        network = config.get("network", {})
        if not isinstance(network, Mapping):
            raise ConfigError(
                f"[network]: expected a table, got {type(network).__name__} {network!r}"
            )
        return cls.from_mapping(network.get("persistence", {}))


_KEYS = tuple(a.name for a in attrs.fields(PersistenceConfig))


def path_is_set(config: Mapping[str, Any]) -> bool:
    """Whether the host config names ``[network.persistence] path`` itself (then no file is
    ever moved to or from it), rather than leaving it to its default."""
    network = config.get("network", {})
    table = network.get("persistence", {}) if isinstance(network, Mapping) else {}
    return isinstance(table, Mapping) and "path" in table


def names_thenodes_store(path: str) -> bool:
    """Whether a ``path`` names TheNodes' own peer store (a ``.json`` file), not this plugin's."""
    return PurePath(path).suffix.lower() == THENODES_SUFFIX


@attrs.frozen
class Location:
    """Where a node's peers are kept, as its ``[network.persistence]`` says."""

    path: Path
    """The realm's peer file, the one this plugin reads and writes."""
    legacy: Path | None = None
    """Where that file was by default before TheNodes 0.4, when ``path`` is left to its
    default: a file there is moved to :attr:`path` (never when ``path`` is set)."""
    thenodes: Path | None = None
    """TheNodes' own ``peers.json``, when ``path`` names it: read once, at a start with no
    peer file at :attr:`path`, and never written."""


_warned: set[tuple[Path, Path]] = set()
"""The TheNodes files already warned of in this process, with the peer file used instead."""


def locate(
    config: PersistenceConfig, state_dir: Path, realm_code: str, *, path_set: bool
) -> Location:
    """The files a node with these settings keeps and reads; ``path_set`` is whether the host
    config names ``path`` itself (:func:`path_is_set`).

    A ``path`` ending in ``.json`` is TheNodes' own peer store (TheNodes' example config sets
    ``path = "data/example-app/peers.json"``): it is resolved as TheNodes resolves it, a
    relative one against the working directory, and this plugin's file stays at its default
    (``{state_dir}/plugins/peerstore/{realm}.toml``), with a warning (once a process) saying
    so. Any other ``path`` is this plugin's file, a template resolved against ``state_dir``
    (:func:`~thenodes_peerstore.files.resolve_store_path`), so that nodes sharing one process
    never share a file. Raise :class:`~thenodes_peerstore.errors.StorePathError` for a path
    or realm code that cannot name a file.
    """
    thenodes = None
    if path_set and names_thenodes_store(config.path):
        thenodes = Path(os.path.abspath(config.path))
        path_set = False
    path = resolve_store_path(state_dir, config.path if path_set else DEFAULT_PATH, realm_code)
    legacy = None if path_set else resolve_store_path(state_dir, LEGACY_DEFAULT_PATH, realm_code)
    if thenodes is not None and (thenodes, path) not in _warned:
        _warned.add((thenodes, path))
        logger.warning(
            "[%s] path = %r names TheNodes' own peer store (JSON), which this plugin never "
            "writes: its peers are kept in %s, and %s is only read, to import its peers at a "
            "start that finds no file there",
            SECTION,
            config.path,
            path,
            thenodes,
        )
    return Location(path, legacy, thenodes)


def _tidy(message: str) -> str:
    """Turn ``"... @ $.max_entries"`` into ``"[network.persistence] max_entries: ..."``."""
    text, _, where = message.rpartition(" @ ")
    key = where.removeprefix("$").removeprefix(".")
    return f"[{SECTION}] {key}: {text}" if key else f"[{SECTION}] {text}"
