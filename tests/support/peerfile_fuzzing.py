"""Damaged peer files, and the properties every read of one must keep.

Shared by ``tests/peerstore/test_fuzz.py`` (through Hypothesis, a few hundred examples) and
``benchmarks/fuzz_loader.py`` (a seeded loop, a hundred thousand and more). Each mutator takes a
``random.Random`` and a file and returns the file with one kind of damage, so the same damage is
drawn by either driver and a failing example is reproduced from its seed alone.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from pathlib import Path

import attrs

from tests.support.books import full_entry
from thenodes_peerstore.codec import ENTRY, decode, encode
from thenodes_peerstore.codec import _decode_any as decode_any
from thenodes_peerstore.codec import _decode_as_written as decode_as_written
from thenodes_peerstore.errors import NewerSchemaError, RealmMismatchError, StoreFileError
from thenodes_peerstore.files import PeerFile
from thenodes_peerstore.model import PeerEntry, PlanHead, Source, canonical_addr
from thenodes_peerstore.persistent import LoadStatus, load_file

REALM = "example"
SAVED_AT = 1_763_700_000
INT64_MAX = 2**63 - 1

Mutator = Callable[[random.Random, bytes], bytes]

# -- valid files to start from -------------------------------------------------------------------


def _entries() -> list[list[PeerEntry]]:
    short = [
        PeerEntry(
            addr=f"10.0.0.{i}:7447",
            source=Source.GOSSIP,
            first_seen=SAVED_AT - 9,
            last_seen=SAVED_AT,
        )
        for i in range(1, 4)
    ]
    full = [full_entry(i, SAVED_AT, ("relay", "dht/v2", "c" * 64)[:i]) for i in range(1, 4)]
    bootstrap = PeerEntry(
        addr="203.0.113.10:7447",
        source=Source.BOOTSTRAP,
        first_seen=0,
        last_seen=SAVED_AT,
        failures=2,
        last_attempt=SAVED_AT - 5,
    )
    return [[], short[:1], full, [full[0], *short, bootstrap, full[2]]]


def _certified() -> list[PeerEntry]:
    """Proven peers with certificates (schema 3): one proven with its certificate, one whose
    dial met another, one that answered in plaintext, and one proven on plaintext."""
    base = full_entry(1, SAVED_AT, ("relay",)).replace(source=Source.CONNECTED)
    return [
        base.replace(addr="45.1.0.1:7447", cert_fingerprint="a" * 64),
        base.replace(addr="45.2.0.2:7447", cert_fingerprint="a" * 64, cert_changed_to="b" * 64),
        base.replace(addr="45.3.0.3:7447", cert_fingerprint="c" * 64, cert_changed_to="none"),
        base.replace(addr="45.4.0.4:7447"),
    ]


SEEDS: tuple[bytes, ...] = tuple(
    encode(REALM, SAVED_AT, entries) for entries in [*_entries(), _certified()]
)
"""Valid files: empty, one short entry, full IPv6 entries, a mix with every optional field
present and absent, and one of schema 3 (certificates)."""


def _headed(entries: list[PeerEntry], first: int) -> bytes:
    """The file of ``entries`` with a head naming their first ``first`` proven ones."""
    proven = [e for e in entries if e.proven]
    suspended = sum(e.source is Source.CONNECTED and not e.proven for e in entries)
    head = PlanHead.of(proven[:first], proven[first:], suspended)
    return encode(REALM, SAVED_AT, entries, head=head)


def _proven(i: int) -> PeerEntry:
    return PeerEntry(
        addr=f"45.{i}.0.{i}:7447",
        source=Source.CONNECTED,
        first_seen=SAVED_AT - 100 * i,
        last_seen=SAVED_AT - i,
        last_connected=SAVED_AT - i,
        last_attempt=SAVED_AT - i,
        node_id=f"node-{i}",
    )


HEADED_SEEDS: tuple[bytes, ...] = (
    _headed([], 0),
    _headed([_proven(1)], 1),
    _headed([_proven(i) for i in range(1, 6)] + _entries()[3], 2),
    _headed([*_entries()[1], _proven(3), _proven(4)], 0),
    _headed([_proven(1), *_certified(), _proven(2)], 2),
)
"""Valid files with a head, as a node writes them: empty, every proven peer in the head, some
in the head and the rest bounded, none in the head, and one with certificates, two of its
``Connected`` entries not proven."""

# -- pieces the mutators insert --------------------------------------------------------------------

_ASSIGNMENT = re.compile(rb"^([A-Za-z_][A-Za-z0-9_]*) = (.*)$", re.MULTILINE)
_INT_VALUE = re.compile(rb"^([A-Za-z_][A-Za-z0-9_]*) = (-?[0-9]+)$", re.MULTILINE)
_STRING_VALUE = re.compile(rb'^([A-Za-z_][A-Za-z0-9_]*) = (".*")$', re.MULTILINE)

OTHER_TYPES = (
    b'"1763700000"',
    b'""',
    b"1",
    b"0",
    b"-1",
    b"1.5",
    b"-0.0",
    b"inf",
    b"nan",
    b"true",
    b"false",
    b"[]",
    b'[1, "a"]',
    b"[[1], [2]]",
    b"{}",
    b"{ a = 1 }",
    b"1979-05-27T07:32:00Z",
    b"1979-05-27",
    b"07:32:00",
    b"0x7fffffffffffffff",
    b"0o777",
    b"0b101",
    b"1_000",
    b"'literal'",
    b'"""multi\nline"""',
    b'"\\u0000"',
    b'"[2001:db8::1]:7447"',
    b'"Connected"',
    b'"example"',
)
HUGE_INTS = (
    str(2**63).encode(),
    str(2**64).encode(),
    str(-(2**63) - 1).encode(),
    str(10**30).encode(),
    str(-(10**30)).encode(),
    b"9" * 4301,
    b"-" + b"1" * 5000,
    b"0x" + b"f" * 40,
    b"1" + b"_0" * 30,
)
BAD_UTF8 = (
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    b"\xf4\x90\x80\x80",
    b"\x80",
)


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _pick_match(
    rng: random.Random, pattern: re.Pattern[bytes], data: bytes
) -> re.Match[bytes] | None:
    matches = list(pattern.finditer(data))
    return rng.choice(matches) if matches else None


def _replace_value(
    rng: random.Random, data: bytes, pattern: re.Pattern[bytes], value: bytes
) -> bytes:
    match = _pick_match(rng, pattern, data)
    if match is None:
        return data
    return data[: match.start(2)] + value + data[match.end(2) :]


def _nested(rng: random.Random) -> bytes:
    depth = rng.choice((50, 300, 1000, 10_000))
    kind = rng.randrange(4)
    if kind == 0:
        return b"[" * depth + b"1" + b"]" * depth
    if kind == 1:
        return b"{ a = " * depth + b"1" + b" }" * depth
    if kind == 2:
        return b"[{ a = " * depth + b"1" + b" }]" * depth
    return b"[" * depth  # never closed


# -- the mutators -------------------------------------------------------------------------------


def flip_bit(rng: random.Random, data: bytes) -> bytes:
    """One bit of one byte flipped."""
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    """A few random bytes inserted anywhere."""
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.randbytes(rng.randint(1, 8)) + data[i:]


def delete_span(rng: random.Random, data: bytes) -> bytes:
    """A span of bytes deleted."""
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 64) :]


def truncate(rng: random.Random, data: bytes) -> bytes:
    """The file cut short."""
    return data[: rng.randrange(len(data) + 1)]


def duplicate_line(rng: random.Random, data: bytes) -> bytes:
    """A line repeated, here or elsewhere: duplicate keys, tables and trailers."""
    lines = _lines(data)
    line = rng.choice(lines)
    lines.insert(rng.randrange(len(lines) + 1), line)
    return b"\n".join(lines)


def remove_line(rng: random.Random, data: bytes) -> bytes:
    """A line removed: a missing field, header or table line."""
    lines = _lines(data)
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def swap_values(rng: random.Random, data: bytes) -> bytes:
    """The values of two assignments exchanged."""
    matches = list(_ASSIGNMENT.finditer(data))
    if len(matches) < 2:
        return data
    a, b = sorted(rng.sample(matches, 2), key=lambda m: m.start())
    return (
        data[: a.start(2)]
        + b.group(2)
        + data[a.end(2) : b.start(2)]
        + a.group(2)
        + data[b.end(2) :]
    )


def change_type(rng: random.Random, data: bytes) -> bytes:
    """A value replaced by a value of another type."""
    return _replace_value(rng, data, _ASSIGNMENT, rng.choice(OTHER_TYPES))


def huge_int(rng: random.Random, data: bytes) -> bytes:
    """A value replaced by an integer beyond 64 bits, or beyond Python's digit limit."""
    return _replace_value(rng, data, _ASSIGNMENT, rng.choice(HUGE_INTS))


