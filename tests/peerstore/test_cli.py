"""The ``peerstore`` command, on files the store wrote and files a person edited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path

import attrs
import pytest

from tests.support import thenodes_peers
from tests.support.command import Node, Run, write_node
from tests.support.processes import TIMEOUT, read_line, ready_child
from tests.support.thenodes_peers import PeerRecord
from thenodes_naming import realm_code
from thenodes_peerstore import PersistenceConfig, PersistentPeerStore
from thenodes_peerstore.codec import decode, encode
from thenodes_peerstore.files import PeerFile
from thenodes_peerstore.model import PeerEntry, Source
from thenodes_peerstore.persistent import LoadStatus, load_file

HOUR = 3600


@pytest.fixture
def now() -> int:
    return int(time.time())


def fill(path: Path, now: int, config: PersistenceConfig | None = None) -> None:
    """A file as a node writes it: seeds, gossip, three proven peers, one failing address."""
    t = [now - 3 * HOUR]
    with PersistentPeerStore.open(
        path=path, realm="example", clock=lambda: t[0], config=config
    ) as book:
        store = book.store
        store.record_bootstrap(["203.0.113.1:7447", "203.0.113.2:7447"])
        store.record_gossip(
            ["198.51.100.7:7447", "192.0.2.10:7447", "45.76.12.34:7447", "5.9.20.30:7447"],
            sender="203.0.113.1:7447",
        )
        t[0] += 60
        store.record_connected("198.51.100.7:7447", node_id="node-b", capabilities=["relay"])
        store.record_connected("192.0.2.10:7447", node_id="node-c")
        store.record_disconnected("198.51.100.7:7447")
        store.record_disconnected("192.0.2.10:7447")
        t[0] = now - 600
        store.record_connected("[2001:db8::10]:7447", node_id="node-g")
        store.record_disconnected("[2001:db8::10]:7447")
        t[0] = now - 60
        store.online = lambda: True  # type: ignore[method-assign]  # its own uplink works
        for _ in range(3):  # backs off 120 s from now - 60
            store.record_dial_failed("45.76.12.34:7447")
        t[0] = now - 30


ALL = {
    "[2001:db8::10]:7447",
    "198.51.100.7:7447",
    "192.0.2.10:7447",
    "203.0.113.1:7447",
    "203.0.113.2:7447",
    "45.76.12.34:7447",
    "5.9.20.30:7447",
}


@pytest.fixture
def written(node: Node, now: int) -> Node:
    fill(node.peers, now)
    return node


def entries_of(path: Path) -> dict[str, PeerEntry]:
    decoded = decode(path.read_bytes(), realm="example")
    assert decoded.intact, decoded.problems
    return {e.addr: e for e in decoded.entries}


def load_as_a_node_does(path: Path, now: int) -> tuple[LoadStatus, dict[str, PeerEntry]]:
    with PeerFile.open(path, "example") as peer_file:
        outcome = load_file(peer_file, now)
    return outcome.status, {e.addr: e for e in outcome.entries}


def hand_edit(path: Path, edit: Callable[[str], str]) -> bytes:
    text = path.read_text()
    edited = edit(text)
    assert edited != text
    path.write_text(edited)
    return path.read_bytes()


def without_entry(addr: str) -> Callable[[str], str]:
    """Delete one ``[[peers]]`` table, as a person would in an editor."""

    def edit(text: str) -> str:
        tables = text.split("\n[[peers]]\n")
        kept = [t for t in tables if not t.startswith(f'addr = "{addr}"\n')]
        assert len(kept) == len(tables) - 1
        return "\n[[peers]]\n".join(kept)

    return edit


# -- naming the file ---------------------------------------------------------------------------


def test_the_console_script_and_python_m_are_the_command(written: Node) -> None:
    (script,) = entry_points(group="console_scripts", name="peerstore")
    assert script.value == "thenodes_console.entry:peerstore"
    ran = subprocess.run(
        [sys.executable, "-m", "thenodes_peerstore", "list", *written.args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert "203.0.113.1:7447" in ran.stdout


def run_node_with_a_peer(config: Path, now: int, text: str) -> None:
    """Write a host config and run a hostsim node from it that connects to one peer."""
    from hostsim.clock import VirtualClock
    from hostsim.host import PluginHost

    config.write_text(text)
    host = PluginHost.from_file(config, clock=VirtualClock(now))
    host.start()
    host.connect("203.0.113.10:7447", node_id="node-b")
    host.shutdown()


def test_config_names_the_file_a_hostsim_node_with_that_config_keeps(
    tmp_path: Path, peerstore: Run, monkeypatch: pytest.MonkeyPatch, now: int
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative state_dir is relative to the working directory
    run_node_with_a_peer(
        tmp_path / "node.toml",
        now,
        '[realm]\nname = "Für Elise"\n[node]\nid = "node-a"\nstate_dir = "var"\n'
        '[network.persistence]\nenabled = true\npath = "book/peers.toml"\n'
        '[plugins]\nenabled = ["peerstore"]\n',
    )

    ran = peerstore("list", "--config", "node.toml")

    assert ran.status == 0, ran.err
    assert "203.0.113.10:7447" in ran.out
    assert (tmp_path / "var/book/peers.fuer-elise.toml").is_file()


def test_config_of_another_realm_version_is_refused_as_another_realms_file(
    tmp_path: Path, peerstore: Run, monkeypatch: pytest.MonkeyPatch, now: int
) -> None:
    monkeypatch.chdir(tmp_path)
    text = (
        '[realm]\nname = "Example"\n[node]\nid = "node-a"\nstate_dir = "var"\n'
        '[network.persistence]\nenabled = true\n[plugins]\nenabled = ["peerstore"]\n'
    )
    run_node_with_a_peer(tmp_path / "node.toml", now, text)
    other = tmp_path / "node-v2.toml"
    other.write_text(text.replace('name = "Example"', 'name = "Example"\nversion = "2.0"'))

    ran = peerstore("list", "--config", "node-v2.toml")

    assert ran.status == 2
    assert "'2.0'" in ran.err
    assert "'1.0'" in ran.err


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Example", "example"),
        ("My Realm!", "my-realm"),
        ("  --Edge--  ", "edge"),
        ("Für Elise", "fuer-elise"),
        ("ÜBER", "ueber"),
        ("Café Noir", "cafe-noir"),
        ("Ångström", "angstrom"),
        ("こんにちは", "default"),
        ("", "default"),
        ("Realm ¹²", "realm"),
        ("Dvořák 9", "dvorak-9"),
    ],
)
def test_a_realm_code_is_derived_from_the_name_as_thenodes_derives_it(name: str, code: str) -> None:
    assert realm_code(name) == code


def test_a_realm_named_with_a_latin_letter_without_a_decomposition_names_its_file(
    tmp_path: Path, peerstore: Run
) -> None:
    node = write_node(tmp_path, realm='name = "Straße"')

    added = peerstore("add", "192.0.2.50:7447", *node.args)
    ran = peerstore("list", *node.args)

    assert added.status == 0, added.err
    assert (node.state_dir / "plugins" / "peerstore" / "strasse.toml").is_file()
    assert ran.status == 0, ran.err
    assert "192.0.2.50:7447" in ran.out


def test_realm_code_in_the_config_wins_and_no_realm_table_is_the_default_realm(
    tmp_path: Path, peerstore: Run, now: int
) -> None:
    coded = write_node(tmp_path / "a", realm='name = "Example"\ncode = "custom"')
    fill(coded.state_dir / "plugins" / "peerstore" / "custom.toml", now)  # realm "example"
    ran = peerstore("list", *coded.args)
    assert ran.status == 2
    assert "realm 'example', not 'custom'" in ran.err

    bare = tmp_path / "b" / "node.toml"
    bare.parent.mkdir()
    bare.write_text(f'[node]\nstate_dir = "{tmp_path / "b"}"\n')
    ran = peerstore("verify", "--config", bare)
    assert ran.status == 2
    assert str(tmp_path / "b" / "plugins" / "peerstore" / "default.toml") in ran.out


def test_file_reads_the_realm_from_the_file_and_realm_checks_it(
    written: Node, peerstore: Run
) -> None:
    assert peerstore("list", "--file", written.peers).status == 0
    ran = peerstore("list", "--file", written.peers, "--realm", "other")
    assert ran.status == 2
    assert str(written.peers) in ran.err
    assert "'example', not 'other'" in ran.err


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("port = ", "not valid TOML"),
        ("[realm]\ncode = 7\n", "[realm] code: expected a string"),
        ('[realm]\ncode = "../x"\n', "cannot name a file"),
        ("[network.persistence]\nmax_entries = -3\n", "max_entries = -3"),
        ("[network.persistence]\nmax_entries = 200000\n", "at most 65536"),
        ('[node]\nstate_dir = ""\n', "[node] state_dir"),
    ],
)
def test_a_bad_host_config_is_an_error_naming_the_file_and_the_problem(
    tmp_path: Path, peerstore: Run, text: str, problem: str
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(text)

    ran = peerstore("list", "--config", config)

    assert ran.status == 2
    assert ran.err.startswith(f"peerstore: error: host config {config}")
    assert problem in ran.err


# -- reading -----------------------------------------------------------------------------------


def test_list_shows_every_peer_most_trusted_first_with_proof_age_failures_and_backoff(
    written: Node, peerstore: Run
) -> None:
    ran = peerstore("list", *written.args)

    assert ran.status == 0, ran.err
    header, *rows = ran.out.splitlines()
    assert header.split() == (
        ["ADDRESS", "TIER", "PROVEN", "LAST", "SEEN", "FAILURES", "BACKING", "OFF", "NODE", "ID"]
    )
    assert [r.split()[0] for r in rows] == [
        "[2001:db8::10]:7447",  # Connected, seen 10 min ago
        "192.0.2.10:7447",  # Connected, 2 h ago (ties by address)
        "198.51.100.7:7447",
        "203.0.113.1:7447",  # Bootstrap
        "203.0.113.2:7447",
        "45.76.12.34:7447",  # Gossip; its dials failed a minute ago
        "5.9.20.30:7447",
    ]
    assert rows[0].split() == [
        "[2001:db8::10]:7447",
        "Connected",
        "yes",
        "10",
        "min",
        "ago",
        "0",
        "-",
        "node-g",
    ]
    assert rows[2].split() == [
        "198.51.100.7:7447",
        "Connected",
        "yes",
        "2",
        "h",
        "ago",
        "0",
        "-",
        "node-b",
    ]
    assert rows[3].split() == [
        "203.0.113.1:7447",
        "Bootstrap",
        "no",
        "3",
        "h",
        "ago",
        "0",
        "-",
        "-",
    ]
    assert rows[5].split() == [
        "45.76.12.34:7447",
        "Gossip",
        "no",
        "3",
        "h",
        "ago",
        "3",
        "in",
        "1",
        "min",
        "-",
    ]


def test_list_filters_by_tier_and_prints_json_with_every_field(
    written: Node, peerstore: Run, now: int
) -> None:
    ran = peerstore("list", *written.args, "--source", "gossip", "--source", "Bootstrap", "--json")

    assert ran.status == 0
    peers = json.loads(ran.out)
    assert [p["addr"] for p in peers] == [
        "203.0.113.1:7447",
        "203.0.113.2:7447",
        "45.76.12.34:7447",
        "5.9.20.30:7447",
    ]
    failing = peers[2]
    assert failing == {
        "addr": "45.76.12.34:7447",
        "source": "Gossip",
        "first_seen": now - 3 * HOUR,
        "last_seen": now - 3 * HOUR,
        "last_connected": None,
        "last_attempt": now - 60,
        "failures": 3,
        "node_id": None,
        "capabilities": [],
        "proven": False,
        "network_group": "45.76.0.0/16",
        "backing_off_until": now + 60,
    }


def test_list_of_a_bad_tier_is_a_usage_error(written: Node, peerstore: Run) -> None:
    ran = peerstore("list", *written.args, "--source", "Friends")
    assert ran.status == 2
    assert "'Friends' is not a tier (choose from Connected, Bootstrap, Claimed, Gossip)" in ran.err


def test_show_prints_every_field_of_one_entry_in_any_spelling_of_its_address(
    written: Node, peerstore: Run, now: int
) -> None:
    ran = peerstore("show", "[2001:DB8:0::10]:7447", *written.args)

    assert ran.status == 0, ran.err
    fields = dict(
        line.split(":", 1) for line in ran.out.splitlines() if not line.startswith("addr")
    )
    assert ran.out.startswith("addr:")
    assert "[2001:db8::10]:7447" in ran.out.splitlines()[0]
    assert {name: value.strip() for name, value in fields.items()} | {} == {
        "source": "Connected",
        "first_seen": fields["first_seen"].strip(),
        "last_seen": fields["last_seen"].strip(),
        "last_connected": fields["last_connected"].strip(),
        "last_attempt": fields["last_attempt"].strip(),
        "failures": "0",
        "node_id": "node-g",
        "capabilities": "-",
        "proven": "yes",
        "network_group": "2001:db8::/32",
        "backing_off_until": "-",
    }
    assert fields["last_seen"].strip().startswith(f"{now - 600} (")
    assert fields["last_seen"].strip().endswith(", 10 min ago)")
    assert "UTC" in fields["last_seen"]

    ran = peerstore("show", "198.51.100.7:7447", *written.args, "--json")
    assert json.loads(ran.out)["capabilities"] == ["relay"]


def test_show_of_an_address_not_in_the_file_exits_1_and_of_a_bad_address_2(
    written: Node, peerstore: Run
) -> None:
    absent = peerstore("show", "192.0.2.99:7447", *written.args)
    assert absent.status == 1
    assert f"192.0.2.99:7447 is not in peer file {written.peers}" in absent.err

    bad = peerstore("show", "seed.example.org:7447", *written.args)
    assert bad.status == 2
    assert "bad address 'seed.example.org:7447'" in bad.err
    assert "hostnames are not stored" in bad.err


def test_stats_counts_tiers_groups_and_ages_and_gives_the_plan_the_node_would_dial(
    written: Node, peerstore: Run, now: int
) -> None:
    ran = peerstore("stats", *written.args, "--json")

    assert ran.status == 0, ran.err
    stats = json.loads(ran.out)
    assert stats["entries"] == 7
    assert stats["tiers"] == {"Connected": 3, "Bootstrap": 2, "Claimed": 0, "Gossip": 2}
    assert stats["proven"] == 3
    assert stats["backing_off"] == 1
    assert stats["top_network_groups"][0] == {"group": "203.0.0.0/16", "entries": 2}
    assert stats["network_groups"] == 6
    assert stats["last_seen"] == {
        "under 1 h": 1,
        "1 h to 1 d": 6,
        "1 d to 7 d": 0,
        "7 d or more": 0,
    }
    # The node itself, started on this file, dials exactly this plan first.
    with PersistentPeerStore.open(path=written.peers, realm="example", clock=lambda: now) as book:
        plan = book.store.reconnect_plan()
    assert stats["next_start"]["reconnect_plan"] == plan
    # Longest standing first: the two proven 3 h ago (ties by address), then the newer one.
    assert plan == ["192.0.2.10:7447", "198.51.100.7:7447", "[2001:db8::10]:7447"]

    text = peerstore("stats", *written.args)
    assert text.status == 0
    assert "reconnect plan (3 of reconnect_limit 5):" in text.out
    assert "    1. 192.0.2.10:7447" in text.out


def test_stats_and_prune_use_the_settings_of_the_host_config(
    tmp_path: Path, peerstore: Run, now: int
) -> None:
    node = write_node(tmp_path, "reconnect_limit = 1\nttl_secs = 7200\nmax_entries = 4\n")
    fill(node.peers, now)

    stats = json.loads(peerstore("stats", *node.args, "--json").out)

    assert stats["next_start"]["reconnect_plan"] == ["[2001:db8::10]:7447"]
    assert stats["next_start"]["expired"] == 6  # all but one were last seen over 2 h ago
    assert stats["next_start"]["kept"] == 1


@pytest.mark.parametrize("command", ["list", "stats", "export"])
def test_reading_a_hand_edited_file_shows_what_a_node_would_salvage_and_warns(
    written: Node, peerstore: Run, command: str
) -> None:
    hand_edit(written.peers, without_entry("5.9.20.30:7447"))
    extra = ("--format", "json") if command == "export" else ()

    ran = peerstore(command, *written.args, *extra)

    assert ran.status == 0
    assert f"peer file {written.peers} is damaged" in ran.err
    assert "`peerstore seal` repairs it" in ran.err
    if command == "stats":
        assert "entries: 6 " in ran.out
    else:
        assert "5.9.20.30:7447" not in ran.out
        assert "45.76.12.34:7447" in ran.out


# -- verify ------------------------------------------------------------------------------------


def test_verify_exits_0_for_a_file_the_store_wrote(written: Node, peerstore: Run) -> None:
    ran = peerstore("verify", *written.args)
    assert ran.status == 0
    assert ran.out.startswith(f"intact: peer file {written.peers}, realm example, 7 entries")


def test_verify_exits_1_for_a_hand_edited_file_listing_each_problem_and_the_salvage(
    written: Node, peerstore: Run
) -> None:
    before = hand_edit(
        written.peers,
        lambda t: without_entry("5.9.20.30:7447")(t).replace("203.0.113.2:7447", "203.0.113.2:0"),
    )

    ran = peerstore("verify", *written.args)

    assert ran.status == 1
    lines = ran.out.splitlines()
    assert lines[0] == f"damaged: peer file {written.peers}"
    assert "  - the [integrity] digest does not match: the file was cut short or edited" in lines
    assert "  - [integrity] counts 7 entries, the file holds 6" in lines
    assert any("port 0 is outside 1..65535" in line for line in lines)
    assert lines[-1].startswith("5 entries would be salvaged")
    assert written.peers.read_bytes() == before  # verify never writes


@pytest.mark.parametrize("command", ["verify", "list", "stats", "seal"])
@pytest.mark.parametrize(
    "content", [b"\x00\xffnot a peer file", b'{"peers": []}\n', b"[server]\nport = 1\n"]
)
def test_a_file_that_is_not_a_peer_file_at_all_is_exit_2_and_left_untouched(
    written: Node, peerstore: Run, command: str, content: bytes
) -> None:
    written.peers.write_bytes(content)
    ran = peerstore(command, *written.args)
    assert ran.status == 2
    assert "is not a peer file" in ran.out + ran.err
    assert "damaged" not in ran.out + ran.err
    assert written.peers.read_bytes() == content


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: None, "no peer file at"),
        (lambda p: p.mkdir(parents=True), "is not a regular file"),
        (
            lambda p: p.write_bytes(encode("other", 1, [])),
            "holds realm 'other', not 'example'",
        ),
        (
            lambda p: p.write_bytes(
                encode("example", 1, []).replace(b"schema = 2", b"schema = 99")
            ),
            "schema 99 is newer",
        ),
    ],
    ids=["missing", "directory", "other realm", "newer schema"],
)
def test_verify_exits_2_for_a_file_no_node_can_use(
    node: Node, peerstore: Run, make: Callable[[Path], object], problem: str
) -> None:
    node.peers.parent.mkdir(parents=True, exist_ok=True)
    make(node.peers)

    ran = peerstore("verify", *node.args)

    assert ran.status == 2
    assert ran.out.startswith("unusable: ")
    assert str(node.peers) in ran.out
    assert problem in ran.out


# -- add, remove, prune ------------------------------------------------------------------------


def test_add_records_an_address_the_node_then_loads(
    written: Node, peerstore: Run, now: int
) -> None:
    ran = peerstore("add", "192.0.2.50:7447", *written.args, "--node-id", "node-z")

    assert ran.status == 0, ran.err
    assert ran.out.startswith("added 192.0.2.50:7447 as Bootstrap")
    status, entries = load_as_a_node_does(written.peers, now)
    assert status is LoadStatus.INTACT
    assert set(entries) == ALL | {"192.0.2.50:7447"}
    assert entries["192.0.2.50:7447"] == PeerEntry(
        addr="192.0.2.50:7447",
        source=Source.BOOTSTRAP,
        first_seen=entries["192.0.2.50:7447"].first_seen,
        last_seen=entries["192.0.2.50:7447"].first_seen,
        node_id="node-z",
    )


def test_add_as_a_proven_tier_puts_the_peer_in_the_next_plan(written: Node, peerstore: Run) -> None:
    ran = peerstore("add", "91.121.5.6:7447", "--source", "Connected", *written.args)

    assert ran.status == 0
    assert "proven: the next start dials it before the seeds" in ran.out
    plan = json.loads(peerstore("stats", "--json", *written.args).out)["next_start"]
    assert "91.121.5.6:7447" in plan["reconnect_plan"]


def test_add_of_an_address_already_there_exits_1_and_changes_nothing(
    written: Node, peerstore: Run
) -> None:
    before = written.peers.read_bytes()
    ran = peerstore("add", "192.0.2.10:7447", *written.args)
    assert ran.status == 1
    assert "already in peer file" in ran.err
    assert "(Connected)" in ran.err
    assert written.peers.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("0.0.0.0:7447",), "the unspecified address is not dialable"),
        (("192.0.2.1",), "missing port"),
        (("192.0.2.1:7447", "--node-id", "bad id!"), "bad node id 'bad id!'"),
        (("192.0.2.1:7447", "--source", "Trusted"), "'Trusted' is not a tier"),
    ],
)
def test_add_of_bad_input_is_a_usage_error_and_changes_nothing(
    written: Node, peerstore: Run, args: tuple[str, ...], problem: str
) -> None:
    before = written.peers.read_bytes()
    ran = peerstore("add", *args, *written.args)
    assert ran.status == 2
    assert problem in ran.err
    assert "Traceback" not in ran.err
    assert written.peers.read_bytes() == before


def test_add_creates_a_file_of_the_realm_it_is_told(tmp_path: Path, peerstore: Run) -> None:
    path = tmp_path / "new" / "peers.toml"
    refused = peerstore("add", "192.0.2.1:7447", "--file", path)
    assert refused.status == 2
    assert "give --realm CODE" in refused.err
    assert not path.exists()

    ran = peerstore("add", "192.0.2.1:7447", "--file", path, "--realm", "example")

    assert ran.status == 0, ran.err
    assert set(entries_of(path)) == {"192.0.2.1:7447"}


def test_add_refuses_an_address_the_next_load_would_drop_from_a_full_store(
    tmp_path: Path, peerstore: Run, now: int
) -> None:
    node = write_node(tmp_path, "max_entries = 3\n")
    with PersistentPeerStore.open(
        path=node.peers, realm="example", clock=lambda: now, config=PersistenceConfig(max_entries=3)
    ) as book:
        for i in range(3):
            book.store.record_connected(f"192.0.2.{i + 1}:7447")
    before = node.peers.read_bytes()

    ran = peerstore("add", "198.51.100.1:7447", "--source", "Gossip", *node.args)

    assert ran.status == 2
    assert "full of more trusted peers (max_entries = 3)" in ran.err
    assert node.peers.read_bytes() == before


def test_remove_takes_the_addresses_out_and_the_node_loads_the_rest(
    written: Node, peerstore: Run, now: int
) -> None:
    ran = peerstore("remove", "45.76.12.34:7447", "[2001:db8:0:0::10]:7447", *written.args)

    assert ran.status == 0, ran.err
    assert ran.out.splitlines() == ["removed 45.76.12.34:7447", "removed [2001:db8::10]:7447"]
    status, entries = load_as_a_node_does(written.peers, now)
    assert status is LoadStatus.INTACT
    assert set(entries) == ALL - {"45.76.12.34:7447", "[2001:db8::10]:7447"}


def test_remove_of_an_address_not_there_exits_1_and_still_removes_the_others(
    written: Node, peerstore: Run
) -> None:
    ran = peerstore("remove", "192.0.2.99:7447", "5.9.20.30:7447", *written.args)
    assert ran.status == 1
    assert "192.0.2.99:7447 is not in peer file" in ran.err
    assert set(entries_of(written.peers)) == ALL - {"5.9.20.30:7447"}

    before = written.peers.read_bytes()
    nothing = peerstore("remove", "192.0.2.99:7447", *written.args)
    assert nothing.status == 1
    assert f"{written.peers} unchanged" in nothing.out
    assert written.peers.read_bytes() == before


@pytest.mark.parametrize(
    "command", [("remove", "5.9.20.30:7447"), ("prune",), ("add", "192.0.2.1:7447")]
)
def test_a_writing_command_refuses_a_hand_edited_file_pointing_to_seal(
    written: Node, peerstore: Run, command: tuple[str, ...]
) -> None:
    before = hand_edit(written.peers, without_entry("203.0.113.2:7447"))

    ran = peerstore(*command, *written.args)

    assert ran.status == 2
    assert f"peer file {written.peers} is damaged" in ran.err
    assert "`peerstore seal` keeps the 6 entries that validate" in ran.err
    assert written.peers.read_bytes() == before


def test_a_writing_command_on_a_missing_file_says_so(node: Node, peerstore: Run) -> None:
    for command in (("remove", "192.0.2.1:7447"), ("prune",), ("seal",)):
        ran = peerstore(*command, *node.args)
        assert ran.status == 2
        assert f"no peer file at {node.peers}" in ran.err
        assert not node.peers.exists()


def test_prune_drops_what_the_next_load_would_drop_and_says_why(
    tmp_path: Path, peerstore: Run, now: int
) -> None:
    node = write_node(tmp_path, "ttl_secs = 7200\nmax_entries = 2\n")
    fill(node.peers, now)  # seven entries, six seen 3 h ago
    before = node.peers.read_bytes()

    dry = peerstore("prune", "--dry-run", *node.args)
    assert dry.status == 0
    assert node.peers.read_bytes() == before
    assert "dry run" in dry.out

    ran = peerstore("prune", *node.args)

    assert ran.status == 0, ran.err
    drops = [line for line in ran.out.splitlines() if line.startswith("drop ")]
    assert len(drops) == 5
    assert (
        "drop 203.0.113.1:7447 (Bootstrap): past its TTL: last seen 3 h ago, more than "
        "ttl_secs = 7200 (2 h) of the node's running time ago"
    ) in drops
    # The proven peers seen 3 h ago are the node's anchors: they outlive the TTL, and the cap
    # then keeps the two most recently seen.
    (over,) = [d for d in drops if "over the cap (max_entries = 2)" in d]
    assert "(Connected)" in over
    kept = set(entries_of(node.peers))
    assert len(kept) == 2
    assert "[2001:db8::10]:7447" in kept
    assert kept < {"[2001:db8::10]:7447", "192.0.2.10:7447", "198.51.100.7:7447"}


def test_time_the_node_was_stopped_does_not_age_its_entries(
    node: Node, peerstore: Run, now: int
) -> None:
    # The node saved and stopped 30 days ago, with peers last seen a day before that.
    fill(node.peers, now - 30 * 86400)
    assert peerstore("prune", *node.args).out.startswith("nothing to prune")

    stats = json.loads(peerstore("stats", "--json", *node.args).out)

    assert stats["next_start"]["expired"] == 0
    assert stats["next_start"]["reconnect_plan"] == [
        "192.0.2.10:7447",
        "198.51.100.7:7447",
        "[2001:db8::10]:7447",
    ]


def test_prune_names_entries_over_the_cap(tmp_path: Path, peerstore: Run, now: int) -> None:
    node = write_node(tmp_path, "max_entries = 3\n")
    fill(node.peers, now)

    ran = peerstore("prune", *node.args)

    assert ran.status == 0
    assert "drop 5.9.20.30:7447 (Gossip): over the cap (max_entries = 3)" in ran.out
    # The cap keeps the most trusted: the three proven peers.
    assert set(entries_of(node.peers)) == {
        "[2001:db8::10]:7447",
        "192.0.2.10:7447",
        "198.51.100.7:7447",
    }


def test_prune_with_nothing_to_drop_leaves_the_file_alone(written: Node, peerstore: Run) -> None:
    before = written.peers.read_bytes()
    ran = peerstore("prune", *written.args)
    assert ran.status == 0
    assert "nothing to prune: the next start keeps all 7 entries" in ran.out
    assert written.peers.read_bytes() == before


# -- seal --------------------------------------------------------------------------------------


def test_a_hand_edit_then_seal_gives_a_file_the_node_loads_intact_with_exactly_the_entries_left(
    written: Node, peerstore: Run, now: int
) -> None:
    original = written.peers.read_bytes()
    # A person removes one peer and changes another's port; the trailer no longer matches.
    edited = hand_edit(
        written.peers,
        lambda t: without_entry("5.9.20.30:7447")(t).replace(
            '"203.0.113.2:7447"', '"203.0.113.2:7448"'
        ),
    )
    assert peerstore("verify", *written.args).status == 1
    left = (ALL - {"5.9.20.30:7447", "203.0.113.2:7447"}) | {"203.0.113.2:7448"}

    ran = peerstore("seal", *written.args)

    assert ran.status == 0, ran.err
    assert "found: the [integrity] digest does not match" in ran.out
    assert f"sealed {written.peers}: 6 entries kept" in ran.out
    (backup,) = written.peers.parent.glob("example.toml.bak-*")
    assert backup.read_bytes() == edited
    assert str(backup) in ran.out
    assert peerstore("verify", *written.args).status == 0
    status, entries = load_as_a_node_does(written.peers, now)
    assert status is LoadStatus.INTACT
    assert set(entries) == left
    # Every field the person left is kept as it was.
    before = {e.addr: e for e in decode(original, realm="example").entries}
    assert entries["203.0.113.2:7448"] == attrs.evolve(
        before["203.0.113.2:7447"], addr="203.0.113.2:7448"
    )
    assert {a: entries[a] for a in left - {"203.0.113.2:7448"}} == {
        a: before[a] for a in left - {"203.0.113.2:7448"}
    }
    assert not list(written.peers.parent.glob("*.corrupt-*"))


def test_seal_drops_entries_the_store_refuses_and_says_why(
    written: Node, peerstore: Run, now: int
) -> None:
    hand_edit(
        written.peers,
        lambda t: t.replace('"203.0.113.2:7447"', '"203.0.113.2:0"').replace(
            'source = "Gossip"', 'source = "Friend"', 1
        ),
    )

    dry = peerstore("seal", "--dry-run", *written.args)
    assert dry.status == 0
    assert "sealing would keep 5 entries" in dry.out
    ran = peerstore("seal", *written.args)

    assert ran.status == 0
    assert "found: addr '203.0.113.2:0': port 0 is outside 1..65535 @ peers[" in ran.out
    assert "got 'Friend' @ peers[" in ran.out
    status, entries = load_as_a_node_does(written.peers, now)
    assert status is LoadStatus.INTACT
    assert len(entries) == 5


def test_seal_of_an_intact_file_changes_nothing(written: Node, peerstore: Run) -> None:
    before = written.peers.read_bytes()
    ran = peerstore("seal", *written.args)
    assert ran.status == 0
    assert "nothing to seal" in ran.out
    assert written.peers.read_bytes() == before
    assert not list(written.peers.parent.glob("*.bak-*"))


def test_seal_twice_in_one_second_keeps_both_backups(
    written: Node, peerstore: Run, monkeypatch: pytest.MonkeyPatch, now: int
) -> None:
    monkeypatch.setattr(time, "time", lambda: float(now))
    hand_edit(written.peers, without_entry("5.9.20.30:7447"))
    assert peerstore("seal", *written.args).status == 0
    hand_edit(written.peers, without_entry("45.76.12.34:7447"))
    assert peerstore("seal", *written.args).status == 0
    backups = sorted(p.name for p in written.peers.parent.glob("*.bak-*"))
    assert backups == [f"example.toml.bak-{now}", f"example.toml.bak-{now}-1"]


def test_seal_refuses_a_file_whose_realm_line_was_broken(written: Node, peerstore: Run) -> None:
    before = hand_edit(written.peers, lambda t: t.replace('realm = "example"', "realm = example"))

    ran = peerstore("seal", *written.args)

    assert ran.status == 2
    assert "names no readable realm" in ran.err
    assert 'realm = "example"' in ran.err
    assert written.peers.read_bytes() == before


def test_seal_never_touches_another_realms_file(tmp_path: Path, peerstore: Run, now: int) -> None:
    node = write_node(tmp_path)
    node.peers.parent.mkdir(parents=True)
    data = encode("other", now, [PeerEntry.new("192.0.2.1:7447", Source.GOSSIP, now)])
    node.peers.write_bytes(data)
    ran = peerstore("seal", *node.args)
    assert ran.status == 2
    assert "holds realm 'other', not 'example'" in ran.err
    assert node.peers.read_bytes() == data


# -- TheNodes ----------------------------------------------------------------------------------


@pytest.fixture
def thenodes_file(tmp_path: Path, now: int) -> Path:
    """A peers.json as TheNodes writes it, with one record of every kind it can hold."""
    records = [
        PeerRecord(
            "203.0.113.10:7447", "Handshake", 0, now - 2 * HOUR, "node-abc", ("relay", "kv")
        ),
        PeerRecord("[2001:db8::7]:7447", "Handshake", 1, now - HOUR, "node-v6"),
        PeerRecord("198.51.100.20:7447", "Gossip", 2, now - 60),  # marked "success" by gossip
        PeerRecord("198.51.100.21:7447", "Gossip", 0, None),
        PeerRecord("203.0.113.1:7447", "Bootstrap", 0, None),
        PeerRecord("192.0.2.44:7447", "Manual", 4, now - 5 * HOUR, None, ()),
        PeerRecord("[::ffff:192.0.2.45]:7447", "Gossip", 0, None, "node-mapped"),
        # Records TheNodes holds that no node can dial:
        PeerRecord("224.0.0.1:7447", "Gossip", 0, None),
        PeerRecord("[fe80::1%2]:7447", "Gossip", 0, None),
        PeerRecord("0.0.0.0:7447", "Bootstrap", 0, None),
    ]
    path = tmp_path / "peers.json"
    path.write_text(thenodes_peers.dumps(records))
    assert thenodes_peers.loads(path.read_text()) == records
    return path


def test_import_brings_every_usable_thenodes_record_with_its_tier_and_fields(
    node: Node, peerstore: Run, thenodes_file: Path, now: int
) -> None:
    ran = peerstore("import", "--thenodes", thenodes_file, *node.args)

    assert ran.status == 1  # three records could not be used
    assert ran.out.startswith(f"imported 7 of 10 records from {thenodes_file}")
    for addr in ("224.0.0.1:7447", "[fe80::1%2]:7447", "0.0.0.0:7447"):
        assert f"not imported: records[{_index(addr)}]: addr '{addr}'" in ran.out
    status, entries = load_as_a_node_does(node.peers, now)
    assert status is LoadStatus.INTACT
    assert entries["203.0.113.10:7447"] == PeerEntry(
        addr="203.0.113.10:7447",
        source=Source.CONNECTED,
        first_seen=now - 2 * HOUR,
        last_seen=now - 2 * HOUR,
        last_connected=now - 2 * HOUR,
        node_id="node-abc",
        capabilities=("relay", "kv"),
    )
    assert entries["[2001:db8::7]:7447"].proven
    assert entries["[2001:db8::7]:7447"].failures == 1
    gossip = entries["198.51.100.20:7447"]  # gossip's "success" is not proof
    assert (gossip.source, gossip.last_seen, gossip.last_connected) == (
        Source.GOSSIP,
        now - 60,
        None,
    )
    assert entries["198.51.100.21:7447"].last_seen >= now  # no time: one full TTL from now
    assert entries["203.0.113.1:7447"].source is Source.BOOTSTRAP
    manual = entries["192.0.2.44:7447"]
    assert (manual.source, manual.failures, manual.last_seen) == (
        Source.BOOTSTRAP,
        4,
        now - 5 * HOUR,
    )
    assert entries["192.0.2.45:7447"].node_id == "node-mapped"
    assert len(entries) == 7
    plan = json.loads(peerstore("stats", "--json", *node.args).out)["next_start"]["reconnect_plan"]
    assert plan == ["203.0.113.10:7447", "[2001:db8::7]:7447"]  # its last dial failed


def test_a_seed_thenodes_connected_to_is_imported_proven_and_one_only_heard_of_is_not(
    node: Node, peerstore: Run, tmp_path: Path, now: int
) -> None:
    """TheNodes keeps a seed's Bootstrap record after connecting to it, adding last_success_epoch
    and node_id; a peer list naming the seed adds last_success_epoch alone."""
    source = tmp_path / "peers.json"
    records = [
        PeerRecord("203.0.113.2:7447", "Bootstrap", 0, now - HOUR, "seed-a"),
        PeerRecord("203.0.113.3:7447", "Bootstrap", 0, now - HOUR),
        PeerRecord("203.0.113.4:7447", "Gossip", 0, now - HOUR, "dialled-gossip"),
    ]
    source.write_text(thenodes_peers.dumps(records))

    assert peerstore("import", "--thenodes", source, *node.args).status == 0

    entries = entries_of(node.peers)
    seed = entries["203.0.113.2:7447"]
    assert (seed.source, seed.last_connected, seed.node_id) == (
        Source.CONNECTED,
        now - HOUR,
        "seed-a",
    )
    assert entries["203.0.113.3:7447"].source is Source.BOOTSTRAP
    assert entries["203.0.113.3:7447"].last_connected is None
    assert entries["203.0.113.4:7447"].source is Source.GOSSIP  # gossip stays unproven
    back = {
        r.addr: r
        for r in thenodes_peers.loads(peerstore("export", "--format", "thenodes", *node.args).out)
    }
    assert back["203.0.113.2:7447"].last_success_epoch == now - HOUR
    assert back["203.0.113.3:7447"].last_success_epoch is None
    assert back["203.0.113.4:7447"].last_success_epoch is None


def test_export_writes_no_success_for_a_seed_whose_only_dial_failed(
    node: Node, peerstore: Run, tmp_path: Path, now: int
) -> None:
    source = tmp_path / "peers.json"
    source.write_text(thenodes_peers.dumps([PeerRecord("203.0.113.5:7447", "Bootstrap", 1, None)]))
    assert peerstore("import", "--thenodes", source, *node.args).status == 0

    (record,) = thenodes_peers.loads(peerstore("export", "--format", "thenodes", *node.args).out)

    assert (record.source, record.failures, record.last_success_epoch) == ("Bootstrap", 1, None)


def _index(addr: str) -> int:
    return {"224.0.0.1:7447": 7, "[fe80::1%2]:7447": 8, "0.0.0.0:7447": 9}[addr]


def test_import_merges_into_an_existing_file_keeping_the_more_trusted_entry(
    written: Node, peerstore: Run, tmp_path: Path, now: int
) -> None:
    source = tmp_path / "peers.json"
    source.write_text(
        thenodes_peers.dumps(
            [
                PeerRecord("203.0.113.1:7447", "Handshake", 0, now - 100, "seed-1"),
                PeerRecord("192.0.2.10:7447", "Gossip", 0, now - 10),
            ]
        )
    )

    ran = peerstore("import", "--thenodes", source, *written.args)

    assert ran.status == 0, ran.out + ran.err
    entries = entries_of(written.peers)
    assert set(entries) == ALL
    assert entries["203.0.113.1:7447"].proven  # TheNodes proved the seed
    assert entries["192.0.2.10:7447"].last_connected is not None  # gossip never downgrades
    assert "not imported: 192.0.2.10:7447 (Gossip): a second entry" in ran.out


def test_import_keeps_a_record_whose_node_id_or_capability_this_store_refuses(
    node: Node, peerstore: Run, tmp_path: Path, now: int
) -> None:
    source = tmp_path / "peers.json"
    source.write_text(
        thenodes_peers.dumps(
            [PeerRecord("192.0.2.1:7447", "Handshake", 0, now, "", ("relay", "has space"))]
        )
    )

    ran = peerstore("import", "--thenodes", source, *node.args)

    assert ran.status == 0
    assert "node_id '' left out" in ran.out
    assert "capabilities left out: 'has space'" in ran.out
    entry = entries_of(node.peers)["192.0.2.1:7447"]
    assert (entry.node_id, entry.capabilities) == (None, ("relay",))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{}", "expected a JSON array of peer records, got dict"),
        ("[", "not valid JSON"),
        (b"\xff[]", "not UTF-8"),
    ],
)
def test_import_of_a_file_that_is_not_a_thenodes_peer_file_is_refused(
    node: Node, peerstore: Run, tmp_path: Path, text: str | bytes, problem: str
) -> None:
    source = tmp_path / "peers.json"
    if isinstance(text, bytes):
        source.write_bytes(text)
    else:
        source.write_text(text)

    ran = peerstore("import", "--thenodes", source, *node.args)

    assert ran.status == 2
    assert f"TheNodes peer file {source}: {problem}" in ran.err
    assert not node.peers.exists()
    missing = peerstore("import", "--thenodes", tmp_path / "nope.json", *node.args)
    assert missing.status == 2
    assert "No such file or directory" in missing.err


def test_import_lists_records_not_of_thenodes_definition_and_imports_the_rest(
    node: Node, peerstore: Run, tmp_path: Path, now: int
) -> None:
    source = tmp_path / "peers.json"
    good = {"addr": "192.0.2.1:7447", "source": "Gossip", "failures": 0, "last_success_epoch": now}
    source.write_text(
        json.dumps(
            [
                good,
                {**good, "addr": "192.0.2.2:7447", "failures": -1},
                {**good, "addr": "192.0.2.3:7447", "source": "Friend"},
                {**good, "addr": "192.0.2.4:7447", "failures": True},
                {"addr": "192.0.2.5:7447", "source": "Gossip"},
                "192.0.2.6:7447",
                {**good, "addr": "192.0.2.7:7447", "future_field": 1},  # serde ignores it
            ]
        )
    )

    ran = peerstore("import", "--thenodes", source, *node.args)

    assert ran.status == 1
    assert "imported 2 of 7 records" in ran.out
    assert "failures = -1: must be 0 to 4294967295" in ran.out
    assert "records[2].source" in ran.out
    assert "records[3].failures" in ran.out
    assert "records[4].failures" in ran.out
    assert "records[5]: expected an object" in ran.out
    assert set(entries_of(node.peers)) == {"192.0.2.1:7447", "192.0.2.7:7447"}


def test_export_thenodes_writes_a_file_thenodes_reads_back_with_every_shared_field(
    node: Node, peerstore: Run, thenodes_file: Path, tmp_path: Path, now: int
) -> None:
    peerstore("import", "--thenodes", thenodes_file, *node.args)

    ran = peerstore("export", "--format", "thenodes", *node.args)

    assert ran.status == 0, ran.err
    back = {r.addr: r for r in thenodes_peers.loads(ran.out)}
    given = {r.addr: r for r in thenodes_peers.loads(thenodes_file.read_text())}
    assert set(back) == {
        "203.0.113.10:7447",
        "[2001:db8::7]:7447",
        "198.51.100.20:7447",
        "198.51.100.21:7447",
        "203.0.113.1:7447",
        "192.0.2.44:7447",
        "192.0.2.45:7447",
    }
    for addr in ("203.0.113.10:7447", "[2001:db8::7]:7447"):
        assert back[addr] == given[addr]  # every field, time included
    # A success is written only where this node connected: gossip's "success" is not one.
    assert back["198.51.100.20:7447"] == attrs.evolve(
        given["198.51.100.20:7447"], last_success_epoch=None
    )
    assert back["192.0.2.44:7447"] == attrs.evolve(
        given["192.0.2.44:7447"], source="Bootstrap", capabilities=None, last_success_epoch=None
    )  # Manual is an operator's entry, kept as Bootstrap; an empty list is no list
    assert back["192.0.2.45:7447"].node_id == "node-mapped"
    assert back["198.51.100.21:7447"].last_success_epoch is None
    # And back again: the same entries.
    again = tmp_path / "again.json"
    again.write_text(ran.out)
    other = write_node(tmp_path / "other")
    assert peerstore("import", "--thenodes", again, *other.args).status == 0
    assert entries_of(other.peers).keys() == entries_of(node.peers).keys()
    assert {a: e.source for a, e in entries_of(other.peers).items()} == {
        a: e.source for a, e in entries_of(node.peers).items()
    }


def test_export_json_and_toml_keep_every_field(written: Node, peerstore: Run) -> None:
    as_json = json.loads(peerstore("export", "--format", "json", *written.args).out)
    as_toml = peerstore("export", "--format", "toml", *written.args).out
    entries = entries_of(written.peers)

    assert as_json["realm"] == "example"
    assert {p["addr"]: p for p in as_json["peers"]}["45.76.12.34:7447"]["last_attempt"] == (
        entries["45.76.12.34:7447"].last_attempt
    )
    decoded = decode(as_toml.encode(), realm="example")
    assert decoded.intact
    assert {e.addr: e for e in decoded.entries} == entries


# -- a node holds the file ---------------------------------------------------------------------

# A hostsim node with the peerstore plugin: it starts on the host config (which opens and locks
# the realm's file), proves a peer, saves, says "ready", and runs until its stdin closes.
NODE = """
import sys, time
from hostsim.clock import VirtualClock
from hostsim.host import PluginHost

