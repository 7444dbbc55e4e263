"""The peer file's text: TOML <-> models through one cattrs converter, and the integrity trailer.

The file is the document below, then a blank line, then an ``[integrity]`` table holding the
number of entries and the SHA-256 of every byte above the ``[integrity]`` line. TOML has no end
marker, so the trailer, written last, is what tells a complete file from a torn or edited one.

    schema = 1
    realm = "example"
    saved_at = 1763700000

    [[peers]]
    addr = "203.0.113.10:7447"
    ...

    [integrity]
    entries = 1
    sha256 = "..."

Saving and loading are on every node's hot path, so both are written for the fixed schema: an
entry's text is formatted directly (byte for byte what tomli_w writes) and reused from the last
save while the entry is unchanged, and a file laid out as written is read by a quick reader
that leaves any other text to tomllib and the converter, which then decide.

Decoding never trusts the file: a damaged one yields the entries that still validate and a list
of the problems found, so the caller can set the file aside and start with what was salvaged.
Whatever the bytes, decoding raises nothing but :class:`NewerSchemaError` and
:class:`RealmMismatchError`: values nested too deeply for the parser, integers beyond TOML's
64-bit range and unreadable trailers are problems like any other, and the problems are few and
short however large the file.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import reprlib
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
import tomli_w
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn
from cattrs.v import format_exception

from thenodes_peerstore.model import AddressError, PeerEntry, Source, canonical_addr

SCHEMA = 1
"""The schema this version writes, and the newest it reads."""

_TRAILER_MARK = b"\n[integrity]\n"
_PEERS_HEADER = re.compile(r"^\[\[peers\]\][ \t]*$", re.MULTILINE)
_HEADER_KEYS = frozenset({"schema", "realm", "saved_at"})
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
"""TOML integers are 64-bit; a larger one is refused, never stored."""
MAX_PROBLEMS = 50
"""Problems listed for one file; the rest are counted."""
MAX_PROBLEM_CHARS = 400
"""A longer problem is shortened in the middle, keeping where it happened."""

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 80
_short.maxlong = 40
_short.maxlevel = 3
_short.maxlist = _short.maxdict = 8


def show(value: object) -> str:
    """A short ``repr`` for messages: long strings and numbers elided, nesting cut at 3 levels."""
    return _short.repr(value)


def in_int64(value: int) -> bool:
    """Whether an integer fits TOML's 64-bit range."""
    return INT_MIN <= value <= INT_MAX


T = TypeVar("T")


class PeerFileError(Exception):
    """Base of the errors a peer file can raise when it is read."""


class NewerSchemaError(PeerFileError):
    """The file was written by a newer version; it must be left untouched."""

    def __init__(self, schema: int) -> None:
        super().__init__(f"schema {schema} is newer than the newest this version reads ({SCHEMA})")
        self.schema = schema


class RealmMismatchError(PeerFileError):
    """The file belongs to another realm."""

    def __init__(self, found: str, expected: str) -> None:
        super().__init__(f"the file holds realm {show(found)}, not {expected!r}")
        self.found = found
        self.expected = expected


# -- the converter -----------------------------------------------------------------------------


def _strict(kind: type[T], noun: str) -> Any:
    def structure(value: object, _: object) -> T:
        # bool is an int in Python, never in a TOML file or a config.
        if type(value) is not kind:
            raise TypeError(f"expected {noun}, got {type(value).__name__} {show(value)}")
        if isinstance(value, int) and not in_int64(value):
            raise ValueError(f"expected {noun} in TOML's 64-bit range, got {show(value)}")
        return value

    return structure


