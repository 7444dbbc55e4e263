"""The peer file's text, stated once: the entry schema, its writer, its reader, the trailer.

The file is a header, one ``[[peers]]`` table per entry, a blank line, then an ``[integrity]``
table holding the number of entries and the SHA-256 of every byte above the ``[integrity]``
line. TOML has no end marker, so the trailer, written last, is what tells a complete file from
a torn or edited one::

    schema = 1
    realm = "example"
    saved_at = 1763700000

    [[peers]]
    addr = "203.0.113.10:7447"
    ...

    [integrity]
    entries = 1
    sha256 = "..."

The entry schema is :class:`~thenodes_peerstore.model.PeerEntry` itself: its fields, in order,
with their types, defaults and ``pattern`` metadata. :data:`ENTRY` (a :class:`TableFormat`) is
derived from them, and from it both the writer (byte for byte what ``tomli_w`` writes for the
same table, optional fields at their default left out) and the reader's exact pattern for a
table as written; :data:`HEADER` likewise from :class:`Header`.

A file laid out exactly as :func:`encode` writes it, intact, is read in one pass over its tables
(:meth:`TableFormat.read_run`). Any other is read by one loop for intact and damaged files
alike: the text is split at ``[[peers]]`` lines, and each table is read through the exact
pattern or, when it does not match, through ``tomllib`` and the converter, which then decide;
a table that fails both is a listed problem. A table the pattern matches holds valid values by
construction (the patterns admit nothing the model refuses), so it becomes an entry without
the converter. Both readers give the same result on every file.

A node's file also has a head (:data:`HEAD_MARK`), in comments after the header's keys: what
a start reads its plan from before the rest (:func:`read_head`). Every TOML reader skips it.

A file is written in the oldest schema that holds its entries (:func:`schema_of`): schema 2
(:data:`SCHEMA`), unless an entry holds a field a later schema brought (the model's ``since``
metadata: the certificate fields, schema 3), so a file without one is the file every version
since schema 2 reads, byte for byte.

Decoding never trusts the file: whatever the bytes, it raises nothing but
:class:`~thenodes_peerstore.errors.NewerSchemaError` and
:class:`~thenodes_peerstore.errors.RealmMismatchError`, and the problems are few and short
however large the file.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import linecache
import operator
import re
import tomllib
import types
import typing
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import tomli_w

from thenodes_naming import DEFAULT_REALM_VERSION
from thenodes_peerstore.convert import INT_MAX, converter, describe_error, show
from thenodes_peerstore.errors import NewerSchemaError, RealmMismatchError
from thenodes_peerstore.model import (
    COUNT_PATTERN,
    PeerEntry,
    PlanHead,
    Source,
    non_negative,
)
from thenodes_peerstore.model import (
    field_pattern as _pattern,
)

M = typing.TypeVar("M", bound=attrs.AttrsInstance)
"""A model: an attrs class."""

SCHEMA = 2
"""The schema this version writes a file in when no entry holds a field of a later schema
(:data:`NEWEST_SCHEMA`): the file every version since schema 2 reads, as it always was. Schema 1
(no realm version, no stopped intervals, no Claimed tier) is read and migrated: see
:func:`migrate_v1`."""
NEWEST_SCHEMA = max(SCHEMA, *(a.metadata.get("since", 1) for a in attrs.fields(PeerEntry)))
"""The newest schema this version reads and writes: 3, schema 2 and each entry's certificate
fields (``cert_fingerprint``, ``cert_changed_to``). A schema-2 file reads as one whose entries
hold none. A file of a later schema is left alone (:class:`NewerSchemaError`)."""
READS = frozenset({1, *range(SCHEMA, NEWEST_SCHEMA + 1)})
WRITES = frozenset(range(SCHEMA, NEWEST_SCHEMA + 1))
"""The schemas this version writes a file in (:func:`schema_of`)."""
MAX_TABLES = 1 << 17
"""Tables read from one file: far more than any cap a store may be configured with; a file of
more (a million empty tables fit under the size cap) has the rest counted, not read."""
MAX_SLOW_TABLES = 20_000
"""Tables not laid out as written that are read through ``tomllib``; the rest are counted."""
MAX_PROBLEMS = 50
"""Problems listed for one file; the rest are counted."""
MAX_PROBLEM_CHARS = 400
"""A longer problem is shortened in the middle, keeping where it happened."""

_TRAILER_MARK = b"\n[integrity]\n"
_PEERS_LINE = re.compile(r"^\[\[peers\]\][ \t]*$", re.MULTILINE)
_PEERS_LINE_BYTES = re.compile(_PEERS_LINE.pattern.encode(), re.MULTILINE)

_PLAIN = r"[A-Za-z0-9._:/\[\]-]*"
"""Characters that need no escaping in a TOML basic string: every valid address, source,
node id and capability is made of them."""
_PLAIN_RE = re.compile(_PLAIN)


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string, escaped exactly as ``tomli_w`` escapes it."""
    if _PLAIN_RE.fullmatch(value):
        return f'"{value}"'
    return tomli_w.dumps({"v": value})[4:-1]


# -- the schema --------------------------------------------------------------------------------


