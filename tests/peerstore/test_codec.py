"""The peer file's text: what is written, and what is read back from intact and damaged files."""

from __future__ import annotations

import hashlib
import linecache
import re
import string
import tomllib
import traceback
from unittest import mock

import attrs
import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.books import addr_key, full_entry, storable
from thenodes_peerstore import codec
from thenodes_peerstore.codec import SCHEMA, TableFormat, decode, encode, toml_string
from thenodes_peerstore.convert import converter
from thenodes_peerstore.errors import NewerSchemaError, RealmMismatchError
from thenodes_peerstore.files import REALM_CODE_RE
from thenodes_peerstore.model import (
    MAX_CAPABILITIES,
    PeerEntry,
    Source,
    field_pattern,
)

SAVED_AT = 1_763_700_000

NODE_ID_CHARS = string.ascii_letters + string.digits + "._-"
CAPABILITY_CHARS = NODE_ID_CHARS + ":/"
PEERS_LINE = re.compile(rb"^\[\[peers\]\]$", re.MULTILINE)


addrs = st.builds(
    addr_key,
    st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).filter(storable),
    st.integers(min_value=1, max_value=65535),
)
times = st.integers(min_value=0, max_value=2**40)
optional_times = st.none() | times
node_ids = st.text(NODE_ID_CHARS, min_size=1, max_size=128)
capabilities = st.lists(
    st.text(CAPABILITY_CHARS, min_size=1, max_size=64), unique=True, max_size=MAX_CAPABILITIES
).map(tuple)
entries_st = st.builds(
    PeerEntry,
    addr=addrs,
    source=st.sampled_from(Source),
    first_seen=times,
    last_seen=times,
    last_connected=optional_times,
    last_attempt=optional_times,
    failures=st.integers(min_value=0, max_value=10_000),
    node_id=st.none() | node_ids,
    capabilities=capabilities,
)
realms = st.from_regex(REALM_CODE_RE, fullmatch=True)


def gossip(n: int) -> list[PeerEntry]:
    """Short entries, the kind a node learns by the hundred."""
    return [
        PeerEntry(
            addr=f"10.0.0.{i}:7447",
            source=Source.GOSSIP,
            first_seen=SAVED_AT - 100,
            last_seen=SAVED_AT - i,
        )
        for i in range(1, n + 1)
    ]


def full(n: int) -> list[PeerEntry]:
    """Entries with every optional field set, IPv6 included, long capability lists."""
    capabilities = tuple(f"capability-{c:02d}" for c in range(12))
    return [full_entry(i, SAVED_AT, capabilities) for i in range(1, n + 1)]


def seal(body: str) -> bytes:
    """A hand-written file body followed by a correct integrity trailer."""
    raw = body.encode()
    count = len(PEERS_LINE.findall(raw))
    digest = hashlib.sha256(raw).hexdigest()
    return raw + f'[integrity]\nentries = {count}\nsha256 = "{digest}"\n'.encode()


def entry_ends(data: bytes) -> list[int]:
    """Where each entry's table ends (the next ``[[peers]]`` line or the trailer)."""
    starts = [m.start() for m in PEERS_LINE.finditer(data)]
    trailer = data.rindex(b"\n[integrity]\n") + 1
    return [*starts[1:], trailer]


# -- round trip -------------------------------------------------------------------------------


@settings(max_examples=100)
@given(realm=realms, saved_at=times, entries=st.lists(entries_st, max_size=12))
def test_every_field_of_every_entry_survives_encode_and_decode(
    realm: str, saved_at: int, entries: list[PeerEntry]
) -> None:
    decoded = decode(encode(realm, saved_at, entries), realm=realm)
    assert decoded.problems == ()
    assert decoded.intact
    assert decoded.entries == tuple(entries)
    assert decoded.saved_at == saved_at


@settings(max_examples=100)
@given(entries=st.lists(entries_st, max_size=12))
def test_each_entry_is_written_exactly_as_tomli_w_writes_its_table(
    entries: list[PeerEntry],
) -> None:
    """The encoder writes the fixed schema by hand for speed; the bytes must not change."""
    header = tomli_w.dumps({"schema": SCHEMA, "realm": "example", "saved_at": SAVED_AT})
    tables = "".join(f"\n[[peers]]\n{tomli_w.dumps(converter.unstructure(e))}" for e in entries)
    body = (header + tables).encode() + b"\n"
    digest = hashlib.sha256(body).hexdigest()
    trailer = tomli_w.dumps({"integrity": {"entries": len(entries), "sha256": digest}})
    assert encode("example", SAVED_AT, entries) == body + trailer.encode()


