"""Every writing command is one transaction under the node's own rules: whatever a command is
given or finds in the file, the file it leaves is the one the node's next start keeps, entry
for entry, and ``stats`` says so before the node starts.

One table runs every writing command (``add``, ``remove``, ``import`` in each format, ``seal``,
``prune``, ``rekey``) with inputs each rule must drop or refuse: the node's own address and id,
a time past the TTL of running time, a time in the future, a second entry for one address, more
entries than the cap, more node ids than the size budget holds, another realm.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from tests.support import thenodes_peers
from tests.support.command import Node, Run, write_node
from tests.support.keys import write_key
from tests.support.thenodes_peers import PeerRecord
from thenodes_peerstore import persistent
from thenodes_peerstore.codec import encode
from thenodes_peerstore.model import PeerEntry, Source
from thenodes_peerstore.peerfile import read_snapshot, target_from_host_config
from thenodes_peerstore.persistent import PersistentPeerStore
from thenodes_peerstore.sealing import Sealing, read_key_file

NOW = 1_796_000_000
DAY = 86_400
OWN = "198.51.100.5:7447"  # the node's listen address in write_node's config; its id is node-a
SETTINGS = "max_entries = 6\nttl_secs = 86400\n"
SIZE_BUDGET = 80
"""What a store here may hold in node ids and capabilities: two short node ids per tier."""


def entry(
    addr: str, source: Source = Source.GOSSIP, seen: int = NOW - 4000, node_id: str | None = None
) -> PeerEntry:
    connected = seen if source is Source.CONNECTED else None
    return PeerEntry(
        addr=addr,
        source=source,
        first_seen=seen - 100,
        last_seen=seen,
        last_connected=connected,
        node_id=node_id,
    )


BREAKING = [
    entry(OWN, Source.CONNECTED, node_id="node-x"),  # the node's own address
    entry("192.0.2.11:7447", Source.CONNECTED, node_id="node-a"),  # the node's own id
    entry("45.76.12.34:7447", seen=NOW - 3 * DAY),  # past the TTL of running time
    entry("5.9.20.30:7447", seen=NOW + 3 * DAY),  # in the future
    entry("91.121.5.6:7447"),
    entry("91.121.5.6:7447", seen=NOW - 4100),  # a second entry for one address
    entry("192.0.2.12:7447", Source.CONNECTED, node_id="node-long-id-1"),  # over the budget
    entry("192.0.2.13:7447", Source.CONNECTED, node_id="node-long-id-2"),
    entry("192.0.2.14:7447", Source.CONNECTED, node_id="node-long-id-3"),
    *(entry(f"91.121.6.{i}:7447", seen=NOW - 5000 - i) for i in range(4)),  # over the cap
]
"""Entries the node's next start drops or changes, each for one rule."""
GOOD = [
    entry("192.0.2.10:7447", Source.CONNECTED, node_id="node-c"),
    entry("203.0.113.1:7447", Source.BOOTSTRAP),
]
MUST_GO = {OWN, "192.0.2.11:7447", "45.76.12.34:7447"}
"""Addresses no file a command leaves may hold: the node itself, and one past its TTL."""


@attrs.frozen
class Case:
    """One writing command, the file it starts from, and what it is given."""

    args: tuple[str, ...]
    start: str = "dirty"
    """``dirty`` (GOOD and BREAKING, as an earlier version's command could leave them),
    ``clean`` (GOOD only) or ``none`` (no file)."""
    status: int = 0
    given: Callable[[Path], None] | None = None
    """Writes the file the command reads, in the node's directory."""
    key: bool = False
    """Whether the command seals the file with a new key (``rekey``)."""


def thenodes_file(where: Path) -> None:
    records = [
        PeerRecord(OWN, "Handshake", 0, NOW - 50, "node-x"),
        PeerRecord("192.0.2.20:7447", "Handshake", 0, NOW - 50, "node-a"),
        PeerRecord("192.0.2.21:7447", "Handshake", 0, NOW + 5000, "node-f"),
        PeerRecord("45.76.12.35:7447", "Gossip", 0, NOW - 3 * DAY),
        PeerRecord("192.0.2.10:7447", "Gossip", 0, NOW - 10),
        *(PeerRecord(f"91.121.7.{i}:7447", "Gossip", 0, NOW - 60 - i) for i in range(6)),
    ]
    (where / "given.json").write_text(thenodes_peers.dumps(records))