@attrs.frozen
class Field:
    """One key of a table, as the file holds it."""

    name: str
    kind: type
    """``int``, ``str``, :class:`Source` or ``tuple`` (an array of strings)."""
    optional: bool
    """Whether it may be left out; it is, while it holds ``default``."""
    default: object
    pattern: str
    """The text of one valid value (of one item, for an array)."""
    plain: bool
    """Whether the pattern comes from the model, which makes it admit only characters that
    need no escaping in a TOML string."""
    item: type | None = None
    """For an array: the type of its items, ``str`` or ``int``."""
    complete: bool = False
    """Whether the pattern admits only valid values (no validator needed after it)."""
    exact: str | None = None
    """For a field that is not complete: a narrower pattern that admits only valid values."""
    since: int = 1
    """The schema that brought the field: a file none of whose entries holds it at anything but
    its default is written in an earlier one (:func:`schema_of`)."""

    @classmethod
    def of(cls, attribute: attrs.Attribute[Any], hint: Any) -> Field:
        """The file form of an attrs field whose (resolved) type is ``hint``."""
        if typing.get_origin(hint) in (types.UnionType, typing.Union):  # X | None
            (hint,) = (k for k in typing.get_args(hint) if k is not types.NoneType)
        kind = typing.get_origin(hint) or hint
        item = typing.get_args(hint)[0] if kind is tuple else None
        if kind not in (int, str, Source, tuple) or item not in (None, str, int):
            raise TypeError(f"{attribute.name}: no file form for {hint}")
        pattern = attribute.metadata.get("pattern")
        return cls(
            name=attribute.name,
            kind=kind,
            optional=attribute.default is not attrs.NOTHING,
            default=attribute.default,
            pattern=_PLAIN if pattern is None else pattern,
            plain=pattern is not None,
            item=item,
            complete=pattern is not None and bool(attribute.metadata.get("complete")),
            exact=attribute.metadata.get("exact"),
            since=attribute.metadata.get("since", 1),
        )

    def write_source(self, value: str) -> str:
        """Python source of an expression for the field's ``key = value`` line(s).

        ``value`` is the source of an expression for the field's value. A string with a pattern
        is written as it is: its pattern admits only characters that need no escaping.
        """
        key = self.name
        if self.kind is int:
            # Every integer field's validator admits exact ints only, so ``str`` is the digits
            # (``:d`` would cost a formatting call per field for nothing).
            return f'f"{key} = {{{value}}}\\n"'
        if self.kind is Source:
            return f'f"{key} = \\"{{_labels[{value}]}}\\"\\n"'
        if self.kind is tuple:
            return f"_array({key!r}, {value})"
        if self.plain:
            return f'f"{key} = \\"{{{value}}}\\"\\n"'
        return f'f"{key} = {{_quoted({value})}}\\n"'

    def line_pattern(self, *, exact: bool = False) -> str:
        """A regular expression for the field's line(s) as written, capturing the value.

        With ``exact``, a string field with an :attr:`exact` pattern captures its value in one
        of two groups: the first when the exact pattern matches it, the second otherwise.
        """
        if exact and self.exact is not None:
            value = f'"(?:({self.exact})|({self.pattern}))"'
        elif self.kind is int:
            value = f"({self.pattern})"
        elif self.kind is Source:
            value = '"(' + "|".join(re.escape(s.label) for s in Source) + ')"'
        elif self.kind is tuple and self.item is int:
            value = rf"\[\n((?:    {self.pattern},\n)+)\]"
        elif self.kind is tuple:
            value = rf'\[\n((?:    "{self.pattern}",\n)+)\]'
        else:
            value = f'"({self.pattern})"'
        line = f"{re.escape(self.name)} = {value}\n"
        return f"(?:{line})?" if self.optional else line

    def read(self, text: str) -> object:
        """The value of the text the field's pattern captured."""
        if self.kind is int:
            return int(text)
        if self.kind is Source:
            return Source.from_label(text)
        if self.kind is tuple and self.item is int:
            return tuple(map(int, _INT_ITEM.findall(text)))
        if self.kind is tuple:
            return tuple(_ITEM.findall(text))
        return text


_ITEM = re.compile(rf'    "({_PLAIN})",\n')
_INT_ITEM = re.compile(r"    (-?[0-9]+),\n")