@given(value=st.text())
def test_any_string_the_encoder_writes_reads_back_as_itself(value: str) -> None:
    assert tomllib.loads(f"v = {toml_string(value)}\n")["v"] == value


def test_a_file_has_the_documented_header_one_peers_table_per_entry_and_a_trailer() -> None:
    entries = [*gossip(3), *full(2)]
    data = encode("example", SAVED_AT, entries)
    document = tomllib.loads(data.decode())

    assert document["schema"] == SCHEMA == 2
    assert document["realm"] == "example"
    assert document["saved_at"] == SAVED_AT
    assert len(PEERS_LINE.findall(data)) == len(entries)
    assert document["integrity"]["entries"] == len(entries)
    assert data.decode().startswith('schema = 2\nrealm = "example"\n')


@pytest.mark.parametrize("n", [1, 2, 5])
def test_short_entries_are_written_as_peers_tables_too(n: int) -> None:
    """Whatever the entries look like, each is its own ``[[peers]]`` table, so a file cut at an
    entry boundary can be salvaged."""
    data = encode("example", SAVED_AT, gossip(n))
    assert len(PEERS_LINE.findall(data)) == n


def test_the_digest_covers_every_byte_above_the_integrity_line() -> None:
    data = encode("example", SAVED_AT, full(2))
    body, _, trailer = data.partition(b"[integrity]\n")
    integrity = tomllib.loads("[integrity]\n" + trailer.decode())["integrity"]
    assert integrity["sha256"] == hashlib.sha256(body).hexdigest()


def test_optional_fields_are_omitted_never_null() -> None:
    data = encode("example", SAVED_AT, gossip(1))
    (peer,) = tomllib.loads(data.decode())["peers"]
    assert peer == {
        "addr": "10.0.0.1:7447",
        "source": "Gossip",
        "first_seen": SAVED_AT - 100,
        "last_seen": SAVED_AT - 1,
    }
    assert b"null" not in data
    assert b"None" not in data


def test_an_empty_store_makes_a_valid_intact_file() -> None:
    decoded = decode(encode("example", SAVED_AT, []), realm="example")
    assert decoded.intact
    assert decoded.entries == ()


# -- torn files -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [gossip, full], ids=["short", "full"])
@pytest.mark.parametrize("kept", [0, 1, 2, 3])
def test_a_file_cut_right_before_a_peers_line_yields_exactly_its_complete_entries(
    make, kept: int
) -> None:
    entries = make(4)
    data = encode("example", SAVED_AT, entries)
    cut = [m.start() for m in PEERS_LINE.finditer(data)][kept]

    decoded = decode(data[:cut], realm="example")

    assert not decoded.intact
    assert decoded.entries == tuple(entries[:kept])


@pytest.mark.parametrize("make", [gossip, full], ids=["short", "full"])
def test_a_file_cut_right_before_its_trailer_yields_every_entry_but_is_not_intact(make) -> None:
    entries = make(3)
    data = encode("example", SAVED_AT, entries)
    decoded = decode(data[: data.index(b"[integrity]")], realm="example")
    assert not decoded.intact
    assert decoded.entries == tuple(entries)


@pytest.mark.parametrize(
    "entries",
    [gossip(4), full(3), [full(1)[0], *gossip(2), full(2)[1]]],
    ids=["short", "full", "mixed"],
)
def test_a_file_cut_at_any_byte_yields_exactly_the_entries_written_in_full_before_it(
    entries: list[PeerEntry],
) -> None:
    data = encode("example", SAVED_AT, entries)
    ends = entry_ends(data)
    for cut in range(len(data)):  # the final newline too
        decoded = decode(data[:cut], realm="example")
        complete = sum(end <= cut for end in ends)
        assert not decoded.intact, cut
        assert decoded.entries == tuple(entries[:complete]), cut


