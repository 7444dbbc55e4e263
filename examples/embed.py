"""Embed the peer store in your own pluggy host: the hook contract in five calls.

    python examples/embed.py [STATE_DIR]      # default: ./embed-state

A node starts (nothing stored: it starts from its seeds), dials a peer, hears a peer list,
ticks, stops; then it starts again, and the store hands it the peer it dialled to dial first.
The host here is a stub: your host passes its own node, realm and peers.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from hostsim import hookspecs  # the hook specifications ("thenodes" project)
from thenodes_peerstore.plugin import PeerStorePlugin


@dataclass(frozen=True)
class Realm:
    name: str
    code: str
    version: str


@dataclass
class Host:
    """What every hook receives as ``host``: a read-only view of the node."""

    state_dir: Path
    realm: Realm = Realm(name="Example", code="example", version="1.0")
    node_id: str = "node-a"
    listen_addrs: Sequence[str] = ("198.51.100.5:7447",)
    config: Mapping[str, Any] = field(
        default_factory=lambda: {"network": {"persistence": {"enabled": True}}}
    )
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("embed"))
    clock: float = 1_800_000_000.0  # a fixed start, so the output is the same every run

    def now(self) -> float:
        return self.clock


@dataclass(frozen=True)
class Peer:
    """What ``on_connect`` and ``on_peer_list`` receive as ``peer`` and ``sender``."""

    node_id: str
    addr: str
    listen_addr: str | None = None
    direction: str = "outbound"  # "outbound": this node dialled it, and only that proves it
    capabilities: tuple[str, ...] = ()


def run_node(host: Host, seeds: list[str]) -> None:
    # 1. A plugin manager with the host's hook specifications.
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    # 2. One PeerStorePlugin instance per node.
    pm.register(PeerStorePlugin(), name="peerstore")
    # 3. Start: every plugin returns a list; dial the stored peers, then the seeds.
    plans = pm.hook.on_startup(host=host)
    first = [addr for plan in plans for addr in plan]
    print(f"start: dial {first or 'nothing stored'}, then the seeds {seeds}")
    pm.hook.on_bootstrap(host=host, seeds=seeds)
    # 4. What the node learns: a completed handshake on a dial, a peer list (untrusted).
    peer = Peer(node_id="node-b", addr="192.0.2.10:7447")
    pm.hook.on_connect(host=host, peer=peer)
    pm.hook.on_peer_list(host=host, sender=peer, peers=["203.0.113.7:7447", "not an address"])
    print("connected to 192.0.2.10:7447; it sent a peer list")
    # 5. Tick about once a second (saves when due); shut down (saves and releases the file).
    for _ in range(90):
        host.clock += 1
        pm.hook.on_tick(host=host)
    pm.hook.on_shutdown(host=host)
    print("stopped")


def main() -> None:
    state_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "embed-state")
    host = Host(state_dir=state_dir)
    run_node(host, seeds=["203.0.113.1:7447"])
    host.clock += 3600  # an hour later, a new process
    run_node(host, seeds=["203.0.113.1:7447"])


if __name__ == "__main__":
    main()