def make_converter() -> cattrs.Converter:
    """The one converter between TOML data and this package's models.

    Types are strict (no string-to-int or int-to-bool coercion), unknown keys are refused, and
    optional or default fields are omitted on output, never written as null.
    """
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _strict(int, "an integer"))
    conv.register_structure_hook(bool, _strict(bool, "true or false"))
    conv.register_structure_hook(str, _strict(str, "a string"))

    def structure_strings(value: object, _: object) -> tuple[str, ...]:
        # Without this, a string would become a tuple of its characters, a table its keys.
        if not isinstance(value, list):
            raise TypeError(f"expected an array, got {type(value).__name__} {show(value)}")
        return tuple(conv.structure(item, str) for item in value)

    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], structure_strings)

    entry_structure = make_dict_structure_fn(PeerEntry, conv, _cattrs_forbid_extra_keys=True)

    def structure_entry(value: object, cls: type[PeerEntry]) -> PeerEntry:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected a table, got {type(value).__name__}")
        data = dict(value)
        # Accept any spelling of an address a person may have typed; keep the canonical one.
        if isinstance(data.get("addr"), str):
            try:
                data["addr"] = canonical_addr(data["addr"])
            except AddressError as exc:
                raise ValueError(f"addr {exc}") from None
        return entry_structure(data, cls)

    conv.register_structure_hook(PeerEntry, structure_entry)
    conv.register_unstructure_hook(
        PeerEntry, make_dict_unstructure_fn(PeerEntry, conv, _cattrs_omit_if_default=True)
    )
    conv.register_unstructure_hook(tuple, list)
    return conv


converter = make_converter()


def describe_error(exc: BaseException, path: str) -> list[str]:
    """Readable messages for a structuring error, each naming where it happened."""
    if isinstance(exc, cattrs.BaseValidationError):
        return cattrs.transform_error(exc, path=path, format_exception=_format_exception)
    if isinstance(exc, RecursionError):
        return [f"nested too deeply @ {path}"]
    return [f"{exc} @ {path}"]


def _format_exception(exc: BaseException, type_: type | None) -> str:
    # Our own hooks and validators already say what was expected and what was found.
    if isinstance(exc, TypeError | ValueError) and not isinstance(exc, cattrs.BaseValidationError):
        return str(exc)
    return format_exception(exc, type_)


# -- encoding ----------------------------------------------------------------------------------


def encode(
    realm: str, saved_at: int, entries: Iterable[PeerEntry], *, texts: EntryTexts | None = None
) -> bytes:
    """The complete file for these entries, integrity trailer included.

    :param texts: The entries' texts from the previous save of the same store, to reuse for the
        entries that have not changed since; updated to hold this save's.
    """
    # Each entry is its own [[peers]] table (a TOML writer would inline an array of short
    # tables), so a file cut at an entry boundary still parses and its complete entries can be
    # salvaged. Entries are written by hand: the schema is fixed and a save of a full store is
    # the hot path of a node, about ten times faster than handing each table to tomli_w.
    header = tomli_w.dumps({"schema": SCHEMA, "realm": realm, "saved_at": saved_at})
    parts = [header]
    if texts is None:
        parts += map(_encode_entry, entries)
    else:
        parts += texts.update(entries)
    count = len(parts) - 1
    body = "".join(parts).encode() + b"\n"
    digest = hashlib.sha256(body).hexdigest()
    return body + f'[integrity]\nentries = {count}\nsha256 = "{digest}"\n'.encode()


class EntryTexts:
    """The text of each entry last written, kept to write it again while the entry is unchanged.

    Entries are immutable, so the very object written last time has the very same text. Between
    two saves a node refreshes a small share of its peers; the rest cost a lookup. The memory is
    about the size of the file.
    """

    def __init__(self) -> None:
        self._texts: dict[int, str] = {}
        # The entries last written, kept alive so that no other object can take one of their
        # ids: an id found in _texts is then the very entry it was written for.
        self._entries: list[PeerEntry] = []

    def update(self, entries: Iterable[PeerEntry]) -> list[str]:
        """The texts of ``entries``, in order; from now on, only these are kept."""
        entries = list(entries)
        ids = list(map(id, entries))
        texts = [
            _encode_entry(entry) if text is None else text
            for entry, text in zip(entries, map(self._texts.get, ids), strict=True)
        ]
        self._texts = dict(zip(ids, texts, strict=True))
        self._entries = entries
        return texts


