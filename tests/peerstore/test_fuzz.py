"""Damaged, hostile and random peer files: the loader reports problems, it never crashes.

The damage and the properties are in ``tests/support/peerfile_fuzzing.py``, shared with
``benchmarks/fuzz_loader.py``, which runs the same properties on a hundred thousand files and
more. The second half names each way of breaking the decoder that fuzzing found, now a problem
like any other.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import random
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.peerfile_fuzzing import (
    LINES,
    MUTATORS,
    REALM,
    SAVED_AT,
    SEEDS,
    assemble,
    check_decode,
    check_load,
    mutate,
    peer_file_at,
    random_case,
    reseal,
)
from thenodes_peerstore.codec import (
    ENTRY,
    MAX_PROBLEM_CHARS,
    MAX_PROBLEMS,
    decode,
    encode,
    header_of,
)
from thenodes_peerstore.config import PersistenceConfig
from thenodes_peerstore.convert import converter
from thenodes_peerstore.errors import ConfigError, NewerSchemaError, RealmMismatchError
from thenodes_peerstore.files import PeerFile
from thenodes_peerstore.model import PeerEntry, Source
from thenodes_peerstore.persistent import LoadStatus, load_file

damaged_files = st.builds(
    mutate,
    st.integers(min_value=0, max_value=len(SEEDS) - 1),
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(MUTATORS) - 1),
            st.integers(min_value=0, max_value=2**32 - 1),
        ),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
line_files = st.builds(
    assemble,
    st.lists(st.integers(min_value=0, max_value=len(LINES) - 1), max_size=40),
    st.booleans(),
)
fuzz = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- properties --------------------------------------------------------------------------------


@settings(fuzz, max_examples=300)
@given(data=damaged_files)
def test_decoding_a_damaged_file_raises_only_newer_schema_or_other_realm_and_yields_valid_entries(
    data: bytes,
) -> None:
    check_decode(data)


@settings(fuzz, max_examples=150)
@given(data=line_files)
def test_decoding_a_file_of_shuffled_peer_file_lines_never_crashes(data: bytes) -> None:
    check_decode(data)


@settings(fuzz, max_examples=400)
@given(data=st.one_of(damaged_files, line_files))
def test_the_exact_pattern_reads_a_table_as_tomllib_and_the_converter_do_or_leaves_it(
    data: bytes,
) -> None:
    """Every ``[[peers]]`` table of a file, however damaged, is read by the exact pattern into
    what tomllib and the converter make of it, or left to them."""
    text = data.decode(errors="replace")
    starts = [m.start() for m in re.finditer(r"^\[\[peers\]\][ \t]*$", text, re.MULTILINE)]
    for start, end in itertools.pairwise([*starts, len(text)]):
        entry = ENTRY.read_as_written(text, start, end)
        if entry is not None:
            (raw,) = tomllib.loads(text[start:end])["peers"]
            assert entry == converter.structure(raw, PeerEntry)


def _peer_tables(text: str) -> list[object]:
    try:
        peers = tomllib.loads(text).get("peers", [])
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        return []
    return peers if isinstance(peers, list) else []


@settings(fuzz, max_examples=150)
@given(data=st.binary(max_size=3000))
def test_decoding_arbitrary_bytes_never_crashes(data: bytes) -> None:
    check_decode(data)


@settings(fuzz, max_examples=400)
@given(data=st.one_of(damaged_files, line_files, st.binary(max_size=500)))
def test_the_header_read_alone_names_the_realm_the_decoder_reads(data: bytes) -> None:
    """A reader that learns the realm from the header (``peerstore --file``) decodes once, with
    it: the decoder never finds another realm than the header read alone names."""
    named = header_of(data).get("realm")
    with contextlib.suppress(NewerSchemaError):
        decode(data, realm=named if isinstance(named, str) else "")


@pytest.fixture(scope="module")
def open_peer_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerFile]:
    with peer_file_at(tmp_path_factory.mktemp("fuzz")) as peer_file:
        yield peer_file


@settings(fuzz, max_examples=150)
@given(data=st.one_of(damaged_files, line_files, st.binary(max_size=500)))
def test_loading_a_damaged_file_raises_only_store_file_errors_and_sets_a_salvaged_file_aside(
    open_peer_file: PeerFile, data: bytes
) -> None:
    check_load(data, open_peer_file, now=SAVED_AT)


def test_every_mutator_changes_a_valid_file() -> None:
    """No kind of damage is a silent no-op, so every property above is tried on it."""
    for mutator in MUTATORS:
        changed = sum(mutator(random.Random(seed), SEEDS[-1]) != SEEDS[-1] for seed in range(20))
        assert changed >= 10, mutator.__name__


def test_the_damaged_files_reach_every_outcome_of_decoding_and_loading(tmp_path: Path) -> None:
    """The cases are neither all refused nor all salvaged: intact, salvaged and refused files
    each get their share, through the decoder and through the file layer."""
    rng = random.Random(7)
    decoded: collections.Counter[str] = collections.Counter()
    loaded: collections.Counter[str] = collections.Counter()
    with peer_file_at(tmp_path) as peer_file:
        for _ in range(300):
            case = random_case(rng)
            decoded[check_decode(case)] += 1
            loaded[check_load(case, peer_file, now=SAVED_AT)] += 1
    assert decoded == loaded
    assert min(decoded[o] for o in ("intact", "salvaged", "refused")) >= 5, decoded


# -- what fuzzing found -----------------------------------------------------------------------


def body(
    *peers: str, header: str = f'schema = 1\nrealm = "{REALM}"\nsaved_at = {SAVED_AT}\n'
) -> str:
    return header + "".join(f"\n[[peers]]\n{peer}\n" for peer in peers) + "\n"


GOOD = 'addr = "203.0.113.1:7447"\nsource = "Gossip"\nfirst_seen = 1\nlast_seen = 2'
GOOD_TOO = 'addr = "203.0.113.3:7447"\nsource = "Gossip"\nfirst_seen = 1\nlast_seen = 2'
NESTINGS = {
    "arrays": "[" * 10_000 + "]" * 10_000,
    "inline tables": "{ a = " * 10_000 + "1" + " }" * 10_000,
    "both": "[{ a = " * 5_000 + "1" + " }]" * 5_000,
    "never closed": "[" * 10_000,
}


@pytest.mark.parametrize("nesting", NESTINGS.values(), ids=NESTINGS.keys())
def test_a_deeply_nested_file_is_a_problem_not_a_crash(nesting: str) -> None:
    data = reseal(body(GOOD, header=f'schema = 1\nrealm = "{REALM}"\nx = {nesting}\n').encode())

    decoded = decode(data, realm=REALM)

    assert not decoded.intact
    assert decoded.entries == ()  # the realm line is in the header that could not be read
    assert any("nested too deeply" in p for p in decoded.problems)


@pytest.mark.parametrize("nesting", NESTINGS.values(), ids=NESTINGS.keys())
def test_a_deeply_nested_value_in_one_entry_costs_only_that_entry(nesting: str) -> None:
    data = reseal(body(GOOD, f"{GOOD}\ncapabilities = {nesting}", GOOD_TOO).encode())

    decoded = decode(data, realm=REALM)

    assert [e.addr for e in decoded.entries] == ["203.0.113.1:7447", "203.0.113.3:7447"]
    assert any(p.startswith("peers[1]") and "nested too deeply" in p for p in decoded.problems)


def test_a_deeply_nested_trailer_is_an_unreadable_trailer_not_a_crash() -> None:
    data = encode(REALM, SAVED_AT, [])
    data = data.replace(b"[integrity]\n", b"[integrity]\nx = " + b"[" * 10_000 + b"\n")

    decoded = decode(data, realm=REALM)

    assert "the [integrity] trailer is unreadable" in decoded.problems


def test_a_deeply_nested_file_is_set_aside_through_the_file_layer(tmp_path: Path) -> None:
    data = b"x = " + b"[" * 100_000 + b"\n"
    with peer_file_at(tmp_path) as peer_file:
        assert check_load(data, peer_file, now=SAVED_AT) == "salvaged"


@pytest.mark.parametrize("digits", [4_301, 100_000])
def test_an_integer_of_thousands_of_digits_is_a_problem_not_a_crash(digits: int) -> None:
    data = reseal(body(GOOD, f"{GOOD}\nfailures = {'9' * digits}", GOOD_TOO).encode())

    decoded = decode(data, realm=REALM)

    assert [e.addr for e in decoded.entries] == ["203.0.113.1:7447", "203.0.113.3:7447"]
    assert any(p.startswith("peers[1]") and "thousands of digits" in p for p in decoded.problems)


@pytest.mark.parametrize(
    "field", ["first_seen", "last_seen", "last_connected", "last_attempt", "failures"]
)
@pytest.mark.parametrize("value", [2**63, 2**64, 10**30, -(2**63) - 1])
def test_an_integer_beyond_64_bits_in_an_entry_is_refused_naming_the_field(
    field: str, value: int
) -> None:
    """tomllib reads any integer; TOML allows 64 bits, and no such time or count is real."""
    fields = {"addr": '"203.0.113.2:7447"', "source": '"Gossip"', "first_seen": "1"}
    fields |= {"last_seen": "2", field: str(value)}
    entry = "\n".join(f"{k} = {v}" for k, v in fields.items())
    data = reseal(body(GOOD, entry).encode())  # sealed: only validation can refuse it

    decoded = decode(data, realm=REALM)

    assert [e.addr for e in decoded.entries] == ["203.0.113.1:7447"]
    assert any(f"peers[1].{field}" in p and "64-bit range" in p for p in decoded.problems), (
        decoded.problems
    )


def test_the_largest_64_bit_integer_is_still_read() -> None:
    entry = f"{GOOD}\nfailures = {2**63 - 1}"
    decoded = decode(reseal(body(entry).encode()), realm=REALM)
    assert decoded.intact
    assert decoded.entries[0].failures == 2**63 - 1


def test_a_schema_beyond_64_bits_is_damage_not_a_newer_version() -> None:
    data = reseal(
        body(GOOD, header=f'schema = {2**64}\nrealm = "{REALM}"\nsaved_at = 1\n').encode()
    )

    decoded = decode(data, realm=REALM)

    assert not decoded.intact
    assert any(p.startswith("schema:") for p in decoded.problems)


def test_a_newer_schema_within_64_bits_is_still_a_newer_version() -> None:
    data = reseal(body(GOOD, header=f'schema = {2**63 - 1}\nrealm = "{REALM}"\n').encode())
    with pytest.raises(NewerSchemaError):
        decode(data, realm=REALM)


@pytest.mark.parametrize("saved_at", [2**63, -1, -(2**70)])
def test_a_saved_at_out_of_range_is_a_problem(saved_at: int) -> None:
    data = reseal(
        body(GOOD, header=f'schema = 1\nrealm = "{REALM}"\nsaved_at = {saved_at}\n').encode()
    )

    decoded = decode(data, realm=REALM)

    assert not decoded.intact
    assert decoded.saved_at is None
    assert any(p.startswith("saved_at:") for p in decoded.problems)
    assert len(decoded.entries) == 1


def test_a_config_integer_beyond_64_bits_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"max_entries: .*64-bit range"):
        PersistenceConfig.from_mapping({"enabled": True, "max_entries": 2**64})


@pytest.mark.parametrize("key", ["node_id", "addr", "source"])
def test_a_very_long_string_makes_a_short_problem_that_still_names_the_entry(key: str) -> None:
    fields = {"addr": '"203.0.113.2:7447"', "source": '"Gossip"', "first_seen": "1"}
    fields |= {"last_seen": "2", key: '"' + "x" * 300_000 + '"'}
    entry = "\n".join(f"{k} = {v}" for k, v in fields.items())

    decoded = decode(reseal(body(GOOD, entry).encode()), realm=REALM)

    assert [e.addr for e in decoded.entries] == ["203.0.113.1:7447"]
    assert decoded.problems
    assert all(len(p) <= MAX_PROBLEM_CHARS for p in decoded.problems)
    assert any("peers[1]" in p for p in decoded.problems), decoded.problems


def test_thousands_of_bad_entries_make_a_bounded_list_of_problems() -> None:
    bad = 'addr = "peer.example.com:7447"\nsource = "Gossip"\nfirst_seen = 1\nlast_seen = 2'
    data = reseal(body(GOOD, *[bad] * 3_000, GOOD_TOO).encode())

    decoded = decode(data, realm=REALM)

    assert [e.addr for e in decoded.entries] == ["203.0.113.1:7447", "203.0.113.3:7447"]
    assert len(decoded.problems) == MAX_PROBLEMS + 1
    assert decoded.problems[0].endswith("@ peers[1]")
    assert decoded.problems[-1] == f"and {3_000 - MAX_PROBLEMS} more problems"


@pytest.mark.parametrize(
    "shape",
    ["[peers]\naddr = 1", "[peers.x]\naddr = 1", "peers = 1", "peers = [1, 2]", "peers = {}"],
)
def test_peers_that_are_not_an_array_of_tables_are_a_problem_not_a_crash(shape: str) -> None:
    data = reseal(body(header=f'schema = 1\nrealm = "{REALM}"\nsaved_at = 1\n{shape}\n').encode())

    decoded = decode(data, realm=REALM)

    assert not decoded.intact
    assert decoded.entries == ()


def test_another_realm_named_at_length_is_refused_with_a_short_message() -> None:
    data = encode("x" * 300_000, SAVED_AT, [])
    with pytest.raises(RealmMismatchError) as caught:
        decode(data, realm=REALM)
    assert len(str(caught.value)) < 200
    assert caught.value.found == "x" * 300_000


@pytest.mark.parametrize(
    "trailer",
    [
        b'entries = "1"\nsha256 = "00"\n',
        b"entries = " + b"9" * 5_000 + b'\nsha256 = "00"\n',
        b"entries = 0\nsha256 = 7\n",
        b'entries = 0\nsha256 = "00"\nextra = 1\n',
        b"[integrity.x]\n",
        b'entries = 0\nsha256 = "\xff"\n',
        b"entries = [[[[\n",
    ],
    ids=["count-string", "count-digits", "digest-int", "extra-key", "sub-table", "utf8", "toml"],
)
def test_a_trailer_of_unexpected_shape_is_a_problem_not_a_crash(trailer: bytes) -> None:
    good = encode(REALM, SAVED_AT, [PeerEntry.new("203.0.113.1:7447", Source.GOSSIP, 1)])
    data = good[: good.rindex(b"[integrity]\n")] + b"[integrity]\n" + trailer

    decoded = decode(data, realm=REALM)

    assert not decoded.intact
    assert [e.addr for e in decoded.entries] == ["203.0.113.1:7447"]


def test_a_file_missing_its_final_newline_is_set_aside_by_the_file_layer(tmp_path: Path) -> None:
    data = encode(REALM, SAVED_AT, [PeerEntry.new("203.0.113.1:7447", Source.GOSSIP, 1)])
    with peer_file_at(tmp_path) as peer_file:
        peer_file.path.write_bytes(data[:-1])
        outcome = load_file(peer_file, SAVED_AT)
    assert outcome.status is LoadStatus.SALVAGED
    assert len(outcome.entries) == 1