# Entries of every shape (short, long, multi-line arrays), from few values so failures shrink fast.
shaped_entries = st.builds(
    PeerEntry,
    addr=st.sampled_from(["10.0.0.1:7447", "[2001:db8::1]:7447"]),
    source=st.sampled_from(Source),
    first_seen=st.just(SAVED_AT - 100),
    last_seen=st.just(SAVED_AT),
    last_connected=st.sampled_from([None, SAVED_AT]),
    last_attempt=st.sampled_from([None, SAVED_AT]),
    failures=st.sampled_from([0, 7]),
    node_id=st.sampled_from([None, "node-b", "n" * 128]),
    capabilities=st.lists(
        st.sampled_from(["relay", "dht/v2", "c" * 64]), unique=True, max_size=3
    ).map(tuple),
)


@settings(max_examples=100)
@given(entries=st.lists(shaped_entries, min_size=1, max_size=6), data=st.data())
def test_a_file_cut_anywhere_yields_exactly_the_entries_written_in_full_before_the_cut(
    entries: list[PeerEntry], data: st.DataObject
) -> None:
    file = encode("example", SAVED_AT, entries)
    cut = data.draw(st.integers(min_value=0, max_value=len(file) - 1), label="cut")
    complete = sum(end <= cut for end in entry_ends(file))

    decoded = decode(file[:cut], realm="example")

    assert not decoded.intact
    assert decoded.entries == tuple(entries[:complete])


# -- edited and damaged files -------------------------------------------------------------------


def test_an_edited_file_is_flagged_and_its_valid_entries_are_kept() -> None:
    data = encode("example", SAVED_AT, gossip(3))
    edited = data.replace(b'addr = "10.0.0.2:7447"', b'addr = "10.0.0.9:7447"')

    decoded = decode(edited, realm="example")

    assert not decoded.intact
    assert any("digest" in p for p in decoded.problems)
    assert [e.addr for e in decoded.entries] == ["10.0.0.1:7447", "10.0.0.9:7447", "10.0.0.3:7447"]


def test_an_invalid_entry_is_dropped_with_a_problem_naming_it() -> None:
    data = encode("example", SAVED_AT, gossip(3))
    edited = data.replace(b'addr = "10.0.0.2:7447"', b'addr = "peer.example.com:7447"')

    decoded = decode(edited, realm="example")

    assert [e.addr for e in decoded.entries] == ["10.0.0.1:7447", "10.0.0.3:7447"]
    assert any("peers[1]" in p and "hostnames" in p for p in decoded.problems)


GOOD_FIELDS = {"addr": '"10.0.0.2:7447"', "source": '"Gossip"', "first_seen": "1", "last_seen": "2"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("first_seen", '"1763600000"'),
        ("last_seen", "2.5"),
        ("failures", "true"),
        ("failures", "-1"),
        ("source", '"Friend"'),
        ("node_id", '"has spaces"'),
        ("capabilities", '"relay"'),
        ("capabilities", "{ relay = true }"),
        ("capabilities", '["relay", 7]'),
        ("colour", '"blue"'),
        ("addr", '"[fe80::1%eth0]:7447"'),
        ("addr", "7447"),
    ],
)
def test_an_entry_with_a_bad_field_is_dropped_even_from_a_sealed_file(key: str, value: str) -> None:
    """Types are strict and unknown keys refused, even when the integrity trailer matches."""
    bad = "".join(f"{k} = {v}\n" for k, v in (GOOD_FIELDS | {key: value}).items())
    body = (
        f'schema = 1\nrealm = "example"\nsaved_at = {SAVED_AT}\n\n'
        '[[peers]]\naddr = "10.0.0.1:7447"\nsource = "Gossip"\nfirst_seen = 1\nlast_seen = 2\n\n'
        f"[[peers]]\n{bad}\n"
    )

    decoded = decode(seal(body), realm="example")

    assert [e.addr for e in decoded.entries] == ["10.0.0.1:7447"]
    assert any("peers[1]" in p and key in p for p in decoded.problems)


def test_a_hand_written_address_is_read_in_canonical_form() -> None:
    body = (
        f'schema = 1\nrealm = "example"\nsaved_at = {SAVED_AT}\n\n'
        '[[peers]]\naddr = "[2001:DB8:0::1]:07447"\nsource = "Bootstrap"\n'
        "first_seen = 1\nlast_seen = 2\n\n"
    )
    decoded = decode(seal(body), realm="example")
    assert decoded.intact
    assert [e.addr for e in decoded.entries] == ["[2001:db8::1]:7447"]