class TableFormat(typing.Generic[M]):
    """How one table of a model is written and read, derived from the model's attrs fields.

    The fields, in order, with their types, defaults and ``pattern`` metadata, are the table's
    schema. From it come the writer (byte for byte what ``tomli_w`` writes for the same table,
    optional fields at their default left out) and one exact pattern for the table as written;
    adding an optional field to the model changes neither.
    """

    def __init__(self, cls: type[M], header_line: str = "") -> None:
        self.cls = cls
        hints = typing.get_type_hints(cls)
        self.fields = tuple(Field.of(a, hints[a.name]) for a in attrs.fields(cls))
        self.header_line = header_line
        self.write: Callable[[M], str] = self._compile_writer()
        """The table's text; for a ``[[...]]`` table, with the blank line before it."""
        lead = re.escape(header_line) + r"\n" if header_line else ""
        self._pattern = re.compile(lead + "".join(f.line_pattern() for f in self.fields) + r"\n")
        self._build: Callable[[tuple[str | None, ...]], M] = self._compile_reader()
        self._read_run: Callable[[str, int, int], list[M] | None] = self._compile_run_reader()

    def read_run(self, text: str, start: int, end: int) -> list[M] | None:
        """The models of ``text[start:end]``, a run of tables each laid out as :attr:`write`
        writes it (with its blank line), one after the other; None unless all of it is.

        What :meth:`read_as_written` returns for each table, in one pass: a file this version
        wrote is read whole this way, and anything else is left to the table by table reader.
        """
        return self._read_run(text, start, end)

    def read_as_written(self, text: str, start: int = 0, end: int | None = None) -> M | None:
        """The model of ``text[start:end]`` laid out as :attr:`write` writes it, with the blank
        line after it; None to leave the text to ``tomllib`` and the converter.

        The patterns admit only the text of valid values; what no pattern can say (for an
        entry: an address in canonical form and dialable, capabilities distinct) the model's
        validators check. So this returns what the converter would, or None.
        """
        match = self._pattern.fullmatch(text, start, len(text) if end is None else end)
        if match is None:
            return None
        try:
            return self._build(match.groups())
        except (ValueError, TypeError):  # AddressError is a ValueError
            return None

    def _compile_reader(self) -> Callable[[tuple[str | None, ...]], M]:
        # Generated as the writer is. The value of a field whose pattern is complete is valid
        # by construction; only the other fields' validators run. At 10,000 entries this reads
        # a file in about half the time of the model's __init__ with every validator
        # (``python benchmarks/bench_vs_libp2p.py``, reopen).
        names = [f"g{i}" for i in range(len(self.fields))]
        lines = [
            "def build(groups):",
            f"    {', '.join(names)}{',' if len(names) == 1 else ''} = groups",
            "    obj = _new(cls)",
        ]
        namespace: dict[str, Any] = {"_new": object.__new__, "_set": object.__setattr__}
        namespace["cls"] = self.cls
        for index, (field, group) in enumerate(zip(self.fields, names, strict=True)):
            namespace[f"_read{index}"] = field.read
            value = f"_read{index}({group})"
            if field.kind is str:
                value = group
            elif field.kind is int:
                value = f"int({group})"
            if field.optional:
                namespace[f"_default{index}"] = field.default
                value = f"_default{index} if {group} is None else {value}"
            lines.append(f"    _set(obj, {field.name!r}, {value})")
        attributes = {a.name: a for a in attrs.fields(self.cls)}
        for index, field in enumerate(self.fields):
            attribute = attributes[field.name]
            if not field.complete and attribute.validator is not None:
                namespace[f"_attribute{index}"] = attribute
                namespace[f"_validate{index}"] = attribute.validator
                lines.append(f"    _validate{index}(obj, _attribute{index}, obj.{field.name})")
        lines.append("    return obj")
        _compile_generated("reader", self.cls, "\n".join(lines) + "\n", namespace)
        return typing.cast(Callable[[tuple[str | None, ...]], M], namespace["build"])

    def _compile_run_reader(self) -> Callable[[str, int, int], list[M] | None]:
        # Generated as the table reader is, with the loop inside: a start reads every table of
        # its file. Each field is set through its slot's own setter, equal integers share one
        # object (a file's times repeat), and only the values no pattern vouches for are
        # validated. A node's full file at the default cap is read in 2.8 us an entry, each
        # entry holding 215 bytes, where the table by table reader takes 5.5 us and leaves
        # 287 (``python -m benchmarks.bench_paths``, read).
        lead = re.escape(self.header_line) + r"\n" if self.header_line else ""
        lines_pattern = "".join(f.line_pattern(exact=True) for f in self.fields)
        names = [f"g{i}" for i in range(len(self.fields))]
        groups = [f"{g}, {g}x" if f.exact else g for f, g in zip(self.fields, names, strict=True)]
        namespace: dict[str, Any] = {
            "_new": object.__new__,
            "cls": self.cls,
            "_match": re.compile(lead + lines_pattern + r"\n").match,
            "_Ints": _Ints,
            "_labels": {s.label: s for s in Source},
        }
        lines = [
            "def read_run(text, pos, end):",
            "    models = []",
            "    append = models.append",
            "    ints = _Ints()",
            "    while pos < end:",
            "        match = _match(text, pos, end)",
            "        if match is None:",
            "            return None",
            "        pos = match.end()",
            f"        {', '.join(groups)}{',' if len(groups) == 1 else ''} = match.groups()",
            "        obj = _new(cls)",
        ]
        checks: list[str] = []
        attributes = {a.name: a for a in attrs.fields(self.cls)}
        for index, (field, group) in enumerate(zip(self.fields, names, strict=True)):
            namespace[f"_set{index}"] = _setter(self.cls, field.name)
            if field.exact is not None:  # gNx: what the exact pattern did not vouch for
                value = f"{group} if {group}x is None else {group}x"
            elif field.kind is str:
                value = group
            elif field.kind is int:
                value = f"ints[{group}]"
            elif field.kind is Source:
                value = f"_labels[{group}]"
            else:
                namespace[f"_read{index}"] = field.read
                value = f"_read{index}({group})"
            if field.optional:
                namespace[f"_default{index}"] = field.default
                value = f"_default{index} if {group} is None else {value}"
            lines.append(f"        _set{index}(obj, {value})")
            validator = attributes[field.name].validator
            if field.complete or validator is None:
                continue
            namespace[f"_attribute{index}"] = attributes[field.name]
            namespace[f"_validate{index}"] = validator
            if field.exact is not None:
                condition = f"{group}x is not None"
            elif field.optional:
                condition = f"{group} is not None"
            else:
                condition = "True"
            checks += [
                f"        if {condition}:",
                "            try:",
                f"                _validate{index}(obj, _attribute{index}, obj.{field.name})",
                "            except (ValueError, TypeError):  # AddressError is a ValueError",
                "                return None",
            ]
        lines += [*checks, "        append(obj)", "    return models"]
        _compile_generated("run reader", self.cls, "\n".join(lines) + "\n", namespace)
        return typing.cast(Callable[[str, int, int], "list[M] | None"], namespace["read_run"])

    def _compile_writer(self) -> Callable[[M], str]:
        # Generated from the schema, as attrs and cattrs generate their methods: a save formats
        # every entry. The function adds up one f-string per field, an optional field's only
        # when it is not at its default: 0.33 us a gossip entry and 0.75 a proven one with a
        # node id and a capability, against 1.76 and 3.22 by a loop over the fields
        # (``python -m benchmarks.bench_paths``, writer). Joining a tuple of the pieces,
        # integers through ``:d`` and each array made anew (:func:`_array`) took 0.55 and 2.0.
        first = f"\n{self.header_line}\n" if self.header_line else ""
        namespace: dict[str, Any] = {
            "_labels": {s: s.label for s in Source},
            "_array": _array,
            "_quoted": toml_string,
        }
        parts = [repr(first)]
        for index, field in enumerate(self.fields):
            value = f"obj.{field.name}"
            line = field.write_source(value)
            if not field.optional:
                literal = line.startswith('f"') and parts[-1].startswith(("'", 'f"'))
                # Adjacent literals are one literal to the compiler: one formatting, no joining.
                parts[-1:] = [f"{parts[-1]} {line}"] if literal else [parts[-1], line]
            elif field.default is None:
                parts.append(f'("" if {value} is None else {line})')
            else:
                namespace[f"_default{index}"] = field.default
                parts.append(f'("" if {value} == _default{index} else {line})')
        source = "def write(obj):\n    return (\n        " + "\n        + ".join(parts)
        _compile_generated("writer", self.cls, source + "\n    )\n", namespace)
        return typing.cast(Callable[[M], str], namespace["write"])


