"""`hostsim node` as real processes on loopback: crashes, graceful stops and restarts.

Every process is stopped by its pid in a ``finally``; every wait is bounded.
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

from hostsim.live.processes import NodeProcess, free_port, write_node_config
from tests.support.processes import node_processes

WAIT = 20.0


def _peers(state: Path) -> dict[str, str]:
    """Address -> source in a node's peer file (empty while there is none)."""
    path = state / "plugins" / "peerstore" / "cluster.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {p["addr"]: p["source"] for p in data.get("peers", [])}


def _wait_connected_in_file(node: NodeProcess, state: Path, addr: str) -> None:
    for _ in range(int(WAIT * 10)):
        if _peers(state).get(addr) == "Connected":
            return
        node.poll_lines()
        time.sleep(0.1)
    raise TimeoutError(f"{addr} never stored as Connected in {state}")


def test_two_nodes_killed_with_the_seed_gone_reconnect_to_each_other_from_stored_peers(
    tmp_path: Path,
) -> None:
    ports = {name: free_port() for name in ("seed", "a", "b")}
    addr = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    configs = {
        "seed": write_node_config(tmp_path / "seed.toml", node_id="seed", port=ports["seed"]),
        **{
            name: write_node_config(
                tmp_path / f"{name}.toml", node_id=name, port=ports[name], seeds=[addr["seed"]]
            )
            for name in ("a", "b")
        },
    }
    with node_processes(tmp_path, WAIT) as start_node:

        def start(name: str) -> NodeProcess:
            return start_node(configs[name], name)

        seed = start("seed")
        b = start("b")
        b.wait_for(f"connected to {addr['seed']}", WAIT)
        a = start("a")
        # a learns b from the seed's answer to its first peer request and dials it.
        a.wait_for(f"connected to {addr['b']} ", WAIT)
        _wait_connected_in_file(a, tmp_path / "a-state", addr["b"])
        _wait_connected_in_file(b, tmp_path / "b-state", addr["seed"])
        a.kill()
        b.kill()
        assert seed.terminate() == 0  # SIGTERM is a graceful stop
        seed.wait_for("stopped", WAIT)

        b = start("b")
        a = start("a")
        a.wait_for(f"\\d\\. {addr['b']} \\(peerstore\\)", WAIT)  # planned by the store
        a.wait_for(f"connected to {addr['b']} \\(b, outbound\\)", WAIT)
        b.wait_for(r"connected to 127\.0\.0\.1:\d+ \(a, inbound\)", WAIT)
        assert not list((tmp_path / "a-state" / "plugins" / "peerstore").glob("*.corrupt-*"))
        assert "damaged" not in (tmp_path / "a.log").read_text(encoding="utf-8")
        assert 1 < (a.rss_mb() or 0) < 1024  # a running node's resident memory, in MB
        assert a.terminate() == 0
        assert a.rss_mb() is None  # reaped: /proc has no answer
        a.wait_for("stopped", WAIT)