_P = r"[A-Za-z0-9._:/\[\]-]*"
"""Characters that need no escaping in a TOML basic string: every valid address, source,
node id and capability is made of them."""
_PLAIN = re.compile(_P)


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string."""
    if _PLAIN.fullmatch(value):
        return f'"{value}"'
    return tomli_w.dumps({"v": value})[4:-1]  # escaped exactly as tomli_w would


def _encode_entry(entry: PeerEntry) -> str:
    """One ``[[peers]]`` table, as ``tomli_w`` writes it: fields in order, defaults left out."""
    text = (
        f"\n[[peers]]\naddr = {_quoted(entry.addr)}\n{_SOURCE_LINES[entry.source]}"
        f"first_seen = {entry.first_seen:d}\nlast_seen = {entry.last_seen:d}\n"
    )
    if entry.last_connected is not None:
        text += f"last_connected = {entry.last_connected:d}\n"
    if entry.last_attempt is not None:
        text += f"last_attempt = {entry.last_attempt:d}\n"
    if entry.failures:
        text += f"failures = {entry.failures:d}\n"
    if entry.node_id is not None:
        text += f"node_id = {_quoted(entry.node_id)}\n"
    if entry.capabilities:
        items = "".join(f"    {_quoted(c)},\n" for c in entry.capabilities)
        text += f"capabilities = [\n{items}]\n"
    return text


_quoted = functools.lru_cache(maxsize=1 << 16)(toml_string)
""":func:`toml_string`, remembering recent strings: a node writes the same addresses again."""
_SOURCE_LINES = {source: f"source = {toml_string(source.value)}\n" for source in Source}


# -- decoding ----------------------------------------------------------------------------------


@attrs.frozen
class Decoded:
    """What a file held: the entries that validate and the problems found.

    No problems means the file is intact; any problem means it is corrupt and ``entries`` is
    what could be salvaged.
    """

    entries: tuple[PeerEntry, ...]
    problems: tuple[str, ...] = ()
    saved_at: int | None = None

    @property
    def intact(self) -> bool:
        """Whether the file was complete and unaltered."""
        return not self.problems


def decode(data: bytes, *, realm: str) -> Decoded:
    """Read a peer file of ``realm``.

    Raise :class:`NewerSchemaError` for a file of a newer schema and :class:`RealmMismatchError`
    for another realm's file. Any other damage is reported in :attr:`Decoded.problems`, with the
    entries that still validate; entries are salvaged only from a file whose realm is readable
    and right, so no entry ever crosses realms.
    """
    problems = _Problems()
    body, expected_count = _split_trailer(data, problems)
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        problems.add(f"the file is not valid UTF-8 ({exc.reason} at byte {exc.start})")
        text = body.decode(errors="replace")
    torn = expected_count is None
    if torn:
        # A torn file may end in the middle of a line: only whole lines can be trusted.
        text = text[: text.rfind("\n") + 1]
        last = max((m.start() for m in _PEERS_HEADER.finditer(text)), default=None)
        if last is not None and not text.endswith("\n\n"):
            # The writer ends every entry with a blank line; without it the last one may be cut
            # short. Drop it before parsing, so a cut inside it cannot cost a complete entry.
            text = text[:last]
            problems.add("the last entry may be cut short; dropped")
    try:
        document = _read_as_written(text)
        if document is None:
            document = _parse_toml(text)
    except _TomlError as exc:
        problems.add(f"the file {exc}")
        header, raw_peers = _salvage_chunks(text, problems)
    else:
        raw_peers = document.pop("peers", [])
        header = document
        if not isinstance(raw_peers, list):
            problems.add(f"peers: expected an array of tables, got {type(raw_peers).__name__}")
            raw_peers = []
    realm_known, saved_at = _check_header(header, realm, problems)
    if not realm_known:
        return Decoded(entries=(), problems=problems.result())
    entries = []
    for index, raw in enumerate(raw_peers):
        quick = _entry_as_written(raw)
        if quick is not None:
            entries.append(quick)
            continue
        try:
            entries.append(converter.structure(raw, PeerEntry))
        except Exception as exc:  # any failure to structure is a bad entry
            if problems.full:
                problems.count()  # describing costs far more than checking: only count
            else:
                problems.extend(_describe_entry_error(exc, f"peers[{index}]"))
    if expected_count is not None and expected_count != len(raw_peers):
        problems.add(
            f"[integrity] counts {expected_count} entries, the file holds {len(raw_peers)}"
        )
    return Decoded(entries=tuple(entries), problems=problems.result(), saved_at=saved_at)


class _Problems:
    """The problems found in one file: at most :data:`MAX_PROBLEMS` listed, each kept short."""

    def __init__(self) -> None:
        self._listed: list[str] = []
        self._more = 0

    @property
    def full(self) -> bool:
        return len(self._listed) >= MAX_PROBLEMS

    def count(self) -> None:
        self._more += 1

    def add(self, problem: str) -> None:
        if self.full:
            self.count()
            return
        if len(problem) > MAX_PROBLEM_CHARS:
            # Keep both ends: the start says what was wrong, the end where.
            half = (MAX_PROBLEM_CHARS - 5) // 2
            problem = f"{problem[:half]} ... {problem[-half:]}"
        self._listed.append(problem)

    def extend(self, problems: Iterable[str]) -> None:
        for problem in problems:
            self.add(problem)

    def result(self) -> tuple[str, ...]:
        if self._more:
            return (*self._listed, f"and {self._more} more problems")
        return tuple(self._listed)


class _TomlError(Exception):
    """Text that the TOML parser cannot read; the message says why."""


def _parse_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads``, turning each way it can fail into a :class:`_TomlError`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _TomlError(f"is not valid TOML ({exc})") from None
    except RecursionError:
        # tomllib recurses once per level of nested arrays and inline tables.
        raise _TomlError("is nested too deeply to read") from None
    except ValueError as exc:
        # Python refuses to convert an integer of thousands of digits (int_max_str_digits).
        if "integer string conversion" in str(exc):
            raise _TomlError(
                "holds an integer of thousands of digits, far beyond TOML's 64-bit range"
            ) from None
        raise _TomlError(f"is not valid TOML ({exc})") from None


# A file this module wrote is read without the general TOML parser and without the converter:
# loading is on the path of every start. Each quick reader either returns exactly what the
# general one would or returns None and leaves the text to it, so no file reads differently.

_I = r"-?(?:0|[1-9][0-9]{0,17})"  # an integer that fits in 64 bits
_KEY_VALUE = re.compile(rf'([A-Za-z0-9_-]+) = (?:"({_P})"|({_I})|(\[\]|\[))\Z')
_ARRAY_ITEM = re.compile(rf'    "({_P})",\Z')
_ITEMS = re.compile(rf'    "({_P})",\n')
_ENTRY = re.compile(
    rf'\[\[peers\]\]\naddr = "({_P})"\nsource = "({_P})"\n'
    rf"first_seen = ({_I})\nlast_seen = ({_I})\n"
    rf"(?:last_connected = ({_I})\n)?(?:last_attempt = ({_I})\n)?(?:failures = ({_I})\n)?"
    rf'(?:node_id = "({_P})"\n)?(?:capabilities = \[\n((?:    "{_P}",\n)+)\]\n)?'
)
"""A whole ``[[peers]]`` table as :func:`encode` writes it, matched at once."""


def _read_as_written(text: str) -> dict[str, Any] | None:
    """``tomllib.loads(text)`` for text laid out as :func:`encode` writes it, else None.

    Recognised: blank lines, ``[[peers]]`` and ``[integrity]`` lines, and ``key = value`` lines
    whose value is a string of address characters, an integer of at most 18 digits, or an array
    of such strings, one per line. Anything else, or a key given twice, is left to the general
    parser.
    """
    return _QuickReader(text).read()


class _QuickReader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.document: dict[str, Any] = {}
        self.peers: list[dict[str, Any]] | None = None

    def read(self) -> dict[str, Any] | None:
        text, document = self.text, self.document
        table = document
        while self.pos < len(text):
            if text.startswith("[[peers]]\n", self.pos) and (block := _ENTRY.match(text, self.pos)):
                # The common case: a whole entry in one match.
                table = self._new_peer(_entry_table(block))
                self.pos = block.end()
                continue
            line = self._line()
            if not line:
                continue
            if line == "[[peers]]":
                table = self._new_peer({})
            elif line == "[integrity]":
                if "integrity" in document:
                    return None
                table = document["integrity"] = {}
            elif not self._key_value(line, table):
                return None
        return document

    def _line(self) -> str:
        newline = self.text.find("\n", self.pos)
        if newline < 0:
            newline = len(self.text)
        line, self.pos = self.text[self.pos : newline], newline + 1
        return line

    def _new_peer(self, table: dict[str, Any]) -> dict[str, Any]:
        if self.peers is None:
            self.peers = self.document["peers"] = []
        self.peers.append(table)
        return table

    def _key_value(self, line: str, table: dict[str, Any]) -> bool:
        match = _KEY_VALUE.match(line)
        if match is None:
            return False
        key, string, integer, array = match.groups()
        if key in table or (table is self.document and key == "peers"):
            return False
        value: object
        if string is not None:
            value = string
        elif integer is not None:
            value = int(integer)
        elif array == "[]":
            value = []
        else:
            value = self._array()
            if value is None:
                return False
        table[key] = value
        return True

    def _array(self) -> list[str] | None:
        items: list[str] = []
        while self.pos < len(self.text):
            line = self._line()
            if line == "]":
                return items
            item = _ARRAY_ITEM.match(line)
            if item is None:
                return None
            items.append(item.group(1))
        return None  # the array is never closed


def _entry_table(block: re.Match[str]) -> dict[str, Any]:
    addr, source, first_seen, last_seen, connected, attempt, failures, node_id, capabilities = (
        block.groups()
    )
    table: dict[str, Any] = {
        "addr": addr,
        "source": source,
        "first_seen": int(first_seen),
        "last_seen": int(last_seen),
    }
    if connected is not None:
        table["last_connected"] = int(connected)
    if attempt is not None:
        table["last_attempt"] = int(attempt)
    if failures is not None:
        table["failures"] = int(failures)
    if node_id is not None:
        table["node_id"] = node_id
    if capabilities is not None:
        table["capabilities"] = _ITEMS.findall(capabilities)
    return table


_ENTRY_FIELDS: dict[str, type] = {
    "addr": str,
    "source": str,
    "first_seen": int,
    "last_seen": int,
    "last_connected": int,
    "last_attempt": int,
    "failures": int,
    "node_id": str,
    "capabilities": list,
}
_SOURCES = {source.value: source for source in Source}


def _entry_as_written(raw: object) -> PeerEntry | None:
    """``converter.structure(raw, PeerEntry)`` for a table of exactly the written types and a
    valid entry, else None."""
    if type(raw) is not dict:
        return None
    for key, value in raw.items():
        if type(value) is not _ENTRY_FIELDS.get(key):
            return None
    try:
        fields = dict(raw)
        fields["addr"] = canonical_addr(raw["addr"])
        fields["source"] = _SOURCES[raw["source"]]
        if "capabilities" in raw:
            capabilities = raw["capabilities"]
            if not all(type(c) is str for c in capabilities):
                return None
            fields["capabilities"] = tuple(capabilities)
        for key in ("first_seen", "last_seen", "last_connected", "last_attempt", "failures"):
            if key in raw and not in_int64(raw[key]):
                return None
        return PeerEntry(**fields)
    except (KeyError, TypeError, ValueError):  # AddressError is a ValueError
        return None


def _describe_entry_error(exc: Exception, path: str) -> list[str]:
    try:
        return describe_error(exc, path)
    except Exception:  # describing must never cost the entries that do validate
        return [f"invalid entry ({type(exc).__name__}) @ {path}"]


def _split_trailer(data: bytes, problems: _Problems) -> tuple[bytes, int | None]:
    """Split off and check the integrity trailer; return the body and the entry count it gives."""
    mark = data.rfind(_TRAILER_MARK)
    if mark < 0:
        problems.add("no [integrity] trailer: the file is torn")
        return data, None
    body, trailer = data[: mark + 1], data[mark + 1 :]
    try:
        trailer_text = trailer.decode()
        read = _read_as_written(trailer_text)
        integrity = (_parse_toml(trailer_text) if read is None else read)["integrity"]
        count, digest = integrity["entries"], integrity["sha256"]
        if set(integrity) != {"entries", "sha256"} or type(count) is not int:
            raise ValueError
    except (UnicodeDecodeError, _TomlError, KeyError, TypeError, ValueError):
        problems.add("the [integrity] trailer is unreadable")
        return body, None
    if not isinstance(digest, str) or hashlib.sha256(body).hexdigest() != digest.lower():
        problems.add("the [integrity] digest does not match: the file was cut short or edited")
    elif not trailer.endswith(b"\n"):
        # The writer ends the file with a newline; only a cut can take it away.
        problems.add("the file ends inside its [integrity] trailer: it was cut short")
    return body, count


def _salvage_chunks(text: str, problems: _Problems) -> tuple[dict[str, Any], list[Any]]:
    """Parse the header and each ``[[peers]]`` table on its own, keeping what parses."""
    starts = [m.start() for m in _PEERS_HEADER.finditer(text)]
    bounds = [0, *starts, len(text)]
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds)]
    header: dict[str, Any] = {}
    try:
        header = _parse_toml(chunks[0])
    except _TomlError as exc:
        problems.add(f"the header {exc}")
    peers: list[Any] = []
    for index, chunk in enumerate(chunks[1:]):
        try:
            table = _parse_toml(chunk).get("peers")
        except _TomlError as exc:
            problems.add(f"peers[{index}] {exc}; dropped")
            continue
        if isinstance(table, list):
            peers.extend(table)
    return header, peers


def _check_header(
    header: Mapping[str, Any], realm: str, problems: _Problems
) -> tuple[bool, int | None]:
    """Check schema, realm and saved_at; raise for a newer schema or another realm.

    Return whether the file is known to be of ``realm``, and when it was saved.
    """
    schema = header.get("schema")
    # A schema beyond TOML's range was never written by any version: damage, not the future.
    if type(schema) is int and SCHEMA < schema <= INT_MAX:
        raise NewerSchemaError(schema)
    if schema != SCHEMA or type(schema) is not int:
        problems.add(f"schema: expected {SCHEMA}, got {show(schema)}")
    found = header.get("realm")
    if isinstance(found, str) and found != realm:
        raise RealmMismatchError(found, realm)
    if not isinstance(found, str):
        problems.add(
            f"realm: expected a string, got {show(found)}; "
            "no entry is salvaged from a file of unknown realm"
        )
        return False, None
    unknown = sorted(set(header) - _HEADER_KEYS)
    if unknown:
        problems.add(f"unknown keys: {', '.join(show(key) for key in unknown)}")
    saved_at = header.get("saved_at")
    if type(saved_at) is not int or not 0 <= saved_at <= INT_MAX:
        problems.add(
            f"saved_at: expected an integer of 0 to {INT_MAX} (Unix seconds), got {show(saved_at)}"
        )
        return True, None
    return True, saved_at
