"""The ``peerstore`` command run in this process, and a node's files for it to work on."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import attrs
import pytest

from thenodes_peerstore.cli import main


class Ran(NamedTuple):
    """The command's exit status and what it printed."""

    status: int
    out: str
    err: str


Run = Callable[..., Ran]


def run_peerstore(capsys: pytest.CaptureFixture[str], *args: object) -> Ran:
    """Run the command in this process with ``args``; its exit status and what it printed."""
    capsys.readouterr()
    try:
        status = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's usage errors
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    return Ran(status, captured.out, captured.err)


@attrs.frozen
class Node:
    """A node's config file, its state directory and the peer file it keeps there."""

    config: Path
    state_dir: Path
    peers: Path

    @property
    def args(self) -> tuple[str, str]:
        return ("--config", str(self.config))


def write_node(tmp_path: Path, persistence: str = "", realm: str = 'name = "Example"') -> Node:
    """A node's config in ``tmp_path``, with the ``persistence`` lines and ``realm`` given."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    state_dir = tmp_path / "state"
    config = tmp_path / "node.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            bootstrap_nodes = ["203.0.113.1:7447"]
            [realm]
            {realm}
            [node]
            id = "node-a"
            state_dir = {json.dumps(str(state_dir))}
            listen_addrs = ["198.51.100.5:7447"]
            [network.persistence]
            enabled = true
            """
        )
        + textwrap.dedent(persistence)
        + '\n[plugins]\nenabled = ["peerstore"]\n'
    )
    return Node(config, state_dir, state_dir / "plugins" / "peerstore" / "example.toml")
