"""The ``peerstore`` command under the node's own rules: itself, its plan, its lock, its output."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from tests.support.command import Node, Run, write_node
from thenodes_peerstore import cli
from thenodes_peerstore.codec import decode
from thenodes_peerstore.files import PeerFile


def stored(node: Node) -> set[str]:
    return {e.addr for e in decode(node.peers.read_bytes(), realm="example").entries}


@pytest.mark.parametrize(
    "args",
    [
        ("198.51.100.5:7447",),  # [node] listen_addrs
        ("192.0.2.9:7447", "--node-id", "node-a"),  # [node] id
    ],
)
def test_add_refuses_the_nodes_own_address_and_id(
    node: Node, peerstore: Run, args: tuple[str, ...]
) -> None:
    ran = peerstore("add", *args, "--source", "Connected", *node.args)
    assert ran.status == 2
    assert "the node's own" in ran.err
    assert not node.peers.exists() or args[0] not in stored(node)


def test_add_of_a_connected_peer_says_whether_the_next_start_plans_it(
    tmp_path: Path, peerstore: Run
) -> None:
    planned = write_node(tmp_path / "a")
    ran = peerstore("add", "192.0.2.9:7447", "--source", "Connected", *planned.args)
    assert ran.status == 0, ran.err
    assert "the next start dials it before the seeds" in ran.out

    unplanned = write_node(tmp_path / "b", "reconnect_limit = 0\n")
    ran = peerstore("add", "192.0.2.9:7447", "--source", "Connected", *unplanned.args)
    assert ran.status == 0, ran.err
    assert "not in the next start's plan" in ran.out
    assert "dials it" not in ran.out


def test_seal_keeps_a_backup_only_its_owner_reads_whatever_the_old_files_mode(
    node: Node, peerstore: Run
) -> None:
    assert peerstore("add", "192.0.2.9:7447", *node.args).status == 0
    node.peers.write_bytes(node.peers.read_bytes().replace(b"sha256", b"sha256x", 1))
    os.chmod(node.peers, 0o644)

    ran = peerstore("seal", *node.args)

    assert ran.status == 0, ran.err
    [backup] = node.peers.parent.glob("example.toml.bak-*")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600


def test_names_with_control_characters_are_printed_escaped(tmp_path: Path, peerstore: Run) -> None:
    path = tmp_path / "peers\x1b[31m.toml"
    ran = peerstore("list", "--file", path)
    assert ran.status == 2
    assert "\x1b" not in ran.err
    assert "peers\\x1b[31m.toml" in ran.err


def test_concurrent_commands_wait_for_each_other_and_a_refusal_names_the_holder(
    node: Node, peerstore: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    node.peers.parent.mkdir(parents=True, mode=0o700)
    holder = PeerFile.open(node.peers, "example")  # another command, for a moment
    release = threading.Timer(0.2, holder.close)
    release.start()
    ran = peerstore("add", "192.0.2.9:7447", *node.args)
    release.join()
    assert ran.status == 0, ran.err
    assert "192.0.2.9:7447" in stored(node)

    monkeypatch.setattr(cli, "LOCK_WAIT_SECS", 0.1)
    holder = PeerFile.open(node.peers, "example")  # holds on
    try:
        ran = peerstore("add", "192.0.2.10:7447", *node.args)
    finally:
        holder.close()
    assert ran.status == 2
    assert f"(pid {os.getpid()})" in ran.err