_GENERATED = itertools.count()
"""Numbers the generated functions' file names, so no two share one."""


def _compile_generated(what: str, cls: type, source: str, namespace: dict[str, Any]) -> None:
    """Run the generated ``source`` into ``namespace``, under a file name of its own that
    :mod:`linecache` holds the source for (as attrs and cattrs do for theirs): a traceback
    through a generated reader or writer shows its lines."""
    filename = f"<thenodes_peerstore.codec generated {what} for {cls.__qualname__}"
    filename += f" #{next(_GENERATED)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - built from the schema


class _Ints(dict[str, int]):
    """The integers of one file by their text: equal times share one object."""

    def __missing__(self, text: str) -> int:
        value = self[text] = int(text)
        return value


def _setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """What sets the field ``name`` of a frozen ``cls``: its slot's own setter, as attrs'
    ``__init__`` ends in, or ``object.__setattr__`` for a class without slots."""
    slot = getattr(cls, name, None)
    if isinstance(slot, types.MemberDescriptorType):
        return slot.__set__
    return lambda obj, value: object.__setattr__(obj, name, value)


@functools.lru_cache(maxsize=256)
def _array(key: str, items: tuple[str | int, ...]) -> str:
    """An array of strings or integers, one per line, as ``tomli_w`` writes it.

    Remembered: the peers of a network share a few sets of capabilities, and a connected
    entry's array made anew costs more than the rest of its table."""
    if not items:
        return f"{key} = []\n"
    lines = "".join(
        f"    {item:d},\n" if isinstance(item, int) else f"    {toml_string(item)},\n"
        for item in items
    )
    return f"{key} = [\n{lines}]\n"


@attrs.frozen
class Header:
    """The keys above the first ``[[peers]]`` table, in the order they are written."""

    schema: int = attrs.field(validator=non_negative, metadata=_pattern(COUNT_PATTERN))
    realm: str
    """The realm's code."""
    saved_at: int = attrs.field(validator=non_negative, metadata=_pattern(COUNT_PATTERN))
    version: str | None = None
    """The realm's version (schema 2): peers of one version are never used by another."""
    offline: tuple[int, ...] = attrs.field(default=(), metadata=_pattern(COUNT_PATTERN))
    """When the node was stopped (schema 2): ``stopped, started`` pairs of Unix seconds, oldest
    first. Entries do not age while the node is stopped."""


HEADER = TableFormat(Header)
"""The file's header."""


@attrs.frozen
class Head:
    """The keys of a file's head, in the order they are written: see :data:`HEAD_MARK`."""

    tables: int = attrs.field(validator=non_negative, metadata=_pattern(COUNT_PATTERN))
    """The file's first ``tables`` tables are the head's entries."""
    proven: int = attrs.field(validator=non_negative, metadata=_pattern(COUNT_PATTERN))
    """Proven entries in the file, those included."""
    suspended: int = attrs.field(
        default=0, validator=non_negative, metadata=_pattern(COUNT_PATTERN)
    )
    """``Connected`` entries that are not proven (:attr:`PlanHead.suspended`); left out while
    there are none, so that a head is what it was before certificates."""


HEAD = TableFormat(Head)
REST: TableFormat[PeerEntry] = TableFormat(PeerEntry, "[rest]")
"""The bound on the file's other proven entries (:attr:`PlanHead.rest`)."""
HEAD_MARK = "# head: the next start reads its plan from the first tables below\n"
"""The first line of a file's head, written in comments after the header's keys::

    # head: the next start reads its plan from the first tables below
    # crc32 = 2914587134
    # tables = 2
    # proven = 3
    #
    # [rest]
    # addr = "203.0.113.7:7447"
    # ...

``crc32`` is the CRC-32 of every byte above the ``[integrity]`` line but its own line's, so
an edit made by anything but this writer, even under a new digest, leaves a head no start
trusts. Every TOML reader skips comments, this version's included: the file's content is its
entries alone, and a file without a head (an older one) reads the same.
"""
_CRC_LINE = re.compile(r"# crc32 = (0|[1-9][0-9]{0,9})\n")
ENTRY: TableFormat[PeerEntry] = TableFormat(PeerEntry, "[[peers]]")
"""One ``[[peers]]`` table: an entry."""
MAX_BARE_ENTRY_BYTES = len(
    ENTRY.write(
        PeerEntry(
            addr="[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
            source=Source.BOOTSTRAP,
            first_seen=INT_MAX,
            last_seen=INT_MAX,
            last_connected=INT_MAX,
            last_attempt=INT_MAX,
            failures=INT_MAX,
            cert_fingerprint="f" * 64,
            cert_changed_to="f" * 64,
        )
    ).encode()
)
"""The most an entry without a node id or capabilities takes in the file, its certificate
fields included: a remembered fingerprint is part of what proves a peer, never dropped to make
room (node ids and capabilities are, past their budget)."""