host = PluginHost.from_file(sys.argv[1], clock=VirtualClock(int(time.time())))
host.start()
host.connect("91.121.5.6:7447", node_id="node-live")
host.advance(61)  # past save_interval_secs: the node saves
print("ready", flush=True)
sys.stdin.read()
host.shutdown()
print("stopped", flush=True)
"""


@pytest.fixture
def running_node(written: Node) -> Iterator[subprocess.Popen[bytes]]:
    with ready_child(NODE, str(written.config)) as proc:
        yield proc


def test_while_a_hostsim_node_holds_the_file_list_works_and_remove_refuses_naming_its_pid(
    written: Node, running_node: subprocess.Popen[bytes], peerstore: Run
) -> None:
    before = written.peers.read_bytes()
    assert b"91.121.5.6:7447" in before  # the node's own save

    listed = peerstore("list", *written.args)
    assert listed.status == 0, listed.err
    assert "91.121.5.6:7447" in listed.out
    assert peerstore("verify", *written.args).status == 0

    ran = peerstore("remove", "91.121.5.6:7447", *written.args)

    assert ran.status == 2
    assert (
        f"peer file {written.peers} is in use by another store (pid {running_node.pid})" in ran.err
    )
    assert f"holding it (pid {running_node.pid})" in ran.err
    assert written.peers.read_bytes() == before


@pytest.mark.parametrize(
    "command",
    [("add", "192.0.2.1:7447"), ("prune",), ("seal",), ("import", "--thenodes", "peers.json")],
)
def test_while_a_node_holds_the_file_every_writing_command_refuses_and_changes_nothing(
    written: Node,
    running_node: subprocess.Popen[bytes],
    peerstore: Run,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "peers.json").write_text("[]")
    before = written.peers.read_bytes()

    ran = peerstore(*command, *written.args)

    assert ran.status == 2
    assert f"(pid {running_node.pid})" in ran.err
    assert written.peers.read_bytes() == before


def test_after_the_node_stops_remove_works(
    written: Node, running_node: subprocess.Popen[bytes], peerstore: Run
) -> None:
    assert running_node.stdin is not None
    running_node.stdin.close()
    assert read_line(running_node) == "stopped"
    running_node.wait(timeout=TIMEOUT)

    ran = peerstore("remove", "91.121.5.6:7447", *written.args)

    assert ran.status == 0, ran.err
    assert "91.121.5.6:7447" not in entries_of(written.peers)


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["list"],
        ["frobnicate"],
        ["list", "--file", "a", "--config", "b"],
        ["show", "--file", "{peers}"],
        ["list", "--config", "{config}", "--realm", "x"],
        ["export", "--file", "{peers}"],
        ["export", "--format", "yaml", "--file", "{peers}"],
    ],
    ids=repr,
)
def test_usage_errors_exit_2_as_argparse_does(written: Node, args: list[str]) -> None:
    fill_in = {"peers": str(written.peers), "config": str(written.config)}
    ran = subprocess.run(
        [sys.executable, "-m", "thenodes_peerstore", *(a.format(**fill_in) for a in args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert ran.returncode == 2
    assert "Traceback" not in ran.stderr
    assert "error:" in ran.stderr


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: None, "no peer file at {path}"),
        (lambda p: p.mkdir(), "peer file {path} is not a regular file"),
        (lambda p: os.symlink("/etc/passwd", p), "peer file {path} is a symbolic link"),
        (
            lambda p: p.write_bytes(encode("other", 1, [])),
            "peer file {path}: the file holds realm 'other', not 'example'",
        ),
    ],
    ids=["missing", "directory", "symlink", "other realm"],
)
@pytest.mark.parametrize(
    "command", ["list", "show 192.0.2.1:7447", "stats", "export --format json"]
)
def test_a_file_no_command_can_read_is_one_line_naming_it_never_a_traceback(
    tmp_path: Path, make: Callable[[Path], object], problem: str, command: str
) -> None:
    path = tmp_path / "peers.toml"
    make(path)
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "thenodes_peerstore",
            *command.split(),
            "--file",
            str(path),
            "--realm",
            "example",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert ran.returncode == 2
    assert ran.stderr.startswith("peerstore: error: ")
    assert problem.format(path=path) in ran.stderr
    assert "Traceback" not in ran.stderr
    assert ran.stdout == ""


# -- what the project's other parts decide -----------------------------------------------------


def schema_1(data: bytes) -> bytes:
    """A file as the previous version wrote it: schema 1, with its own valid trailer."""
    import hashlib

    body = data[: data.rindex(b"\n[integrity]\n") + 1].replace(b"schema = 2", b"schema = 1", 1)
    count = data.count(b"\n[[peers]]\n")
    digest = hashlib.sha256(body).hexdigest()
    return body + f'[integrity]\nentries = {count}\nsha256 = "{digest}"\n'.encode()


def test_a_schema_1_file_is_read_as_the_node_migrates_it(
    node: Node, peerstore: Run, now: int
) -> None:
    inbound = PeerEntry(  # schema 1 recorded inbound handshakes as Connected too
        addr="192.0.2.7:7447",
        source=Source.CONNECTED,
        first_seen=now - 100,
        last_seen=now - 50,
        last_connected=now - 50,
    )
    dialled = attrs.evolve(inbound, addr="192.0.2.8:7447", last_attempt=now - 50)
    node.peers.parent.mkdir(parents=True)
    node.peers.write_bytes(schema_1(encode("example", now - 10, [inbound, dialled])))

    verified = peerstore("verify", *node.args)
    listed = json.loads(peerstore("list", "--json", *node.args).out)

    assert verified.status == 0
    assert "schema 1: a node reads it and writes schema 2 at its next save" in verified.out
    assert {p["addr"]: (p["source"], p["proven"]) for p in listed} == {
        "192.0.2.8:7447": ("Connected", True),
        "192.0.2.7:7447": ("Claimed", False),
    }


# -- what a command leaves beside the file ------------------------------------------------------


@pytest.mark.parametrize("command", ["remove 192.0.2.1:7447", "prune", "seal"])
def test_a_write_refused_for_a_missing_file_leaves_no_lock_file(
    tmp_path: Path, peerstore: Run, command: str
) -> None:
    ran = peerstore(*command.split(), "--file", tmp_path / "peers.toml", "--realm", "example")
    assert ran.status == 2
    assert "no peer file at" in ran.err
    assert list(tmp_path.iterdir()) == []


def test_aside_lists_the_files_set_aside_and_prune_keeps_the_newest(
    written: Node, peerstore: Run
) -> None:
    directory = written.peers.parent
    for name in ("example.toml.corrupt-1000", "example.toml.corrupt-3000", "example.toml.bak-2000"):
        (directory / name).write_bytes(b"x" * 3)
    (directory / "other.toml.corrupt-5000").write_bytes(b"")  # another realm's: not ours
    listed = peerstore("aside", *written.args)
    assert listed.status == 0
    lines = listed.out.splitlines()
    assert lines[0].split() == ["FILE", "SET", "ASIDE", "BYTES", "WHAT"]
    assert [line.split()[0] for line in lines[1:]] == [
        "example.toml.corrupt-3000",
        "example.toml.bak-2000",
        "example.toml.corrupt-1000",
    ]
    assert "damaged, set aside by a node" in lines[1]
    assert "the file before a seal" in lines[2]
    pruned = peerstore("aside", "--prune", "--keep", "1", *written.args)
    assert pruned.status == 0
    assert pruned.out.splitlines()[-1] == "2 files removed, 1 kept"
    assert sorted(p.name for p in directory.iterdir() if "-" in p.name.split(".")[-1]) == [
        "example.toml.corrupt-3000",
        "other.toml.corrupt-5000",
    ]
    assert written.peers.exists()
    assert peerstore("aside", "--prune", *written.args).out.splitlines()[-1] == (
        "1 file removed, 0 kept"
    )
    assert peerstore("aside", *written.args).out == f"nothing set aside beside {written.peers}\n"