def negative_int(rng: random.Random, data: bytes) -> bytes:
    """An integer made negative."""
    match = _pick_match(rng, _INT_VALUE, data)
    if match is None:
        return data
    return data[: match.start(2)] + b"-" + match.group(2).lstrip(b"-") + data[match.end(2) :]


def bad_utf8(rng: random.Random, data: bytes) -> bytes:
    """Bytes that are not UTF-8, inside a string or anywhere."""
    match = _pick_match(rng, _STRING_VALUE, data)
    i = (
        match.start(2) + 1
        if match is not None and rng.random() < 0.7
        else rng.randrange(len(data) + 1)
    )
    return data[:i] + rng.choice(BAD_UTF8) + data[i:]


def long_string(rng: random.Random, data: bytes) -> bytes:
    """A string value replaced by a very long one."""
    size = rng.choice((65, 129, 10_000, 300_000))
    return _replace_value(rng, data, _STRING_VALUE, b'"' + b"a" * size + b'"')


def deep_nesting(rng: random.Random, data: bytes) -> bytes:
    """A value replaced by arrays or inline tables nested up to 10,000 deep."""
    if rng.random() < 0.2:
        return data + b"\nx = " + _nested(rng) + b"\n"
    return _replace_value(rng, data, _ASSIGNMENT, _nested(rng))


