"""Hostile numbers in a host config. What a config can make a node do to one dead address is
bounded.

Real sockets and processes bind 127.0.0.1; every wait is bounded; every process started is
stopped by its pid.
"""

from __future__ import annotations

import time
from pathlib import Path

from hostsim.backoff import MIN_REDIAL_SECS
from hostsim.live.processes import free_port, write_node_config
from tests.support.command import Run
from tests.support.processes import node_processes


def test_a_node_process_dials_a_dead_planned_peer_at_most_four_times_a_second(
    tmp_path: Path, peerstore: Run
) -> None:
    """Before: with these keys a node dialled a dead planned peer 659 times a second, each a
    status line, a hook call and a store record."""
    dead = f"127.0.0.1:{free_port()}"  # nobody listens there: each dial is refused at once
    policy = {
        "reconnect_base_delay_ms": 0,
        "reconnect_multiplier": 1,
        "reconnect_max_attempts": 1_000_000,
    }
    node_config = write_node_config(
        tmp_path / "node.toml",
        node_id="node-a",
        port=free_port(),
        extra={"network": {"connection_policy": policy}},
    )
    added = peerstore("add", "-c", node_config, "--source", "Connected", "--node-id", "d", dead)
    assert added.status == 0, added.err
    with node_processes(tmp_path, 20.0) as start:
        node = start(node_config, "node-a")
        first, _ = node.wait_for(rf"dial {dead} failed", 20.0)
        while time.monotonic() < first + 3.0:
            node.poll_lines()
            time.sleep(0.05)
        node.poll_lines()
        end = time.monotonic()  # every line counted was written before this
    failed = [at for at, line in node.lines if f"dial {dead} failed" in line]
    # Every one of them was written between the process's start and the end: one at once,
    # then one every MIN_REDIAL_SECS at most. It is retried at all: three seconds hold 12.
    assert len(failed) <= (end - node.started) / MIN_REDIAL_SECS + 1
    assert len([at for at in failed if at <= first + 3.0]) >= 3
