"""TheNodes' ``peers.json``: its records, read as serde reads them, and how they map to entries.

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

| TheNodes | this store | ``last_success_epoch`` becomes |
|---|---|---|
| ``Handshake`` | ``Connected`` (proven) | ``last_connected`` and ``last_seen`` |
| ``Bootstrap`` with a ``node_id`` | ``Connected`` (proven) | ``last_connected`` and ``last_seen`` |
| ``Bootstrap`` without one | ``Bootstrap`` | ``last_seen`` only |
| ``Manual`` | as ``Bootstrap`` | as ``Bootstrap`` |
| ``Gossip`` | ``Gossip`` | ``last_seen``, never proof |

A ``Handshake`` record without ``last_success_epoch`` is imported as ``Gossip``, unproven.
TheNodes writes one for every record it reloaded: at a start it loads a record's address and
source only (``load_from_file`` inserts them bare), so the next save writes each reloaded
record with ``last_success_epoch`` null and no ``node_id`` (0.2.0 and 0.4.0 alike, tested
against the real binaries: ``tests/peerstore/fixtures/thenodes-*-reloaded-peers.json``). A
seed it had connected to becomes a plain ``Bootstrap`` record the same way. Only a handshake
completed since TheNodes' last start is proof in its file: the ``peers.json`` of a node that
has restarted since it met its peers imports mostly unproven.

A null ``last_success_epoch`` (TheNodes keeps such records without expiry) becomes a
``last_seen`` of the import's time, so the record gets one full TTL. ``failures``, ``node_id``
and ``capabilities`` are kept (an id or capability this store refuses is left out, and said).
On export a proven entry is written as ``Handshake``, ``Bootstrap`` as ``Bootstrap`` and every
other tier as ``Gossip``; ``last_success_epoch`` is the entry's ``last_connected``, the time this
node last completed a handshake with it, and null for an entry it never connected to (a seed
whose dial failed, gossip). ``first_seen``, ``last_seen`` and ``last_attempt`` have no place in
TheNodes' record (``peerstore export --format json`` keeps every field).

TheNodes' record has no place for the certificate a peer was proven with (six fields, in 0.2.0
and 0.4.0 alike): an export carries none, and a peer whose dial met another certificate, not
proven, is written as ``Gossip``; TheNodes writes back only its own fields anyway. ``peerstore
import`` keeps the certificate the file remembers for an address a record brings again.

``peerstore import --thenodes`` and ``peerstore export --format thenodes`` are this mapping on
the command line.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from thenodes_peerstore.convert import converter, describe_error, show
from thenodes_peerstore.errors import AddressError, TheNodesFileError, TheNodesRecordError
from thenodes_peerstore.files import MAX_FILE_BYTES, read_capped
from thenodes_peerstore.model import (
    PeerEntry,
    Source,
    canonical_addr,
    valid_capabilities,
    valid_node_id,
)

__all__ = [
    "Imported",
    "TheNodesRecord",
    "TheNodesSource",
    "entries_from_thenodes",
    "entry_from_thenodes",
    "parse_thenodes_record",
    "read_thenodes_file",
    "thenodes_record",
]

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1


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
    """The records of a ``peers.json``, unread; raise :class:`TheNodesFileError` if it is not
    one."""
    try:
        data = read_capped(path)
    except OSError as exc:
        raise TheNodesFileError(f"TheNodes peer file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise TheNodesFileError(f"TheNodes peer file {path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise TheNodesFileError(
            f"TheNodes peer file {path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise TheNodesFileError(f"TheNodes peer file {path}: not valid JSON ({exc})") from None
    if not isinstance(document, list):
        raise TheNodesFileError(
            f"TheNodes peer file {path}: expected a JSON array of peer records, got "
            f"{type(document).__name__}"
        )
    return document


def parse_thenodes_record(raw: object, index: int) -> TheNodesRecord:
    """One record; raise :class:`TheNodesRecordError` with a message naming where it is wrong."""
    if not isinstance(raw, dict):
        raise TheNodesRecordError(f"records[{index}]: expected an object, got {show(raw)}")
    known = {key: value for key, value in raw.items() if key in _RECORD_KEYS}
    for key in ("last_success_epoch", "node_id", "capabilities"):
        if known.get(key, 0) is None:
            del known[key]  # serde reads null as None, as it reads an absent key
    try:
        return converter.structure(known, TheNodesRecord)
    except Exception as exc:  # any failure to structure is a record that is not TheNodes'
        raise TheNodesRecordError("; ".join(describe_error(exc, f"records[{index}]"))) from None


def entries_from_thenodes(
    raw_records: Iterable[object], now: int
) -> tuple[list[Imported], list[str]]:
    """The entries of a ``peers.json``'s records (:func:`read_thenodes_file`), and a line for
    each record that cannot be one, naming the record and what is wrong with it."""
    imported: list[Imported] = []
    unusable: list[str] = []
    for index, raw in enumerate(raw_records):
        try:
            record = parse_thenodes_record(raw, index)
            imported.append(entry_from_thenodes(record, now))
        except AddressError as exc:
            unusable.append(f"records[{index}]: addr {exc}")
        except ValueError as exc:  # TheNodesRecordError, or an entry the model refuses
            unusable.append(str(exc))
    return imported, unusable