def peers_shape(rng: random.Random, data: bytes) -> bytes:
    """``peers`` that is not an array of tables: a table, a value, a sub-table."""
    replacement = rng.choice(
        (b"[peers]", b"[peers.x]", b"[[peers.x]]", b"peers = 1", b"[[ peers ]]", b"[[peers]] # c")
    )
    if rng.random() < 0.5:
        return data.replace(b"[[peers]]", replacement, 1)
    return data.replace(b"[[peers]]", replacement)


def damage_trailer(rng: random.Random, data: bytes) -> bytes:
    """The integrity trailer miscounted, with a bad digest, extra keys, or repeated."""
    choices: tuple[Callable[[], bytes], ...] = (
        lambda: re.sub(rb"entries = \d+", b"entries = " + rng.choice(HUGE_INTS), data),
        lambda: re.sub(rb"entries = \d+", b"entries = -1", data),
        lambda: re.sub(rb"entries = \d+", b'entries = "3"', data),
        lambda: re.sub(rb'sha256 = "', b'sha256 = "X', data),
        lambda: re.sub(rb'sha256 = "[0-9a-f]+"', b"sha256 = 7", data),
        data.upper,
        lambda: data + b"extra = 1\n",
        lambda: data + b"[integrity]\nentries = 0\n",
        lambda: data + data[data.rfind(b"\n[integrity]\n") :],
        lambda: data.replace(b"[integrity]", b"[integrity]\nx = " + _nested(rng), 1),
        lambda: data[: data.rfind(b"\n[integrity]\n") + 1] + b"[integrity]\n" + rng.randbytes(40),
        lambda: b"\n[integrity]\n" + data,
    )
    return rng.choice(choices)()


def splice(rng: random.Random, data: bytes) -> bytes:
    """A piece of another valid file inserted."""
    other = rng.choice(SEEDS)
    a = rng.randrange(len(other))
    piece = other[a : a + rng.randint(1, 200)]
    i = rng.randrange(len(data) + 1)
    return data[:i] + piece + data[i:]


MUTATORS: tuple[Mutator, ...] = (
    flip_bit,
    insert_bytes,
    delete_span,
    truncate,
    duplicate_line,
    remove_line,
    swap_values,
    change_type,
    huge_int,
    negative_int,
    bad_utf8,
    long_string,
    deep_nesting,
    peers_shape,
    damage_trailer,
    splice,
)