def export_file(where: Path) -> None:
    document = {
        "realm": "example",
        "version": "1.0",
        "saved_at": NOW - 3600,
        "offline": [],
        "peers": [
            {"addr": e.addr, "source": e.source.label, "first_seen": e.first_seen}
            | {"last_seen": e.last_seen, "node_id": e.node_id}
            for e in BREAKING
        ],
    }
    (where / "given.json").write_text(json.dumps(document))


def peer_file(where: Path) -> None:
    (where / "given.toml").write_bytes(encode("example", NOW - 3600, BREAKING, version="1.0"))


def hand_edit(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b'"203.0.113.1:7447"', b'"203.0.113.2:7447"'))


CASES = {
    "add a proven peer": Case(("add", "192.0.2.50:7447", "--source", "Connected")),
    "add to a new file": Case(("add", "192.0.2.50:7447"), start="none"),
    "add the node's own address": Case(("add", OWN, "--source", "Connected"), "clean", 2),
    "add with the node's own id": Case(
        ("add", "192.0.2.51:7447", "--node-id", "node-a"), "clean", 2
    ),
    "add over the cap": Case(("add", "192.0.2.52:7447", "--source", "Gossip"), "full", 2),
    "remove": Case(("remove", "192.0.2.10:7447")),
    "prune": Case(("prune",)),
    "seal a hand-edited file": Case(("seal",), start="edited"),
    "rekey": Case(("rekey", "--new-key-file", "new.key"), key=True),
    "import TheNodes' peers.json": Case(
        ("import", "--thenodes", "given.json"), "clean", given=thenodes_file
    ),
    "import TheNodes' peers.json into a dirty file": Case(
        ("import", "--thenodes", "given.json"), given=thenodes_file
    ),
    "import an export": Case(("import", "--json", "given.json"), "clean", given=export_file),
    "import a peer file": Case(("import", "--toml", "given.toml"), "none", given=peer_file),
}


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's clock stands at NOW; every store (command and node) has a small budget."""
    monkeypatch.setattr(time, "time", lambda: float(NOW))
    monkeypatch.setattr(persistent, "extras_budget", lambda max_entries: SIZE_BUDGET)


def start_file(node: Node, start: str) -> None:
    if start == "none":
        return
    node.peers.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    entries = {
        "dirty": [*GOOD, *BREAKING],
        "clean": GOOD,
        "edited": [*GOOD, *BREAKING],
        "full": [entry(f"192.0.2.{60 + i}:7447", Source.CONNECTED) for i in range(6)],
    }[start]
    node.peers.write_bytes(encode("example", NOW - 3600, entries, version="1.0"))
    if start == "edited":
        hand_edit(node.peers)