_SCHEMA_LINE = re.compile(rb"schema = ([0-9]{1,18})\n")


def schema_named(data: bytes | bytearray) -> int:
    """The schema a plain file says it is in on its first line, as :func:`encode` writes it,
    when this version reads that schema; else :data:`NEWEST_SCHEMA` (what a sealed copy of any
    other bytes is marked with)."""
    match = _SCHEMA_LINE.match(data)
    schema: int = NEWEST_SCHEMA if match is None else int(match.group(1))
    return schema if schema in READS else NEWEST_SCHEMA


def schema_of(tables: str, entry_format: TableFormat[Any] = ENTRY) -> int:
    """The schema a file whose entries are written as ``tables`` is in: the newest that
    brought a field one of them holds at anything but its default, and :data:`SCHEMA` at
    least.

    The writer writes such a field as a line of its own exactly when an entry holds it at
    anything but its default, so the text tells: a search of it in C, where asking every entry
    for each such field took a tenth of a save's encoding.
    """
    schema = SCHEMA
    for field in entry_format.fields:
        if field.since > schema and f"\n{field.name} = " in tables:
            schema = field.since
    return schema


# -- encoding ----------------------------------------------------------------------------------


def encode(
    realm: str,
    saved_at: int,
    entries: Iterable[M],
    *,
    version: str | None = None,
    offline: Iterable[tuple[int, int]] = (),
    entry_format: TableFormat[M] = ENTRY,  # type: ignore[assignment]  # M is PeerEntry by default
    head: PlanHead | None = None,
) -> bytes:
    """The complete file for these entries, integrity trailer included.

    :param version: The realm's version.
    :param offline: When the node was stopped, as ``(stopped, started)`` pairs.
    :param head: What the next start reads first (:data:`HEAD_MARK`): its entries, which are
        among ``entries``, are written first.

    Each entry is its own ``[[peers]]`` table (a TOML writer would inline an array of short
    tables), so a file cut at an entry boundary still parses and its complete entries can be
    salvaged. The file's schema is the oldest that holds them (:func:`schema_of`).
    """
    write = entry_format.write
    parts: list[str] = []
    if head is not None:
        parts.append(_commented(HEAD.write(Head(len(head.entries), head.proven, head.suspended))))
        if head.rest is not None:
            parts.append(_commented(REST.write(head.rest)))
    above = len(parts)
    if head is not None and head.entries and not _starts_with(entries, head.entries):
        first = {id(entry) for entry in head.entries}
        parts += map(write, typing.cast(Iterable[M], head.entries))
        parts += map(write, [e for e in entries if id(e) not in first])
    else:  # a node's save gives the head's entries first (PeerStore.by_tier)
        parts += map(write, entries)
    count = len(parts) - above
    tables = "".join(parts)
    header = HEADER.write(
        Header(
            schema=schema_of(tables, entry_format),
            realm=realm,
            saved_at=saved_at,
            version=version,
            offline=tuple(t for pair in offline for t in pair),
        )
    )
    if head is None:
        body = (header + tables).encode() + b"\n"
    else:
        top = (header + HEAD_MARK).encode()
        below = tables.encode() + b"\n"
        crc = zlib.crc32(below, zlib.crc32(top))
        body = b"".join((top, f"# crc32 = {crc}\n".encode(), below))
    digest = hashlib.sha256(body).hexdigest()
    return body + f'[integrity]\nentries = {count}\nsha256 = "{digest}"\n'.encode()


def _starts_with(entries: Iterable[object], first: Sequence[object]) -> bool:
    """Whether ``entries`` is a sequence whose first items are ``first``, object for object."""
    if not isinstance(entries, Sequence) or len(entries) < len(first):
        return False
    return all(map(operator.is_, entries[: len(first)], first))


def _commented(text: str) -> str:
    """``text`` as TOML comments: each line after ``"# "``, a blank line as ``"#"``."""
    return "".join(f"# {line}\n" if line else "#\n" for line in text[:-1].split("\n"))


def _uncommented(text: str) -> str | None:
    """What :func:`_commented` made ``text`` of; None when it is not such comments."""
    if not text.endswith("\n"):
        return None
    lines = []
    for line in text[:-1].split("\n"):
        if line == "#":
            lines.append("")
        elif line.startswith("# "):
            lines.append(line[2:])
        else:
            return None
    return "".join(f"{line}\n" for line in lines)


@attrs.frozen
class Opening:
    """What a start reads of a file before its entries: the head, and the header's times."""

    head: PlanHead
    saved_at: int
    offline: tuple[tuple[int, int], ...] = ()
    """When the node was stopped, as the file recorded it."""