def reseal(data: bytes) -> bytes:
    """``data`` with its trailer replaced by one that matches it, as a careful editor would write.

    A resealed file passes the integrity check, so what it holds must be refused by validation.
    """
    mark = data.rfind(b"\n[integrity]\n")
    body = data if mark < 0 else data[: mark + 1]
    if not body.endswith(b"\n"):
        body += b"\n"
    count = len(re.findall(rb"^\[\[peers\]\][ \t]*$", body, re.MULTILINE))
    digest = hashlib.sha256(body).hexdigest()
    return body + f'[integrity]\nentries = {count}\nsha256 = "{digest}"\n'.encode()


def mutate(
    seed_index: int,
    steps: list[tuple[int, int]],
    sealed: bool,
    seeds: tuple[bytes, ...] = SEEDS,
) -> bytes:
    """Seed file ``seed_index`` (of ``seeds``) damaged by each (mutator index, random seed) in
    turn."""
    data = seeds[seed_index % len(seeds)]
    for mutator, seed in steps:
        data = MUTATORS[mutator % len(MUTATORS)](random.Random(seed), data)
    return reseal(data) if sealed else data


LINES: tuple[bytes, ...] = (
    b"",
    b"schema = 1",
    b"schema = 2",
    b"schema = 3",
    b"schema = 4",
    b'realm = "example"',
    b'realm = "other"',
    b"saved_at = 1763700000",
    b"[[peers]]",
    b"[peers]",
    b"[integrity]",
    b"entries = 1",
    b'sha256 = "00"',
    b'addr = "203.0.113.10:7447"',
    b'addr = "[2001:db8::1]:7447"',
    b'addr = "peer.example.com:7447"',
    b'source = "Connected"',
    b'source = "Gossip"',
    b"first_seen = 1",
    b"last_seen = 2",
    b"last_connected = 2",
    b"failures = 3",
    b'node_id = "node-b"',
    b'capabilities = ["relay"]',
    b'cert_fingerprint = "' + b"a" * 64 + b'"',
    b'cert_fingerprint = "' + b"A" * 64 + b'"',
    b'cert_changed_to = "none"',
    b'cert_changed_to = "' + b"b" * 64 + b'"',
    b"capabilities = [",
    b'    "relay",',
    b"]",
    b'"""',
    b"x = [[[[[[[[",
    b"x = { a = { b = 1 } }",
    b"first_seen = 99999999999999999999",
    b"first_seen = -5",
    b'node_id = "\xff"',
    b"\xff\xfe",
    b"first_seen = 0",
    b"first_seen = -0",
    b"first_seen = 007",
    b"first_seen = 1_000",
    b"failures = 1234567890123456789",
    b"peers = 1",
    b"integrity = 1",
    b"capabilities = []",
    b'    "relay"',
    b'addr = "203.0.113.10:7447" # a note',
    b"addr = '203.0.113.10:7447'",
    b'addr  = "203.0.113.10:7447"',
    b'"addr" = "203.0.113.10:7447"',
    b'peers.addr = "203.0.113.10:7447"',
    b"[[peers]] ",
    b'source = "connected"',
    b'addr = "203.000.113.10:7447"',
)
"""Lines a peer file is made of, and lines it must not hold, for files built line by line."""


def assemble(lines: list[int], sealed: bool) -> bytes:
    """A file made of the numbered :data:`LINES`, with a matching trailer if ``sealed``."""
    data = b"\n".join(LINES[i % len(LINES)] for i in lines) + b"\n"
    return reseal(data) if sealed else data


def random_case(rng: random.Random) -> bytes:
    """One damaged file; one time in ten arbitrary bytes, one in ten a file of shuffled lines."""
    kind = rng.random()
    if kind < 0.1:
        return rng.randbytes(rng.randrange(2000))
    if kind < 0.2:
        lines = [rng.randrange(len(LINES)) for _ in range(rng.randrange(40))]
        return assemble(lines, sealed=rng.random() < 0.5)
    steps = [(rng.randrange(len(MUTATORS)), rng.getrandbits(32)) for _ in range(rng.randint(1, 4))]
    return mutate(rng.randrange(len(SEEDS)), steps, sealed=rng.random() < 0.4)