def test_a_file_missing_only_its_final_newline_is_not_intact_but_keeps_every_entry() -> None:
    """The digest covers the body, not the trailer: the trailer's own last byte is checked by
    its form, so even a cut that takes only the final newline is seen."""
    entries = full(2)
    data = encode("example", SAVED_AT, entries)

    decoded = decode(data[:-1], realm="example")

    assert not decoded.intact
    assert any("cut short" in p for p in decoded.problems)
    assert decoded.entries == tuple(entries)


def test_a_trailer_that_miscounts_the_entries_is_a_problem() -> None:
    data = encode("example", SAVED_AT, gossip(2))
    body, _, _ = data.partition(b"[integrity]\n")
    digest = hashlib.sha256(body).hexdigest()
    recounted = body + f'[integrity]\nentries = 3\nsha256 = "{digest}"\n'.encode()

    decoded = decode(recounted, realm="example")

    assert not decoded.intact
    assert any("counts 3" in p for p in decoded.problems)
    assert len(decoded.entries) == 2


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff\xfe\x00garbage\x00",
        bytes(range(256)) * 4,
        b"\xff" * 100,
        b"this is = not [TOML at all",
        b"<html><body>502 Bad Gateway</body></html>\n",
        b'schema = 1\nrealm = "example"\npeers = "nope"\n',
    ],
    ids=["empty", "garbage", "all-bytes", "non-utf8", "not-toml", "html", "peers-not-a-table"],
)
def test_a_file_of_junk_decodes_to_no_entries_and_a_list_of_problems(data: bytes) -> None:
    decoded = decode(data, realm="example")
    assert not decoded.intact
    assert decoded.entries == ()


def test_a_non_utf8_byte_in_one_entry_costs_only_that_entry() -> None:
    data = encode("example", SAVED_AT, full(3))
    damaged = data.replace(b'node_id = "node-2"', b'node_id = "node-\xff"')

    decoded = decode(damaged, realm="example")

    assert not decoded.intact
    assert any("UTF-8" in p for p in decoded.problems)
    assert [e.node_id for e in decoded.entries] == ["node-1", "node-3"]


def test_a_file_with_garbage_between_entries_keeps_the_entries_that_parse() -> None:
    data = encode("example", SAVED_AT, full(3))
    second = [m.start() for m in PEERS_LINE.finditer(data)][1]
    damaged = data[:second] + b"%%% not toml %%%\n\n" + data[second:]

    decoded = decode(damaged, realm="example")

    assert not decoded.intact
    assert [e.node_id for e in decoded.entries] == ["node-2", "node-3"]


def test_a_file_without_a_readable_realm_yields_no_entries() -> None:
    """No entry is salvaged unless the file is known to be of this realm."""
    body = f"schema = 1\nsaved_at = {SAVED_AT}\n\n"
    body += encode("example", SAVED_AT, gossip(2)).decode().partition("\n\n")[2].split("[integ")[0]
    decoded = decode(seal(body), realm="example")
    assert decoded.entries == ()
    assert any("realm" in p for p in decoded.problems)


# -- other versions and other realms ------------------------------------------------------------


@pytest.mark.parametrize("sealed", [True, False])
def test_a_file_of_a_newer_schema_is_refused_as_such(sealed: bool) -> None:
    body = f'schema = 4\nrealm = "example"\nsaved_at = {SAVED_AT}\nfuture = "stuff"\n\n'
    with pytest.raises(NewerSchemaError) as caught:
        decode(seal(body) if sealed else body.encode(), realm="example")
    assert caught.value.schema == 4


def test_another_realms_file_is_refused_naming_both_realms() -> None:
    data = encode("other", SAVED_AT, gossip(2))
    with pytest.raises(RealmMismatchError) as caught:
        decode(data, realm="example")
    assert "'other'" in str(caught.value)
    assert "'example'" in str(caught.value)


