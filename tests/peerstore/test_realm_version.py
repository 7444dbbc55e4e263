"""A peer file belongs to one version of its realm: what writes it records the version, and a
file that names none is of TheNodes' default version, "1.0"."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hostsim.clock import VirtualClock
from hostsim.host import HostStartupError, PluginHost
from tests.support.command import Node, Run, write_node
from tests.support.thenodes_peers import PeerRecord, dumps
from thenodes_naming import DEFAULT_REALM_VERSION
from thenodes_peerstore.codec import decode, encode
from thenodes_peerstore.errors import RealmMismatchError
from thenodes_peerstore.model import PeerEntry, Source

PEER = "45.76.12.34:7447"
V2 = 'name = "Example"\nversion = "2.0"'


def version_line(path: Path) -> str | None:
    """The ``version = ...`` line of a plain peer file, or None when it has none."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("version = ")]
    return lines[0] if lines else None


def node_of(tmp_path: Path, name: str, realm: str = 'name = "Example"') -> Node:
    return write_node(tmp_path / name, realm=realm)


def peers_json(tmp_path: Path) -> Path:
    path = tmp_path / "peers.json"
    path.write_text(dumps([PeerRecord(PEER, "Handshake", 0, int(time.time()) - 60, "node-b")]))
    return path


def test_the_default_realm_version_is_thenodes_own_and_the_hosts(tmp_path: Path) -> None:
    """A config without ``[realm] version``: the host gives the plugin "1.0", and the command
    and the file reader take the same default."""
    host = PluginHost.from_file(write_node(tmp_path).config, clock=VirtualClock())
    assert host.view.realm.version == DEFAULT_REALM_VERSION == "1.0"


@pytest.mark.parametrize("command", ["add", "import"])
def test_add_and_import_write_the_version_of_the_config_they_are_given(
    tmp_path: Path, peerstore: Run, command: str
) -> None:
    one, two = node_of(tmp_path, "v1"), node_of(tmp_path, "v2", realm=V2)
    for node in (one, two):
        args = ["add", PEER] if command == "add" else ["import", "--thenodes", peers_json(tmp_path)]
        ran = peerstore(*args, *node.args)
        assert ran.status == 0, ran.err

    assert version_line(one.peers) == 'version = "1.0"'
    assert version_line(two.peers) == 'version = "2.0"'


@pytest.mark.parametrize("command", ["add", "import"])
def test_with_a_file_the_version_is_the_default_or_the_one_named(
    tmp_path: Path, peerstore: Run, command: str
) -> None:
    args = ["add", PEER] if command == "add" else ["import", "--thenodes", peers_json(tmp_path)]
    default, named = tmp_path / "default.toml", tmp_path / "named.toml"

    assert peerstore(*args, "--file", default, "--realm", "example").status == 0
    named_ran = peerstore(*args, "--file", named, "--realm", "example", "--realm-version", "2.0")
    assert named_ran.status == 0, named_ran.err

    assert version_line(default) == 'version = "1.0"'
    assert version_line(named) == 'version = "2.0"'


def test_a_file_of_another_version_is_refused_by_realm_version_and_left_unchanged(
    tmp_path: Path, peerstore: Run
) -> None:
    path = tmp_path / "peers.toml"
    assert peerstore("add", PEER, "--file", path, "--realm", "example").status == 0
    before = path.read_bytes()

    ran = peerstore("add", "5.9.20.30:7447", "--file", path, "--realm-version", "2.0")

    assert ran.status == 2
    assert "'1.0'" in ran.err
    assert "'2.0'" in ran.err
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--realm-version", ""], "bad realm version ''"),
        (["--realm-version", "2.0", "--config", "{config}"], "--realm-version goes with --file"),
    ],
)
def test_a_bad_realm_version_is_a_usage_error(
    tmp_path: Path, peerstore: Run, args: list[str], problem: str
) -> None:
    node = node_of(tmp_path, "v1")
    filled = [a.format(config=node.config) for a in args]
    if "--config" not in filled:
        filled += ["--file", str(tmp_path / "peers.toml"), "--realm", "example"]

    ran = peerstore("add", PEER, *filled)

    assert ran.status == 2
    assert problem in ran.err
    assert not node.peers.exists()
    assert not (tmp_path / "peers.toml").exists()


def start(node: Node) -> list[str]:
    """Start a hostsim node from its config; the stored peers it dials first."""
    host = PluginHost.from_file(node.config, clock=VirtualClock(time.time()))
    try:
        return [d.addr for d in host.start() if d.origin == "peerstore"]
    finally:
        if host.running:
            host.shutdown()


def test_peers_a_command_added_under_version_1_never_reach_a_version_2_nodes_plan(
    tmp_path: Path, peerstore: Run
) -> None:
    one = node_of(tmp_path, "v1")
    ran = peerstore("add", PEER, "--source", "Connected", *one.args)
    assert ran.status == 0, ran.err
    two = write_node(tmp_path / "v1", realm=V2)  # the same state directory, now version 2.0
    before = two.peers.read_bytes()

    with pytest.raises(HostStartupError, match=r"'1\.0'.*'2\.0'"):
        start(two)

    assert two.peers.read_bytes() == before
    assert start(write_node(tmp_path / "v1")) == [PEER]  # its own version's node takes it


def without_version(entries: list[PeerEntry]) -> bytes:
    """A file as schema 1, or the command before it wrote the version, left it: none named."""
    return encode("example", int(time.time()), entries, version=None)


def proven(now: int) -> PeerEntry:
    return PeerEntry(PEER, Source.CONNECTED, now - 60, now, last_connected=now, last_attempt=now)


def test_a_file_that_names_no_version_is_of_version_1_0() -> None:
    data = without_version([proven(int(time.time()))])

    assert decode(data, realm="example", version="1.0").version == "1.0"
    assert decode(data, realm="example").version == "1.0"
    with pytest.raises(RealmMismatchError) as caught:
        decode(data, realm="example", version="2.0")
    assert "'1.0' (it names none: TheNodes' default)" in str(caught.value)
    assert "'2.0'" in str(caught.value)


def test_a_version_2_node_treats_a_file_without_a_version_as_another_versions(
    tmp_path: Path,
) -> None:
    two = write_node(tmp_path, realm=V2)
    two.peers.parent.mkdir(parents=True)
    data = without_version([proven(int(time.time()))])
    two.peers.write_bytes(data)

    with pytest.raises(HostStartupError, match="it names none"):
        start(two)

    assert two.peers.read_bytes() == data  # left untouched, as any other version's file
    assert start(write_node(tmp_path)) == [PEER]  # a node of version 1.0 takes it