# -- the properties -------------------------------------------------------------------------------


class PropertyFailure(AssertionError):
    """A read of a damaged file broke one of the loader's promises."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise PropertyFailure(message)


def check_entries(entries: tuple[PeerEntry, ...]) -> None:
    """Every entry read is a valid entry: canonical address, in-range times, known source."""
    for entry in entries:
        _check(isinstance(entry, PeerEntry), f"not a PeerEntry: {entry!r}")
        _check(canonical_addr(entry.addr) == entry.addr, f"non-canonical addr {entry.addr!r}")
        _check(isinstance(entry.source, Source), f"bad source {entry.source!r}")
        for name in ("first_seen", "last_seen", "last_connected", "last_attempt", "failures"):
            value = getattr(entry, name)
            if value is not None:
                _check(
                    type(value) is int and 0 <= value <= INT64_MAX,
                    f"{name} out of range: {value!r}",
                )
        # attrs validators run on construction; run them again on what came out.
        attrs.validate(entry)


def check_decode(data: bytes) -> str:
    """Decode ``data`` and check the decoder's promises; return "intact", "salvaged" or "refused".

    ``decode`` raises nothing but :class:`NewerSchemaError` and :class:`RealmMismatchError`;
    anything else it finds is a problem, and what it returns validates.
    """
    try:
        decoded = decode(data, realm=REALM)
    except (NewerSchemaError, RealmMismatchError):
        return "refused"
    check_entries(decoded.entries)
    _check(all(isinstance(p, str) and p for p in decoded.problems), "a problem is not a message")
    if decoded.intact:
        _check(isinstance(decoded.saved_at, int), "an intact file without saved_at")
        assert decoded.saved_at is not None
        again = decode(encode(REALM, decoded.saved_at, decoded.entries), realm=REALM)
        _check(again.intact and again.entries == decoded.entries, "intact but not re-encodable")
        return "intact"
    return "salvaged"


def check_as_written(data: bytes) -> bool:
    """Decode ``data`` as a start does, and as the reader of any file does (table by table):
    they raise alike or return the same; return whether the quick reader took the file."""
    try:
        quick: object = decode(data, realm=REALM)
    except (NewerSchemaError, RealmMismatchError) as exc:
        quick = (type(exc), str(exc))
    try:
        whole: object = decode_any(data, realm=REALM)
    except (NewerSchemaError, RealmMismatchError) as exc:
        whole = (type(exc), str(exc))
    _check(quick == whole, f"read as written {quick!r}, table by table {whole!r}")
    try:
        return decode_as_written(data, REALM, None, ENTRY) is not None
    except (NewerSchemaError, RealmMismatchError):
        return False


def check_load(data: bytes, peer_file: PeerFile, now: int) -> str:
    """Write ``data`` as the peer file, load it through the file layer and check its promises.

    ``load`` raises nothing but :class:`StoreFileError` subclasses; a salvaged file is moved
    aside holding exactly the bytes that were read, and the peer file is gone.
    """
    path = peer_file.path
    path.write_bytes(data)
    try:
        outcome = load_file(peer_file, now)
    except StoreFileError:
        _check(path.read_bytes() == data, "a refused file was changed")
        return "refused"
    check_entries(outcome.entries)
    if outcome.status is LoadStatus.SALVAGED:
        aside = outcome.quarantined
        _check(aside is not None and aside.exists(), "a salvaged file was not set aside")
        assert aside is not None
        _check(not path.exists(), "a salvaged file is still in place")
        _check(aside.read_bytes() == data, "the file set aside is not the file read")
        aside.unlink()
        return "salvaged"
    _check(outcome.quarantined is None, f"{outcome.status} but set aside")
    _check(path.read_bytes() == data, f"{outcome.status} but the file changed")
    if outcome.status is LoadStatus.NEWER_SCHEMA:
        return "refused"
    _check(outcome.status is LoadStatus.INTACT, f"unexpected status {outcome.status}")
    return "intact"


def peer_file_at(directory: Path) -> PeerFile:
    """An open peer file of the realm the cases are written for."""
    return PeerFile.open(directory / "peers" / f"{REALM}.toml", REALM)
