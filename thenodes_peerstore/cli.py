"""The ``peerstore`` command: look into a realm's peer file, repair it after a hand edit, and
move peers from and to TheNodes' ``peers.json``.

Every command names its file one of two ways:

- ``--config HOSTCONFIG``: the node's host config, resolved exactly as the plugin resolves its
  file: the state directory (``[node] state_dir``, default ``data``, a relative one against the
  working directory, as TheNodes does), the path template (``[network.persistence] path``) and
  the realm code (``[realm] code``, else derived from ``[realm] name``; no ``[realm]`` table is
  TheNodes' realm ``default``). The store's settings (``max_entries``, ``ttl_secs``,
  ``reconnect_limit``...) come from the same file
  (:func:`thenodes_peerstore.peerfile.target_from_host_config`).
- ``--file PATH``: the peer file itself, with the default settings. Its realm is the one the
  file names; ``--realm CODE`` checks it, and names the realm of a file that does not exist yet.
  Its realm version likewise: ``--realm-version VERSION`` checks it and names the version of a
  new file, which is otherwise TheNodes' default, ``1.0``.

Every write records the realm's version in the file (``add`` and ``import`` creating one
included), so that a node of another version never takes its peers; a file that names none is
read as of version ``1.0``.

An encrypted file is opened with ``--key-file PATH`` or ``--key-env NAME``, else with the key
the ``--config`` names; with a key, every write is sealed (a plain file is encrypted), and
``export`` writes peers in the clear only with ``--plaintext``. ``rekey`` seals the file with
``--new-key-file`` or ``--new-key-env`` in one atomic replace. ``decrypt`` writes the plain
bytes inside an encrypted file, as they are, to standard output: how a damaged file that a node
set aside encrypted is read back. ``verify`` and ``rekey`` say what each key was read as
(32 raw bytes, 64 hex digits or a passphrase).

Commands that only read (``list``, ``show``, ``stats``, ``verify``, ``export``) take no lock: a
save is an atomic rename, so they always see a whole file, even while a node runs. Commands that
write (``add``, ``remove``, ``prune``, ``seal``, ``import``, ``rekey``, ``accept-cert``) take the
file's lock, so
they refuse, naming the holder's pid, while a node holds the file, and never change it. Each
write is one transaction (:func:`thenodes_peerstore.peerfile.editing`): the file read once, the
entries the command leaves loaded by the node's own rules (its own addresses and id, the TTL in
running time, the cap and size budget, realm and version, tiers), and exactly what the store
kept written, atomically with a fresh integrity trailer: the file a command leaves is the one
the node's next start keeps, entry for entry, and what it drops is said. A damaged file (a
hand edit breaks the trailer) is only ever rewritten by ``seal``, which keeps the previous file
beside it.

``import`` takes TheNodes' ``peers.json`` (``--thenodes``), what ``export --format json``
wrote (``--json``) or a peer file (``--toml``, what ``export --format toml`` wrote or another
node's), each of the file's realm and version.

``accept-cert ADDR`` takes the certificate a dial of ``ADDR`` met last, in place of the one the
peer was proven with, as the peer's own (the operator has checked that the peer changed its
certificate): the proof it lost to the change is back. ``--fingerprint`` names the certificate
accepted, which must be the one met. ``list`` shows each entry's certificate (its first 16 hex
digits, and what a dial met instead), ``show`` and ``--json`` the whole fingerprints; the
certificate fields appear where an entry holds one.

Exit status: 0 done; 1 done, but: ``verify`` found the file damaged, ``show`` or ``remove`` did
not find an address, ``add`` found it already there, ``import`` could not use some records;
2 nothing done: a usage error (as ``argparse``), or a file that cannot be used for the command
(missing, not a peer file, another realm, a newer schema, held by a node for a writing command).

How TheNodes' ``peers.json`` records map to entries and back: :mod:`thenodes_peerstore.thenodes`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from thenodes_console import EXIT_INTERRUPTED, completion, counted, interrupted_line
from thenodes_naming import DEFAULT_REALM_VERSION
from thenodes_peerstore import codec, door, sealing
from thenodes_peerstore.config import PersistenceConfig
from thenodes_peerstore.errors import (
    AddressError,
    CertificateError,
    PeerStoreError,
    StoreFileError,
)
from thenodes_peerstore.model import (
    NO_CERTIFICATE,
    PeerEntry,
    Source,
    canonical_addr,
    certificate_phrase,
    network_group,
    valid_fingerprint,
    valid_node_id,
)
from thenodes_peerstore.peerfile import (
    Edit,
    NextLoad,
    Target,
    by_trust,
    editing,
    export_document,
    key_of,
    next_load,
    read_bytes,
    read_export,
    read_snapshot,
    target_from_host_config,
    unsealed,
    warn_if_damaged,
)
from thenodes_peerstore.peerfile import entries_phrase as _entries
from thenodes_peerstore.sealing import Sealing
from thenodes_peerstore.store import Dropped, DropReason, accept_certificate, retry_at
from thenodes_peerstore.thenodes import (
    Imported,
    entries_from_thenodes,
    read_thenodes_file,
    thenodes_record,
)

__all__ = ["main"]

PROG = "peerstore"
EXIT_OK = 0
EXIT_NOT_ALL = 1
EXIT_ERROR = 2
LOCK_WAIT_SECS = 2.0
"""How long a command that changes the file waits for another command to release it."""
TOP_GROUPS = 10
"""Network groups ``stats`` lists."""
SHORT_FINGERPRINT = 16
"""Hex digits of a fingerprint ``list`` shows (64 bits: enough to tell two apart by eye)."""
_MINUTE, _HOUR, _DAY = 60, 3600, 86400
_AGE_BUCKETS = ((_HOUR, "under 1 h"), (_DAY, "1 h to 1 d"), (7 * _DAY, "1 d to 7 d"))
_AGE_OLDEST = "7 d or more"


class CommandError(Exception):
    """A command that cannot be carried out; the message names the file and the problem."""


# -- naming the file ---------------------------------------------------------------------------


def target_of(args: argparse.Namespace) -> Target:
    """The file named by ``--file`` or ``--config``, and its key."""
    if args.file is not None:
        path = Path(os.path.abspath(args.file))
        target = Target(
            path,
            args.realm,
            PersistenceConfig(enabled=True),
            f"--file {args.file}",
            version=args.realm_version,
        )
    elif args.realm is not None:
        raise CommandError("--realm goes with --file; with --config the realm is the config's")
    elif args.realm_version is not None:
        raise CommandError(
            "--realm-version goes with --file; with --config the version is the config's"
        )
    else:
        config_path = Path(args.config)
        target = target_from_host_config(config_path, f"--config {config_path}")
    key = key_of(args.key_file, args.key_env)
    if key is not None:
        return attrs.evolve(target, keys=sealing.Sealing.with_key(key))
    return target


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


def _fields(entry: PeerEntry) -> list[tuple[attrs.Attribute[Any], Any]]:
    """The fields of an entry a command shows, with their values: every field of schema 2, and
    those a later schema brought (the certificate's) where the entry holds them, so that a file
    without them shows as it always did."""
    return [
        (field, value)
        for field in attrs.fields(PeerEntry)
        if (value := getattr(entry, field.name)) != field.default
        or field.metadata.get("since", 1) <= codec.SCHEMA
    ]


def _certificate_cell(entry: PeerEntry) -> str:
    """An entry's certificate in ``list``: the first hex digits of the fingerprint it was proven
    with, and of what a dial met instead (``none``: no certificate)."""
    held, met = entry.cert_fingerprint, entry.cert_changed_to
    cell = "-" if held is None else held[:SHORT_FINGERPRINT]
    if met is not None:
        cell += f" changed to {met[:SHORT_FINGERPRINT]}"
    return cell


def _proven_text(entry: PeerEntry) -> str:
    if entry.proven:
        return "yes"
    if entry.source is Source.CONNECTED and entry.cert_changed_to is not None:
        return "no (a dial met another certificate: `peerstore accept-cert` accepts it)"
    return "no"


def _entry_json(entry: PeerEntry, now: int) -> dict[str, Any]:
    """Every field of an entry (null where unset; a certificate field only where set), and what
    the store makes of it."""
    data: dict[str, Any] = {}
    for field, held in _fields(entry):
        value = held
        if isinstance(held, Source):
            value = held.label
        elif isinstance(held, tuple):
            value = list(held)
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


def _realm_version(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(f"bad realm version {text!r}: it must not be empty")
    return text


def _fingerprint_arg(text: str) -> str:
    if text == NO_CERTIFICATE:
        return text
    fingerprint = valid_fingerprint(text)
    if fingerprint is None:
        raise argparse.ArgumentTypeError(
            f"bad fingerprint {text!r}: a SPKI SHA-256 is 64 hex digits (or {NO_CERTIFICATE!r}: "
            "no certificate)"
        )
    return fingerprint


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
    warn_if_damaged(snapshot)
    entries = by_trust(snapshot.entries)
    if args.source:
        entries = [e for e in entries if e.source in args.source]
    if args.json:
        _print_json([_entry_json(e, now) for e in entries])
        return EXIT_OK
    if not entries:
        print(f"no peers in {snapshot.path}" + (" of those tiers" if args.source else ""))
        return EXIT_OK
    rows: list[tuple[str, ...]] = [
        ("ADDRESS", "TIER", "PROVEN", "LAST SEEN", "FAILURES", "BACKING OFF", "NODE ID")
    ]
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
    if any(e.cert_fingerprint is not None or e.cert_changed_to is not None for e in entries):
        cells = ["CERTIFICATE", *map(_certificate_cell, entries)]
        rows = [(*row, cell) for row, cell in zip(rows, cells, strict=True)]
    print("\n".join(_table(rows)))
    return EXIT_OK


def cmd_show(args: argparse.Namespace, target: Target, now: int) -> int:
    """One entry, every field."""
    snapshot = read_snapshot(target)
    warn_if_damaged(snapshot)
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
        for field, value in _fields(entry):
            if isinstance(value, Source):
                text = value.label
            elif isinstance(value, tuple):
                text = ", ".join(value) or "-"
            elif field.name in ("addr", "failures", "node_id") or isinstance(value, str):
                text = "-" if value is None else str(value)
            else:
                text = _when(value, now)
            lines.append((field.name, text))
        lines += [
            ("proven", _proven_text(entry)),
            ("network_group", network_group(entry.addr)),
            ("backing_off_until", _when(_backing_off_until(entry, now), now)),
        ]
        width = max(len(name) for name, _ in lines)
        print("\n".join(f"{name + ':':<{width + 1}} {text}" for name, text in lines))
    return EXIT_OK


def cmd_stats(args: argparse.Namespace, target: Target, now: int) -> int:
    """Counts per tier, network group and age; what the next start would do."""
    snapshot = read_snapshot(target)
    warn_if_damaged(snapshot)
    entries = snapshot.entries
    load = next_load(entries, target.config, now, snapshot.offline_at(now), own=target)
    tiers = Counter(e.source for e in entries)
    # Most entries first, then by name: the same file gives the same list, whatever its order.
    counts = Counter(network_group(e.addr) for e in entries)
    groups = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
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
        "cert_changed": sum(e.cert_changed_to is not None for e in entries),
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
    if data["cert_changed"]:
        print(f"  cert changed{data['cert_changed']:>6}")
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
    except StoreFileError as exc:
        print(f"unusable: {exc}")
        return EXIT_ERROR
    if snapshot.intact:
        saved = "" if snapshot.saved_at is None else f", saved {_when(snapshot.saved_at, now)}"
        print(
            f"intact: peer file {snapshot.path}, realm {snapshot.realm}, "
            f"{_entries(len(snapshot.entries))}{saved}"
        )
        if snapshot.sealed and target.keys.key is not None:
            print(f"  encrypted, opened with {target.keys.key.described}")
        schema = snapshot.schema
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
    with editing(target, now, must_exist=False, wait_secs=LOCK_WAIT_SECS) as edit:
        entries = edit.entries
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
        load = edit.load([*entries, entry])
        if any(d.index == len(entries) for d in load.dropped):
            raise CommandError(
                f"peer file {target.path} is full of more trusted peers (max_entries = "
                f"{target.config.max_entries}): the node would drop {args.addr} at its next start; "
                "nothing changed"
            )
        edit.commit(load)
    proof = _proof_note(entry, load)
    print(f"added {args.addr} as {entry.source.label}{proof} to {target.path}")
    _print_drops(load, target.config, now)
    return EXIT_OK


def _proof_note(entry: PeerEntry, load: NextLoad) -> str:
    """What the next start does with a proven entry: dial it first, or not yet."""
    if entry.proven and entry.addr in load.plan:
        return " (proven: the next start dials it before the seeds)"
    if entry.proven:
        return (
            f" (proven, but not in the next start's plan: it dials the {len(load.plan)} proven"
            " peers of longest standing, one per network group first; `peerstore stats`"
            " shows the plan)"
        )
    return ""


def cmd_accept_cert(args: argparse.Namespace, target: Target, now: int) -> int:
    """Take the certificate a dial of an address met last as its peer's own: the proof it lost
    to the change is back."""
    with editing(target, now, must_exist=True, wait_secs=LOCK_WAIT_SECS) as edit:
        entries = list(edit.entries)
        at = next((i for i, e in enumerate(entries) if e.addr == args.addr), None)
        if at is None:
            print(f"{PROG}: {args.addr} is not in peer file {target.path}", file=sys.stderr)
            return EXIT_NOT_ALL
        before = entries[at]
        try:
            entries[at] = accept_certificate(before, args.fingerprint)
        except CertificateError as exc:
            if before.cert_changed_to is not None:
                raise CommandError(f"{exc}; {target.path} is unchanged") from None
            print(f"{PROG}: {exc}; {target.path} is unchanged", file=sys.stderr)
            return EXIT_NOT_ALL
        load = edit.load(entries)
        edit.commit(load)
    after = entries[at]
    met = before.cert_changed_to
    print(
        f"accepted for {args.addr} {certificate_phrase(met)} in place of certificate "
        f"{before.cert_fingerprint}"
        + ("" if met != NO_CERTIFICATE else ", which is forgotten")
        + (f"; proven again{_proof_note(after, load)}" if after.proven else "")
    )
    _print_drops(load, target.config, now)
    return EXIT_OK


def cmd_remove(args: argparse.Namespace, target: Target, now: int) -> int:
    """Remove addresses."""
    wanted = list(dict.fromkeys(args.addrs))
    with editing(target, now, must_exist=True, wait_secs=LOCK_WAIT_SECS) as edit:
        present = {e.addr for e in edit.entries}
        removed = [a for a in wanted if a in present]
        missing = [a for a in wanted if a not in present]
        if removed:
            load = edit.load([e for e in edit.entries if e.addr not in removed])
            edit.commit(load)
    for addr in removed:
        print(f"removed {addr}")
    if removed:
        _print_drops(load, target.config, now)
    for addr in missing:
        print(f"{PROG}: {addr} is not in peer file {target.path}", file=sys.stderr)
    if not removed:
        print(f"{target.path} unchanged")
    return EXIT_NOT_ALL if missing else EXIT_OK


def cmd_prune(args: argparse.Namespace, target: Target, now: int) -> int:
    """Drop now what the next start would drop."""
    with editing(target, now, must_exist=True, wait_secs=LOCK_WAIT_SECS) as edit:
        load = edit.load(edit.entries)
        _print_drops(load, target.config, now)
        if not load.changes:
            print(f"nothing to prune: the next start keeps all {_entries(len(load.kept))}")
            return EXIT_OK
        if args.dry_run:
            print(f"dry run: {target.path} unchanged; the next start keeps {len(load.kept)}")
            return EXIT_OK
        edit.commit(load)
    print(f"pruned {target.path}: {len(load.dropped)} dropped, {len(load.kept)} kept")
    return EXIT_OK


def _print_drops(load: NextLoad, config: PersistenceConfig, now: int) -> None:
    for drop in load.dropped:
        print(f"drop {drop.entry.addr} ({drop.entry.source.label}): {_why(drop, config, now)}")
    for entry in load.clamped:
        print(f"keep {entry.addr} ({entry.source.label}): a time in the future set to now")


def _why(drop: Dropped, config: PersistenceConfig, now: int) -> str:
    """Why the next start drops an entry, as the store reports it."""
    if drop.reason is DropReason.OWN:
        return "the node's own address or id: it never stores itself"
    if drop.reason is DropReason.EXPIRED:
        return (
            f"past its TTL: last seen {_ago(drop.entry.last_seen, now)}, more than ttl_secs = "
            f"{config.ttl_secs} ({_span(config.ttl_secs)}) of the node's running time ago"
        )
    if drop.reason is DropReason.DUPLICATE:
        return "a second entry for this address; the more trusted, more recent one stays"
    return (
        f"over the cap (max_entries = {config.max_entries}): the most trusted, "
        "most recently seen entries stay"
    )


def cmd_seal(args: argparse.Namespace, target: Target, now: int) -> int:
    """Rewrite a hand-edited file with the entries that pass the store's rules."""
    with editing(target, now, must_exist=True, wait_secs=LOCK_WAIT_SECS, damaged=None) as edit:
        snapshot = edit.contents
        assert snapshot is not None
        if not snapshot.realm_readable:
            raise CommandError(
                f"peer file {target.path} names no readable realm, so no entry can be read from "
                f'it; fix its realm line by hand (realm = "{edit.realm}") and seal again. It is '
                "unchanged"
            )
        load = edit.load(snapshot.entries)
        if snapshot.intact and not load.changes:
            print(f"intact: {target.path} holds {_entries(len(load.kept))}; nothing to seal")
            return EXIT_OK
        for problem in snapshot.problems:
            print(f"found: {problem}")
        _print_drops(load, target.config, now)
        if args.dry_run:
            print(
                f"dry run: {target.path} unchanged; sealing would keep {_entries(len(load.kept))}"
            )
            return EXIT_OK
        backup = edit.keep_backup()
        edit.commit(load)
    print(f"sealed {target.path}: {_entries(len(load.kept))} kept; the previous file is {backup}")
    return EXIT_OK


@attrs.frozen
class _Given:
    """What ``import`` brings in: where from, as entries, and what could not be one."""

    path: Path
    total: str
    """How much the file held, for the output: ``N records`` or ``N entries``."""
    imported: list[Imported]
    unusable: list[str]
    offline: list[tuple[int, int]] | None = None
    """When the node that wrote it was stopped: a new file keeps it, so its entries age as
    they did there."""


def _thenodes_given(path: Path, now: int) -> _Given:
    records = read_thenodes_file(path)
    imported, unusable = entries_from_thenodes(records, now)
    total = counted(len(records), "record")
    return _Given(path, total, imported, unusable)


def _file_given(args: argparse.Namespace, target: Target, edit: Edit, now: int) -> _Given:
    """What ``import --json`` or ``--toml`` names, read as a file of the edited file's realm
    and version (a peer file, with the target's key)."""
    if args.json is not None:
        path = Path(args.json)
        read = read_export(path, realm=edit.realm, version=edit.version)
    else:
        path = Path(args.toml)
        named_by = f"--toml {path}"
        source = Target(
            Path(os.path.abspath(path)), edit.realm, target.config, named_by, edit.version
        )
        read = read_snapshot(attrs.evolve(source, keys=target.keys))
    imported = [Imported(e) for e in read.entries]
    return _Given(
        path, _entries(len(read.entries)), imported, list(read.problems), read.offline_at(now)
    )


def cmd_import(args: argparse.Namespace, target: Target, now: int) -> int:
    """Bring the peers of TheNodes' ``peers.json``, of an export or of a peer file into the
    file, by the store's rules."""
    given = _thenodes_given(Path(args.thenodes), now) if args.thenodes is not None else None
    with editing(target, now, must_exist=False, wait_secs=LOCK_WAIT_SECS) as edit:
        if given is None:
            given = _file_given(args, target, edit, now)
        existing = edit.entries
        offline = given.offline if edit.contents is None else None
        remembered = {e.addr: e for e in existing if e.cert_fingerprint or e.cert_changed_to}
        if remembered:  # what an imported record says nothing of, the file keeps
            given = attrs.evolve(
                given, imported=[_keeping_certificate(i, remembered) for i in given.imported]
            )
        load = edit.load([*existing, *(i.entry for i in given.imported)], offline)
        edit.commit(load)
    dropped = {drop.index for drop in load.dropped}
    taken = [i for n, i in enumerate(given.imported, len(existing)) if n not in dropped]
    counts = Counter(i.entry.source for i in taken)
    tiers = ", ".join(f"{counts[s]} {s.label}" for s in sorted(Source, reverse=True) if counts[s])
    print(
        f"imported {len(taken)} of {given.total} from {given.path} into "
        f"{target.path}" + (f" ({tiers})" if tiers else "")
    )
    for item in taken:
        for note in item.notes:
            print(f"  {item.entry.addr}: {note}")
        if item.entry.clamped(now) is not item.entry:
            print(f"  {item.entry.addr}: a time in the future set to now")
    for drop in load.dropped:
        where = "not imported" if drop.index >= len(existing) else "dropped from the file"
        why = _why(drop, target.config, now)
        print(f"  {where}: {drop.entry.addr} ({drop.entry.source.label}): {why}")
    for problem in given.unusable:
        print(f"  not imported: {problem}")
    print(f"{target.path} holds {_entries(len(load.kept))}")
    return EXIT_NOT_ALL if given.unusable else EXIT_OK


def _keeping_certificate(item: Imported, remembered: dict[str, PeerEntry]) -> Imported:
    """An imported entry that holds no certificate field, with those the file's entry of its
    address holds: a TheNodes record carries none, and importing it must not forget which
    certificate the peer was proven with."""
    entry = item.entry
    held = remembered.get(entry.addr)
    if held is None or entry.cert_fingerprint or entry.cert_changed_to:
        return item
    entry = entry.replace(
        cert_fingerprint=held.cert_fingerprint, cert_changed_to=held.cert_changed_to
    )
    return attrs.evolve(item, entry=entry)


def cmd_export(args: argparse.Namespace, target: Target, now: int) -> int:
    """The file's peers, to standard output, as TheNodes' ``peers.json``, JSON or a peer file.

    Peers of an encrypted file (or read with a key) are written in the clear only with
    ``--plaintext``; without it, ``--format toml`` writes an encrypted peer file.
    """
    snapshot = read_snapshot(target)
    warn_if_damaged(snapshot)
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
        _print_json(export_document(snapshot, entries))
    else:
        key = None
        if secret and not args.plaintext:
            key = target.keys.key
            assert key is not None  # a sealed file was opened with it
        data = door.render(
            snapshot.realm or "",
            now if snapshot.saved_at is None else snapshot.saved_at,
            entries,
            version=snapshot.version,
            offline=snapshot.offline,
            key=key,
        )
        if isinstance(data, bytes):
            sys.stdout.write(data.decode())
        else:
            sys.stdout.flush()
            sys.stdout.buffer.write(b"".join(data))
    return EXIT_OK


def cmd_rekey(args: argparse.Namespace, target: Target, now: int) -> int:
    """Seal the file with a new key, in one atomic replace; a plain file is encrypted."""
    new_key = key_of(args.new_key_file, args.new_key_env)
    assert new_key is not None  # argparse requires one of the two
    if args.new_key_file is not None and target.state_dir is not None:
        sealing.warn_if_key_inside(Path(os.path.abspath(args.new_key_file)), target.state_dir)
    with editing(
        target,
        now,
        must_exist=True,
        wait_secs=LOCK_WAIT_SECS,
        damaged="`peerstore seal` repairs it first",
    ) as edit:
        load = edit.load(edit.entries)
        _print_drops(load, target.config, now)
        edit.commit(load, Sealing.with_key(new_key))
    was = f"encrypted with {target.keys.key.described}" if target.keys.key else "plain"
    print(
        f"rekeyed {target.path}: {_entries(len(load.kept))}, {was} before, now encrypted "
        f"with {new_key.described}"
    )
    return EXIT_OK


def cmd_decrypt(args: argparse.Namespace, target: Target, now: int) -> int:
    """The plain bytes inside an encrypted peer file, as they are, to standard output.

    A damaged file's too: a plain file that a node with encryption on found damaged is set
    aside encrypted (``<name>.corrupt-<time>``), and this gives back every byte of it.
    """
    data = read_bytes(target)
    if not door.is_sealed(data):
        raise CommandError(f"peer file {target.path} is not encrypted: read it as it is")
    plain = unsealed(target, data)
    sys.stdout.flush()
    sys.stdout.buffer.write(plain)
    return EXIT_OK


_ASIDE = {"corrupt": "damaged, set aside by a node", "bak": "the file before a seal"}


def cmd_aside(args: argparse.Namespace, target: Target, now: int) -> int:
    """The files set aside beside the peer file (``.corrupt-<time>``, ``.bak-<time>``), newest
    first; with ``--prune``, remove all but the newest ``--keep``."""
    pattern = re.compile(re.escape(target.path.name) + r"\.(corrupt|bak)-(\d+)(?:-\d+)?")
    found: list[tuple[int, str, Path]] = []
    with contextlib.suppress(FileNotFoundError):
        for path in target.path.parent.iterdir():
            match = pattern.fullmatch(path.name)
            if match and path.is_file() and not path.is_symlink():
                found.append((int(match.group(2)), match.group(1), path))
    found.sort(key=lambda item: (item[0], item[2].name), reverse=True)
    if not found:
        print(f"nothing set aside beside {target.path}")
        return EXIT_OK
    if not args.prune:
        rows = [("FILE", "SET ASIDE", "BYTES", "WHAT")]
        rows += [
            (path.name, _ago(t, now), str(path.stat().st_size), _ASIDE[kind])
            for t, kind, path in found
        ]
        print("\n".join(_table(rows)))
        return EXIT_OK
    gone = found[args.keep :]
    for _, _, path in gone:
        path.unlink()
        print(f"removed {path}")
    print(f"{counted(len(gone), 'file')} removed, {len(found) - len(gone)} kept")
    return EXIT_OK


def _count_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is below 0")
    return value


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
    naming.add_argument(
        "--realm-version",
        type=_realm_version,
        metavar="VERSION",
        help="with --file: the realm's version the file must be of (a new file's; default "
        f"{DEFAULT_REALM_VERSION}, TheNodes' default)",
    )
    keying = common.add_argument_group(
        "encryption", "the key of an encrypted peer file (else the config's); writes are sealed"
    )
    key_source = keying.add_mutually_exclusive_group()
    key_source.add_argument(
        "--key-file",
        metavar="PATH",
        help="32 random bytes, 64 hex digits or a passphrase (a regular file, mode 0600)",
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
    _accepting(command("accept-cert", cmd_accept_cert, _ACCEPT_HELP))
    for name, run, text in (
        ("prune", cmd_prune, "drop now what the next start would drop (TTL, cap, duplicates)"),
        ("seal", cmd_seal, "after a hand edit: keep the valid entries, write a fresh trailer"),
    ):
        sub = command(name, run, text)
        sub.add_argument("--dry-run", action="store_true", help="say what it would do; no write")
    importing = command(
        "import",
        cmd_import,
        "import the peers of a TheNodes peers.json, of an export or of a peer file",
    )
    imported = importing.add_mutually_exclusive_group(required=True)
    imported.add_argument("--thenodes", metavar="PEERS_JSON", help="TheNodes' peers.json")
    imported.add_argument(
        "--json", metavar="EXPORT_JSON", help="what `export --format json` wrote, of this realm"
    )
    imported.add_argument(
        "--toml",
        metavar="PEER_FILE",
        help="a peer file of this realm (what `export --format toml` wrote, or a node's)",
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
    command(
        "decrypt",
        cmd_decrypt,
        "write the plain bytes inside an encrypted file, as they are, to standard output",
    )
    _housekeeping(commands, command("aside", cmd_aside, _ASIDE_HELP))
    return parser


_ASIDE_HELP = "list the files set aside beside the peer file (damaged, backups)"
_ACCEPT_HELP = (
    "accept the certificate a dial of an address met, in place of the one it was proven with"
)


def _accepting(accepting: argparse.ArgumentParser) -> None:
    """The arguments of ``accept-cert``."""
    accepting.add_argument("addr", type=_address, metavar="ADDR")
    accepting.add_argument(
        "--fingerprint",
        type=_fingerprint_arg,
        metavar="HEX",
        help="the certificate accepted (its SPKI SHA-256, or none): it must be the one met",
    )


def _housekeeping(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    aside: argparse.ArgumentParser,
) -> None:
    """The options of ``aside``, and ``completion``: the commands about the files around the
    peer file and the shell, not the file itself."""
    aside.add_argument("--prune", action="store_true", help="remove them (see --keep)")
    aside.add_argument(
        "--keep", type=_count_arg, default=0, metavar="N", help="with --prune: keep the newest N"
    )
    shell = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script for bash or zsh: `peerstore completion bash >"
        " ~/.local/share/bash-completion/completions/peerstore`, or source it from your shell's"
        " startup file.",
    )
    shell.add_argument("shell", choices=completion.SHELLS, help="the shell")


def _version() -> str:
    try:
        return importlib.metadata.version("thenodes-peerstore")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "completion":
        print(completion.script(parser, args.shell), end="")
        return EXIT_OK
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
        except KeyboardInterrupt:
            # Waiting for a lock, reading, writing: a write is a rename, so nothing is half done.
            sys.stderr.write(interrupted_line(PROG))
            return EXIT_INTERRUPTED


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