def read_head(data: bytes, *, realm: str, version: str | None = None) -> Opening | None:
    """The head of a file this version wrote (:data:`HEAD_MARK`), read before the rest of it;
    None for any other file, which a start then reads whole.

    Only an intact file (its digest right) whose head is as written, whose CRC still matches
    and whose header passes every check :func:`decode` makes (the realm, its version, the
    schema) gives its head; of the entries, only the head's are read. Raises nothing.
    """
    body, count = _intact_body(data)
    if body is None:
        return None
    first = body.find(b"\n[[peers]]\n") + 1
    try:
        text = body[: first or len(body)].decode()
    except UnicodeDecodeError:
        return None
    cut = text.find("\n#") + 1
    header = HEADER.read_as_written(text[:cut] + "\n") if cut else None
    block = _read_head_block(text, cut) if header is not None else None
    if header is None or block is None or header.schema not in WRITES:
        return None
    head, rest, crc, crc_at = block
    problems = _Problems()
    fields = {f.name: getattr(header, f.name) for f in HEADER.fields}
    try:
        realm_known, saved_at = _check_header(fields, realm, version, problems)
    except (NewerSchemaError, RealmMismatchError):
        return None  # the whole read says so
    offline = _pairs(header.offline, problems)
    if problems.result() or not realm_known or saved_at is None:
        return None
    start = len(text[:crc_at].encode())
    end = body.index(b"\n", start) + 1
    view = memoryview(body)
    if zlib.crc32(view[end:], zlib.crc32(view[:start])) != crc:
        return None
    if not head.tables <= min(head.proven, count):
        return None
    end = first
    for _ in range(head.tables):
        end = body.find(b"\n[[peers]]\n", end) + 1 or len(body)
    try:
        tables = body[first:end].decode()
    except UnicodeDecodeError:
        return None
    entries = ENTRY.read_run(tables, 0, len(tables)) if head.tables else []
    if entries is None or len(entries) != head.tables or not all(e.proven for e in entries):
        return None
    return Opening(PlanHead(tuple(entries), head.proven, rest, head.suspended), saved_at, offline)


def _read_head_block(text: str, start: int) -> tuple[Head, PeerEntry | None, int, int] | None:
    """The head of a header whose comments begin at ``start``, its bound, its CRC and where its
    CRC's line begins; None unless the comments are a head as written."""
    if not text.startswith(HEAD_MARK, start):
        return None
    crc_at = start + len(HEAD_MARK)
    line = _CRC_LINE.match(text, crc_at)
    plain = _uncommented(text[line.end() : -1]) if line is not None else None
    if line is None or plain is None or not text.endswith("\n\n"):
        return None
    cut = plain.find("\n[rest]\n") + 1
    head = HEAD.read_as_written(plain[:cut] if cut else plain + "\n")
    rest = REST.read_as_written(plain[cut:] + "\n") if cut else None
    if head is None or (cut and (rest is None or not rest.proven)):
        return None
    return head, rest, int(line.group(1)), crc_at


# -- decoding ----------------------------------------------------------------------------------


@attrs.frozen
class Decoded:
    """What a file held: the entries that validate and the problems found.

    No problems means the file is intact; any problem means it is damaged and ``entries`` is
    what could be salvaged.
    """

    entries: tuple[PeerEntry, ...]
    problems: tuple[str, ...] = ()
    saved_at: int | None = None
    schema: int | None = None
    """The schema the file was written in, when readable."""
    offline: tuple[tuple[int, int], ...] = ()
    """When the node was stopped, as recorded by the file."""
    version: str | None = None
    """The realm's version of the file, which a rewrite keeps: the one it names, else TheNodes'
    default, ``"1.0"`` (:func:`file_version`); None when its header cannot be read."""

    @property
    def intact(self) -> bool:
        """Whether the file was complete and unaltered."""
        return not self.problems


def decode(
    data: bytes,
    *,
    realm: str,
    version: str | None = None,
    entry_format: TableFormat[Any] = ENTRY,
) -> Decoded:
    """Read a peer file of ``realm`` (and of the realm's ``version``, when given).

    Raise :class:`NewerSchemaError` for a file of a newer schema and :class:`RealmMismatchError`
    for another realm's file, or another version's. Any other damage is reported in
    :attr:`Decoded.problems`, with the entries that still validate; entries are salvaged only
    from a file whose realm is readable and right, so no entry ever crosses realms. A schema-1
    file is migrated (:func:`migrate_v1`). At most :data:`MAX_TABLES` tables are read, and at
    most :data:`MAX_SLOW_TABLES` of them through the general parser, so that no file, however
    made, costs more than a bounded time.

    A file laid out as this version writes it, intact, is read in one pass
    (:func:`_decode_as_written`); any other goes through the reader of any file, table by
    table, which gives the same result for the first kind (``tests/peerstore/test_fuzz.py``
    holds them equal on files edited at random).
    """
    decoded = _decode_as_written(data, realm, version, entry_format)
    if decoded is not None:
        return decoded
    return _decode_any(data, realm=realm, version=version, entry_format=entry_format)


def _decode_as_written(
    data: bytes, realm: str, version: str | None, entry_format: TableFormat[Any]
) -> Decoded | None:
    """:func:`decode` of a file laid out exactly as :func:`encode` writes it, intact; None for
    any other file, which only :func:`_decode_any` reads.

    Only what cannot hold a problem is accepted: the trailer as written and its digest right,
    UTF-8 throughout, the header (and any head) as written, a header that passes every check,
    and then every table as written, one after the other, as many as the trailer counts.
    """
    body, count = _intact_body(data)
    if body is None or count > MAX_TABLES:
        return None
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return None
    first = text.find("\n[[peers]]\n") + 1  # 0: no entry
    header = _header_as_written(text[: first or len(text)])
    if header is None:
        return None
    problems = _Problems()
    fields = {f.name: getattr(header, f.name) for f in HEADER.fields}
    realm_known, saved_at = _check_header(fields, realm, version, problems)
    offline = _pairs(header.offline, problems)
    if problems.result() or not realm_known:
        return None
    entries = entry_format.read_run(text, first, len(text)) if first else []
    if entries is None or len(entries) != count:
        return None
    if header.schema == 1 and entry_format is ENTRY:
        entries = list(map(migrate_v1, entries))
    return Decoded(
        entries=tuple(entries),
        saved_at=saved_at,
        schema=header.schema,
        offline=offline,
        version=file_version(fields),
    )


