"""A node's host config running the peerstore plugin, as a host reads it from its file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hostsim.host import PluginHost

SEEDS = ["203.0.113.1:7447", "203.0.113.2:7447"]
OWN = "198.51.100.5:7447"


def host_config(
    realm: str = "Example",
    *,
    seeds: Sequence[str] = SEEDS,
    listen_addrs: Sequence[str] | None = (OWN,),
    **persistence: Any,
) -> dict[str, Any]:
    """Node ``node-a`` of ``realm`` on port 7447, persistence on with ``persistence``.

    With ``listen_addrs=None`` the node names no address of its own.
    """
    node: dict[str, Any] = {"id": "node-a", "state_dir": "state"}
    if listen_addrs is not None:
        node["listen_addrs"] = list(listen_addrs)
    return {
        "port": 7447,
        "bootstrap_nodes": list(seeds),
        "realm": {"name": realm},
        "node": node,
        "network": {"persistence": {"enabled": True, **persistence}},
        "plugins": {"enabled": ["peerstore"]},
    }


def peer_file(host: PluginHost) -> Path:
    """Where the plugin keeps the peers of the host's realm."""
    return host.config.state_dir / "plugins" / "peerstore" / f"{host.config.realm.code}.toml"