def test_a_damaged_file_of_another_realm_is_still_refused() -> None:
    data = encode("other", SAVED_AT, full(3))
    with pytest.raises(RealmMismatchError):
        decode(data[: len(data) // 2], realm="example")


@settings(max_examples=50)
@given(realm=realms, saved_at=times, entries=st.lists(entries_st, max_size=12))
def test_a_file_this_version_wrote_is_read_without_the_general_parser_or_converter(
    realm: str, saved_at: int, entries: list[PeerEntry]
) -> None:
    """Loading is on every start's path: a file as written takes the quick readers, which
    ``test_fuzz.py`` holds to reading exactly as tomllib and the converter do."""
    data = encode(realm, saved_at, entries)
    with (
        mock.patch.object(codec.tomllib, "loads", side_effect=AssertionError("tomllib")),
        mock.patch.object(
            codec, "converter", mock.Mock(structure=mock.Mock(side_effect=Exception))
        ),
    ):
        decoded = decode(data, realm=realm)
    assert decoded.intact
    assert decoded.entries == tuple(entries)


# -- the schema is the model --------------------------------------------------------------------


NOTE = r"[a-z]{1,16}"


@attrs.frozen
class NotedEntry(PeerEntry):
    """An entry of a future version: one more optional field, declared as the model declares its
    own, and nothing else."""

    note: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.matches_re(NOTE)),
        metadata=field_pattern(NOTE),
    )


NOTED = TableFormat(NotedEntry, "[[peers]]")
NOTED_ENTRIES = [
    NotedEntry(addr="203.0.113.1:7447", source=Source.CONNECTED, first_seen=1, last_seen=2),
    NotedEntry(
        addr="203.0.113.2:7447", source=Source.GOSSIP, first_seen=3, last_seen=4, note="hello"
    ),
    NotedEntry(addr="203.0.113.3:7447", source=Source.BOOTSTRAP, first_seen=5, last_seen=6),
]


def test_an_optional_field_added_to_the_model_is_written_as_tomli_w_writes_it() -> None:
    data = encode("example", SAVED_AT, NOTED_ENTRIES, entry_format=NOTED)

    assert data.count(b"note = ") == 1
    for entry, table in zip(NOTED_ENTRIES, data.decode().split("\n[[peers]]\n")[1:], strict=True):
        fields = converter.unstructure(entry)
        assert table.split("\n\n")[0].rstrip("\n") + "\n" == tomli_w.dumps(fields)


def test_an_optional_field_added_to_the_model_is_read_by_the_exact_pattern() -> None:
    data = encode("example", SAVED_AT, NOTED_ENTRIES, entry_format=NOTED)

    with mock.patch.object(
        codec, "converter", mock.Mock(structure=mock.Mock(side_effect=Exception))
    ):
        decoded = decode(data, realm="example", entry_format=NOTED)

    assert decoded.intact
    assert decoded.entries == tuple(NOTED_ENTRIES)


def test_an_optional_field_added_to_the_model_is_salvaged_from_a_torn_or_edited_file() -> None:
    data = encode("example", SAVED_AT, NOTED_ENTRIES, entry_format=NOTED)
    torn = data[: data.index(b"[[peers]]", data.index(b"hello"))]
    edited = data.replace(b'note = "hello"', b"note = 'hello'")  # not as written: the converter

    assert decode(torn, realm="example", entry_format=NOTED).entries == tuple(NOTED_ENTRIES[:2])
    decoded = decode(edited, realm="example", entry_format=NOTED)
    assert not decoded.intact
    assert decoded.entries == tuple(NOTED_ENTRIES)
    bad = decode(data.replace(b'"hello"', b'"Hello!"'), realm="example", entry_format=NOTED)
    assert [e.addr for e in bad.entries] == ["203.0.113.1:7447", "203.0.113.3:7447"]
    assert any("note" in p for p in bad.problems)


def test_a_traceback_through_the_generated_writer_and_reader_shows_their_source() -> None:
    with pytest.raises(AttributeError) as written:
        codec.ENTRY.write(object())  # type: ignore[arg-type]
    frame = traceback.extract_tb(written.tb)[-1]
    assert frame.filename.startswith("<thenodes_peerstore.codec generated writer for PeerEntry")
    assert "obj." in (frame.line or "")
    assert linecache.getline(frame.filename, 1) == "def write(obj):\n"

    groups: list[str | None] = [None] * len(codec.ENTRY.fields)
    groups[:3] = ["203.0.113.1:7447", "Gossip", "not a time"]
    with pytest.raises(ValueError, match="not a time") as read:
        codec.ENTRY._build(tuple(groups))
    frame = traceback.extract_tb(read.tb)[-1]
    assert frame.filename.startswith("<thenodes_peerstore.codec generated reader for PeerEntry")
    assert "int(" in (frame.line or "")
    assert linecache.getline(frame.filename, 1) == "def build(groups):\n"