def _header_as_written(text: str) -> Header | None:
    """The header of a file laid out as :func:`encode` writes it (``text`` ends with the blank
    line before the first table), with or without a head; None for any other."""
    cut = text.find("\n#") + 1
    if not cut:
        return HEADER.read_as_written(text)
    if _read_head_block(text, cut) is None:
        return None
    return HEADER.read_as_written(text[:cut] + "\n")


def _decode_any(
    data: bytes,
    *,
    realm: str,
    version: str | None = None,
    entry_format: TableFormat[Any] = ENTRY,
) -> Decoded:
    """:func:`decode` of any file, intact or damaged, however laid out: table by table."""
    problems = _Problems()
    body, expected_count = _split_trailer(data, problems)
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        problems.add(f"the file is not valid UTF-8 ({exc.reason} at byte {exc.start})")
        text = body.decode(errors="replace")
    if expected_count is None:
        text = _whole_entries_of_torn(text, problems)
    starts = [m.start() for m in itertools.islice(_PEERS_LINE.finditer(text), MAX_TABLES + 1)]
    if len(starts) > MAX_TABLES:
        problems.add(f"more than {MAX_TABLES} tables; the rest are not read")
        text = text[: starts.pop()]
    header = _read_header(text[: starts[0] if starts else len(text)], problems)
    realm_known, saved_at = _check_header(header, realm, version, problems)
    if not realm_known:
        return Decoded(entries=(), problems=problems.result())
    reader = _EntryReader(entry_format, problems)
    inline = header.get("peers", [])
    if isinstance(inline, list):
        for raw in inline:
            reader.structure(raw)
    else:
        problems.add(f"peers: expected an array of tables, got {type(inline).__name__}")
    for start, end in itertools.pairwise([*starts, len(text)]):
        reader.read_table(text, start, end)
    if expected_count is not None and expected_count != reader.tables:
        problems.add(f"[integrity] counts {expected_count} entries, the file holds {reader.tables}")
    schema = header.get("schema")
    entries = tuple(reader.entries)
    if schema == 1 and entry_format is ENTRY:
        entries = tuple(map(migrate_v1, entries))
    return Decoded(
        entries=entries,
        problems=problems.result(),
        saved_at=saved_at,
        schema=schema if type(schema) is int else None,
        offline=_pairs(header.get("offline", ()), problems),
        version=file_version(header),  # a string: checked by _check_header
    )


def file_version(header: Mapping[str, Any]) -> Any:
    """The realm version a file's header gives: the ``version`` it names, else TheNodes'
    default (:data:`~thenodes_naming.DEFAULT_REALM_VERSION`). A file that names none, as
    schema 1 and a ``peerstore`` before it wrote the version did, is of that version: a node of
    another version takes it for another version's file."""
    named = header.get("version")
    return DEFAULT_REALM_VERSION if named is None else named


def header_of(data: bytes) -> dict[str, Any]:
    """The keys of a plain file's header, read as :func:`decode` reads them, without reading an
    entry or checking anything: what names the file's schema, realm and version, for a reader
    that must learn the realm before decoding (``peerstore --file``). Empty when the header
    cannot be read.

    The header is the text above the first ``[[peers]]`` line, and above the trailer; in a file
    without a trailer (torn), its whole lines only, as :func:`decode` takes them.
    """
    mark = data.rfind(_TRAILER_MARK)
    body = data if mark < 0 else data[: mark + 1]
    first = _PEERS_LINE_BYTES.search(body)
    head = body if first is None else body[: first.start()]
    if mark < 0:
        head = head[: head.rfind(b"\n") + 1]
    return _read_header(head.decode(errors="replace"), _Problems())


def migrate_v1(entry: PeerEntry) -> PeerEntry:
    """A schema-1 entry as schema 2 holds it.

    Schema 1 recorded every handshake as Connected, inbound or outbound alike. An outbound
    handshake set ``last_attempt`` and ``last_connected`` to the same time; an inbound one set
    only ``last_connected``, and a failed dial only ``last_attempt``. So only an entry whose
    two times are equal shows an outbound success as its last word and stays proven; any other
    Connected entry (connected inbound since, perhaps after a dial that failed) becomes a
    claim.
    """
    if entry.source is not Source.CONNECTED:
        return entry
    if entry.last_connected is not None and entry.last_connected == entry.last_attempt:
        return entry
    return entry.replace(source=Source.CLAIMED)


def _pairs(value: object, problems: _Problems) -> tuple[tuple[int, int], ...]:
    """The stopped intervals of a header's ``offline`` array; anything malformed is a problem."""
    if not isinstance(value, list | tuple) or len(value) % 2:
        problems.add(f"offline: expected an even number of times, got {show(value)}")
        return ()
    if not all(type(t) is int and 0 <= t <= INT_MAX for t in value):
        problems.add(f"offline: expected Unix seconds, got {show(value)}")
        return ()
    pairs = tuple(zip(value[::2], value[1::2], strict=True))
    if any(a >= b for a, b in pairs):
        problems.add(f"offline: each interval must end after it starts, got {show(value)}")
        return ()
    return pairs


