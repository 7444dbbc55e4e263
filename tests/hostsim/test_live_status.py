"""``hostsim node --status json``: one JSON object per line, each an event with its documented
keys, telling what the prose status lines tell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hostsim.live.node import STATUS_EVENTS
from hostsim.live.processes import NodeProcess, free_port, write_node_config

WAIT = 20.0


def events(process: NodeProcess) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for _, line in process.lines]
    assert all(isinstance(event, dict) for event in parsed)
    return parsed


def test_every_status_line_is_one_json_object_with_the_keys_its_event_documents(
    tmp_path: Path,
) -> None:
    ports = {"a": free_port(), "b": free_port()}
    closed = free_port()  # nobody listens there: b's dial to it fails
    seeds = {"a": [], "b": [f"127.0.0.1:{ports['a']}", f"127.0.0.1:{closed}"]}
    configs = {
        name: write_node_config(
            tmp_path / f"{name}.toml", node_id=f"node-{name}", port=port, seeds=seeds[name]
        )
        for name, port in ports.items()
    }
    processes: dict[str, NodeProcess] = {}
    try:
        for name in ("a", "b"):
            processes[name] = NodeProcess(configs[name], tmp_path / f"{name}.log", status="json")
            processes[name].wait_for(r'"event": "listening"', WAIT)
        b = processes["b"]
        b.wait_for(r'"event": "connected"', WAIT)
        b.wait_for(r'"event": "dial_failed"', WAIT)
        for process in processes.values():
            assert process.terminate() == 0
            process.wait_for(r'"event": "stopped"', WAIT)
    finally:
        for process in processes.values():
            process.stop()

    for process in processes.values():
        for event in events(process):
            assert event["event"] in STATUS_EVENTS
            assert set(event) == {"event", "t", *STATUS_EVENTS[event["event"]]}
            assert isinstance(event["t"], float)
    said = events(processes["b"])
    [listening] = [e for e in said if e["event"] == "listening"]
    assert listening["node_id"] == "node-b"
    assert listening["addrs"] == [f"127.0.0.1:{ports['b']}"]
    [order] = [e for e in said if e["event"] == "dial_order"]
    assert order["dials"] == [
        {"addr": f"127.0.0.1:{ports['a']}", "origin": "seed"},
        {"addr": f"127.0.0.1:{closed}", "origin": "seed"},
    ]
    assert order["origins"] == {"seed": 2}
    connected = next(e for e in said if e["event"] == "connected")
    assert connected["addr"] == f"127.0.0.1:{ports['a']}"
    assert (connected["node_id"], connected["direction"]) == ("node-a", "outbound")
    assert (connected["connections"], connected["outbound"]) == (1, 1)
    failed = next(e for e in said if e["event"] == "dial_failed")
    assert failed["addr"] == f"127.0.0.1:{closed}"
    assert failed["origin"] == "seed"
    assert "refused" in failed["error"]
    inbound = next(e for e in events(processes["a"]) if e["event"] == "connected")
    assert (inbound["node_id"], inbound["direction"]) == ("node-b", "inbound")
    assert said[-1] == {"event": "stopped", "t": said[-1]["t"], "incidents": {}}