def next_start(node: Node, keys: Sealing) -> PersistentPeerStore:
    """The node's next start, a minute after the command, with its own settings."""
    target = target_from_host_config(node.config)
    return PersistentPeerStore.open(
        path=node.peers,
        realm="example",
        clock=lambda: NOW + 60,
        config=target.config,
        own_addrs=target.own_addrs,
        own_node_id=target.own_node_id,
        version=target.version,
        keys=keys,
    )


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_every_write_leaves_the_file_the_next_start_keeps(
    tmp_path: Path, peerstore: Run, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = write_node(tmp_path, SETTINGS)
    monkeypatch.chdir(tmp_path)
    start_file(node, case.start)
    if case.given is not None:
        case.given(tmp_path)
    keys = Sealing()
    if case.key:
        keys = Sealing.with_key(read_key_file(write_key(tmp_path / "new.key")))
    before = node.peers.read_bytes() if node.peers.exists() else None

    ran = peerstore(*case.args, *node.args)

    assert ran.status == case.status, ran.out + ran.err
    if case.status == 2:  # refused: nothing changed
        assert (node.peers.read_bytes() if node.peers.exists() else None) == before
        return
    target = attrs.evolve(target_from_host_config(node.config), keys=keys)
    written = read_snapshot(target)
    assert written.intact
    assert not MUST_GO & {e.addr for e in written.entries}
    key_args = ("--key-file", "new.key") if case.key else ()
    stats = json.loads(peerstore("stats", "--json", *key_args, *node.args).out)["next_start"]
    assert (stats["kept"], stats["dropped"], stats["clamped"]) == (len(written.entries), 0, 0)
    with next_start(node, keys) as book:
        assert not book.dirty  # nothing to expire, drop, clamp, trim or seal anew
        assert sorted(book.store.entries(), key=lambda e: e.addr) == sorted(
            written.entries, key=lambda e: e.addr
        )
        assert list(book.store.reconnect_plan()) == stats["reconnect_plan"]


def test_what_a_write_drops_it_says_with_the_reason_the_node_would_give(
    tmp_path: Path, peerstore: Run
) -> None:
    node = write_node(tmp_path, SETTINGS)
    start_file(node, "dirty")

    ran = peerstore("remove", "192.0.2.10:7447", *node.args)

    assert ran.status == 0, ran.err
    lines = ran.out.splitlines()
    assert lines[0] == "removed 192.0.2.10:7447"
    assert f"drop {OWN} (Connected): the node's own address or id: it never stores itself" in lines
    assert (
        "drop 192.0.2.11:7447 (Connected): the node's own address or id: it never stores itself"
        in lines
    )
    assert any(line.startswith("drop 45.76.12.34:7447 (Gossip): past its TTL") for line in lines)
    assert "keep 5.9.20.30:7447 (Gossip): a time in the future set to now" in lines


def test_import_of_the_nodes_own_address_says_it_is_not_imported(
    tmp_path: Path, peerstore: Run
) -> None:
    node = write_node(tmp_path, SETTINGS)
    thenodes_file(tmp_path)

    ran = peerstore("import", "--thenodes", tmp_path / "given.json", *node.args)

    assert ran.status == 0, ran.err
    own = "the node's own address or id: it never stores itself"
    assert f"  not imported: {OWN} (Connected): {own}" in ran.out
    assert f"  not imported: 192.0.2.20:7447 (Connected): {own}" in ran.out
    assert "  192.0.2.21:7447: a time in the future set to now" in ran.out


def test_import_of_another_realms_file_or_export_is_refused_and_changes_nothing(
    tmp_path: Path, peerstore: Run
) -> None:
    node = write_node(tmp_path, SETTINGS)
    start_file(node, "clean")
    before = node.peers.read_bytes()
    (tmp_path / "other.toml").write_bytes(encode("other", NOW, GOOD))
    (tmp_path / "other.json").write_text(
        json.dumps({"realm": "example", "version": "2.0", "peers": []})
    )

    toml = peerstore("import", "--toml", tmp_path / "other.toml", *node.args)
    export = peerstore("import", "--json", tmp_path / "other.json", *node.args)

    assert toml.status == export.status == 2
    assert "holds realm 'other', not 'example'" in toml.err
    assert "holds version '2.0' of realm 'example', not '1.0' of 'example'" in export.err
    assert node.peers.read_bytes() == before


def test_an_export_imported_into_a_new_file_gives_back_every_entry(
    tmp_path: Path, peerstore: Run
) -> None:
    node = write_node(tmp_path, SETTINGS)
    start_file(node, "clean")
    for kind in ("json", "toml"):
        exported = tmp_path / f"peers.{kind}"
        exported.write_text(peerstore("export", "--format", kind, *node.args).out)
        copy = tmp_path / f"copy-{kind}.toml"

        ran = peerstore("import", f"--{kind}", exported, "--file", copy, "--realm", "example")

        assert ran.status == 0, ran.err
        assert ran.out.startswith(f"imported 2 of 2 entries from {exported}")
        target = attrs.evolve(target_from_host_config(node.config), path=copy)
        assert (
            read_snapshot(target).entries
            == read_snapshot(target_from_host_config(node.config)).entries
        )