class _EntryReader:
    """Reads ``[[peers]]`` tables one by one, each through the exact pattern or the converter."""

    def __init__(self, entry_format: TableFormat[Any], problems: _Problems) -> None:
        self.format = entry_format
        self.problems = problems
        self.entries: list[Any] = []
        self.tables = 0
        self.slow = 0
        """Tables read through the general parser."""

    def read_table(self, text: str, start: int, end: int) -> None:
        entry = self.format.read_as_written(text, start, end)
        if entry is not None:
            self.tables += 1
            self.entries.append(entry)
            return
        self.slow += 1
        if self.slow > MAX_SLOW_TABLES:
            self.tables += 1
            if self.slow == MAX_SLOW_TABLES + 1:
                self.problems.add(
                    f"more than {MAX_SLOW_TABLES} tables not laid out as written; the rest are "
                    "not read"
                )
            return
        try:
            table = _parse_toml(text[start:end])
        except _TomlError as exc:
            self.tables += 1
            self.problems.add(f"peers[{self.tables - 1}] {exc}; dropped")
            return
        extra = sorted(set(table) - {"peers"})
        if extra:
            self.problems.add(f"unknown keys: {', '.join(show(key) for key in extra)}")
        peers = table.get("peers", [])
        for raw in peers if isinstance(peers, list) else [peers]:
            self.structure(raw)

    def structure(self, raw: object) -> None:
        """One table through the converter, which decides."""
        self.tables += 1
        try:
            self.entries.append(converter.structure(raw, self.format.cls))
        except Exception as exc:  # any failure to structure is a bad entry
            if self.problems.full:
                self.problems.count()  # describing costs far more than checking: only count
            else:
                self.problems.extend(describe_error(exc, f"peers[{self.tables - 1}]"))


def _whole_entries_of_torn(text: str, problems: _Problems) -> str:
    """The part of a torn file that can be trusted: whole lines, and no last entry cut short."""
    text = text[: text.rfind("\n") + 1]
    last = max((m.start() for m in _PEERS_LINE.finditer(text)), default=None)
    if last is not None and not text.endswith("\n\n"):
        # The writer ends every entry with a blank line; without it the last one may be cut
        # short. Drop it before parsing, so a cut inside it cannot cost a complete entry.
        problems.add("the last entry may be cut short; dropped")
        return text[:last]
    return text


def _read_header(text: str, problems: _Problems) -> dict[str, Any]:
    """The header's keys: as written, or through ``tomllib``; an unreadable header is empty."""
    header = HEADER.read_as_written(text)
    if header is not None:
        return {f.name: getattr(header, f.name) for f in HEADER.fields}
    try:
        return _parse_toml(text)
    except _TomlError as exc:
        problems.add(f"the header {exc}")
        return {}


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


_TRAILER = re.compile(r'\[integrity\]\nentries = ([0-9]{1,18})\nsha256 = "([0-9a-f]{64})"\n?')
_TRAILER_AS_WRITTEN = re.compile(
    rb'\[integrity\]\nentries = (0|[1-9][0-9]{0,17})\nsha256 = "([0-9a-f]{64})"\n'
)


def _intact_body(data: bytes) -> tuple[bytes | None, int]:
    """The body of a file whose trailer is as written and whose digest matches, and the
    number of entries the trailer counts; (None, 0) for any other file."""
    mark = data.rfind(_TRAILER_MARK)
    match = _TRAILER_AS_WRITTEN.fullmatch(data, mark + 1) if mark >= 0 else None
    if match is None:
        return None, 0
    body = data[: mark + 1]
    if hashlib.sha256(body).hexdigest() != match.group(2).decode():
        return None, 0
    return body, int(match.group(1))


def _split_trailer(data: bytes, problems: _Problems) -> tuple[bytes, int | None]:
    """Split off and check the integrity trailer; return the body and the entry count it gives."""
    mark = data.rfind(_TRAILER_MARK)
    if mark < 0:
        problems.add("no [integrity] trailer: the file is torn")
        return data, None
    body, trailer = data[: mark + 1], data[mark + 1 :]
    try:
        trailer_text = trailer.decode()
        match = _TRAILER.fullmatch(trailer_text)
        if match is not None:
            count, digest = int(match.group(1)), match.group(2)
        else:
            integrity = _parse_toml(trailer_text)["integrity"]
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


def _check_header(
    header: Mapping[str, Any], realm: str, version: str | None, problems: _Problems
) -> tuple[bool, int | None]:
    """Check schema, realm, version and saved_at; raise for a newer schema or another realm.

    Return whether the file is known to be of ``realm``, and when it was saved.
    """
    schema = header.get("schema")
    # A schema beyond TOML's range was never written by any version: damage, not the future.
    if type(schema) is int and NEWEST_SCHEMA < schema <= INT_MAX:
        raise NewerSchemaError(
            f"schema {schema} is newer than the newest this version reads ({NEWEST_SCHEMA})",
            schema=schema,
        )
    if type(schema) is not int or schema not in READS:
        problems.add(f"schema: expected one of {sorted(READS)}, got {show(schema)}")
    found = header.get("realm")
    if isinstance(found, str) and found != realm:
        raise RealmMismatchError(
            f"the file holds realm {show(found)}, not {realm!r}", found=found, expected=realm
        )
    if not isinstance(found, str):
        problems.add(
            f"realm: expected a string, got {show(found)}; "
            "no entry is salvaged from a file of unknown realm"
        )
        return False, None
    found_version = file_version(header)
    if not isinstance(found_version, str):
        problems.add(
            f"version: expected a string, got {show(found_version)}; "
            "no entry is salvaged from a file of unknown realm version"
        )
        return False, None
    if version is not None and found_version != version:
        named = header.get("version") is not None
        raise RealmMismatchError(
            f"the file holds version {show(found_version)}"
            + ("" if named else " (it names none: TheNodes' default)")
            + f" of realm {realm!r}, not {version!r}",
            found=f"{found} {found_version}",
            expected=f"{realm} {version}",
        )
    unknown = sorted(set(header) - {*(f.name for f in HEADER.fields), "peers"})
    if unknown:
        problems.add(f"unknown keys: {', '.join(show(key) for key in unknown)}")
    saved_at = header.get("saved_at")
    if type(saved_at) is not int or not 0 <= saved_at <= INT_MAX:
        problems.add(
            f"saved_at: expected an integer of 0 to {INT_MAX} (Unix seconds), got {show(saved_at)}"
        )
        return True, None
    return True, saved_at
