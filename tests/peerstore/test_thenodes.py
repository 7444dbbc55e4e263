"""TheNodes' peers.json records, mapped to entries and back; what is wrong is a package error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thenodes_peerstore.errors import PeerStoreError, TheNodesFileError, TheNodesRecordError
from thenodes_peerstore.model import PeerEntry, Source
from thenodes_peerstore.thenodes import (
    TheNodesSource,
    entries_from_thenodes,
    parse_thenodes_record,
    read_thenodes_file,
    thenodes_record,
)

NOW = 1_763_700_000


def test_records_become_entries_and_unusable_ones_are_named() -> None:
    raw = [
        {"addr": "10.0.0.1:7447", "source": "Handshake", "failures": 0, "last_success_epoch": 5},
        {"addr": "10.0.0.2:7447", "source": "Bootstrap", "failures": 1, "node_id": "bad id!"},
        {"addr": "host:1", "source": "Gossip", "failures": 0},
        7,
    ]
    imported, unusable = entries_from_thenodes(raw, NOW)
    assert [(i.entry.addr, i.entry.source) for i in imported] == [
        ("10.0.0.1:7447", Source.CONNECTED),
        ("10.0.0.2:7447", Source.BOOTSTRAP),
    ]
    assert imported[1].entry.last_seen == NOW
    assert imported[1].notes == ("node_id 'bad id!' left out: not 1 to 128 of [A-Za-z0-9._-]",)
    assert unusable[0].startswith("records[2]: addr 'host:1'")
    assert unusable[1] == "records[3]: expected an object, got 7"


def test_a_record_that_is_not_theirs_is_a_package_error() -> None:
    with pytest.raises(TheNodesRecordError, match=r"records\[0\]") as raised:
        parse_thenodes_record({"addr": "10.0.0.1:7447", "source": "Nope", "failures": 0}, 0)
    assert isinstance(raised.value, PeerStoreError)


def test_a_file_that_is_not_a_peers_json_is_a_package_error(tmp_path: Path) -> None:
    path = tmp_path / "peers.json"
    path.write_text(json.dumps({"peers": []}))
    with pytest.raises(TheNodesFileError, match="expected a JSON array of peer records"):
        read_thenodes_file(path)
    with pytest.raises(TheNodesFileError, match="No such file"):
        read_thenodes_file(tmp_path / "missing.json")


def test_a_proven_entry_is_exported_as_a_handshake_record() -> None:
    entry = PeerEntry(
        addr="10.0.0.1:7447",
        source=Source.CONNECTED,
        first_seen=NOW - 9,
        last_seen=NOW,
        last_connected=NOW - 1,
        node_id="node-b",
    )
    assert thenodes_record(entry) == {
        "addr": "10.0.0.1:7447",
        "source": TheNodesSource.HANDSHAKE.value,
        "failures": 0,
        "last_success_epoch": NOW - 1,
        "node_id": "node-b",
    }
