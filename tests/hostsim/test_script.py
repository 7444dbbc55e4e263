"""Scripted single-node runs: parsing scenario files and their error messages, and playing them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hostsim.config import HostConfigError
from hostsim.script import (
    DialOutcome,
    PeerList,
    ScenarioError,
    ScenarioRunError,
    TimelineRecord,
    load_scenario,
    run_scenario,
)
from hostsim.testing import HookCall, RecordingPlugin, fake_entry_point, hookimpl
from tests.support.paths import EXAMPLES

NODE = """
bootstrap_nodes = ["203.0.113.1:7447", "203.0.113.2:7447"]
[realm]
name = "Example"
[node]
id = "node-a"
listen_addrs = ["198.51.100.5:7447"]
[plugins]
enabled = []
"""

HEADER = """
config = "node.toml"
[world]
"203.0.113.1:7447" = "seed-1"
"198.51.100.7:7447" = "node-b"
"""


def write_scenario(tmp_path: Path, body: str, node: str = NODE) -> Path:
    (tmp_path / "node.toml").write_text(textwrap.dedent(node), encoding="utf-8")
    path = tmp_path / "scenario.toml"
    path.write_text(textwrap.dedent(HEADER) + textwrap.dedent(body), encoding="utf-8")
    return path


def events(*tables: str) -> str:
    return "".join(f"\n[[events]]\n{textwrap.dedent(table).strip()}\n" for table in tables)


def test_load_the_example() -> None:
    scenario = load_scenario(EXAMPLES / "restart.toml")

    assert scenario.config.node_id == "node-a"
    assert scenario.config.realm.code == "example"
    assert scenario.config.enabled_plugins == ("peerstore",)
    assert scenario.config.data["network"]["persistence"]["enabled"] is True
    assert scenario.show_files is True
    assert scenario.start_time == 1_763_700_000
    assert scenario.world["203.0.113.1:7447"] == "seed-1"
    kinds = [event.kind for event in scenario.events]
    assert kinds[0] == "start"
    assert {
        "peer_list",
        "connect",
        "disconnect",
        "dial_failed",
        "advance",
        "shutdown",
        "restart",
    } <= set(kinds)
    [peer_list] = [event for event in scenario.events if event.kind == "peer_list"]
    assert isinstance(peer_list.action, PeerList)
    assert len(peer_list.action.peers) >= 12


def test_load_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path, events('at = 0\ndo = "start"')))
    assert scenario.start_time == 1_763_700_000
    assert scenario.show_files is False
    assert scenario.path == tmp_path / "scenario.toml"


def test_run_plays_every_event(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path,
        events(
            'at = 0\ndo = "start"',
            'at = 5\ndo = "peer_list"\nfrom = "203.0.113.1:7447"\n'
            'peers = ["198.51.100.7:7447", "x"]',
            'at = 10\ndo = "connect"\naddr = "198.51.100.7:7447"',
            'at = 11\ndo = "connect"\naddr = "100.64.3.4:51234"\ndirection = "inbound"\n'
            'listen_addr = "100.64.3.4:7447"\ncapabilities = ["relay"]',
            'at = 12\ndo = "connect"\naddr = "192.0.2.9:7447"\nnode_id = "node-z"',
            'at = 20\ndo = "disconnect"\naddr = "198.51.100.7:7447"\nreason = "timeout"',
            'at = 21\ndo = "disconnect"\naddr = "192.0.2.9:7447"',
            'at = 30\ndo = "dial_failed"\naddr = "192.0.2.1:7447"',
            'at = 40\ndo = "advance"\nsecs = 20',
            'at = 60\ndo = "shutdown"',
            'at = 100\ndo = "restart"',
            'at = 101\ndo = "crash"',
            'at = 200\ndo = "restart"',
            'at = 201\ndo = "restart"',
        ),
    )
    journal: list[HookCall] = []
    result = run_scenario(
        load_scenario(path),
        state_dir=tmp_path / "state",
        extra_plugins_factory=lambda: {"rec": RecordingPlugin(journal=journal)},
    )

    assert result.state_dir == tmp_path / "state"
    assert result.state_dir.is_dir()
    lines = [(r.t, r.kind, r.text) for r in result.records]
    assert lines == [
        (0, "start", "node-a (realm example) dials 2 addresses:"),
        (5, "peer_list", "from 203.0.113.1:7447: 2 addresses"),
        (10, "connect", "198.51.100.7:7447 (node-b), outbound"),
        (
            11,
            "connect",
            "100.64.3.4:51234 (peer-100.64.3.4:51234), inbound, listens on 100.64.3.4:7447",
        ),
        (12, "connect", "192.0.2.9:7447 (node-z), outbound"),
        (20, "disconnect", "198.51.100.7:7447 (node-b): timeout"),
        (21, "disconnect", "192.0.2.9:7447 (node-z): closed"),
        (30, "dial_failed", "192.0.2.1:7447: connection refused"),
        (40, "advance", "20 s pass, 20 ticks"),
        (60, "shutdown", "node-a stops gracefully"),
        (100, "restart", "node-a dials 2 addresses:"),
        (101, "crash", "node-a crashes (no hook is called)"),
        (200, "restart", "node-a dials 2 addresses:"),
        (201, "restart", "node-a dials 2 addresses:"),
        (
            201,
            "end",
            "the run ends with node-a running; it stops without a shutdown (no hook called)",
        ),
    ]
    assert result.records[0].dials == (
        DialOutcome("203.0.113.1:7447", "seed", node_id="seed-1"),
        DialOutcome("203.0.113.2:7447", "seed", error="connection refused"),
    )
    assert result.records[0].dials[0].describe() == "connected (seed-1)"
    assert result.records[0].dials[1].describe() == "failed: connection refused"
    hooks = [call.hook for call in journal]
    assert hooks[:4] == ["on_startup", "on_bootstrap", "on_connect", "on_dial_failed"]
    assert journal[2].kwargs["peer"].node_id == "seed-1"
    assert journal[3].kwargs["addr"] == "203.0.113.2:7447"
    assert hooks.count("on_tick") == 60 + 1 + 1
    assert hooks.count("on_shutdown") == 2  # at 60 and the restart at 201; none for the crash
    inbound = [call.kwargs["peer"] for call in journal if call.hook == "on_connect"][2]
    assert (inbound.direction, inbound.listen_addr, inbound.capabilities) == (
        "inbound",
        "100.64.3.4:7447",
        ("relay",),
    )


def test_advance_while_stopped(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path, events('at = 3\ndo = "advance"\nsecs = 10', 'at = 13\ndo = "start"')
    )
    result = run_scenario(load_scenario(path), state_dir=tmp_path / "state")
    first = result.records[0]
    assert (first.t, first.text) == (3, "10 s pass, node stopped")


def test_start_time_sets_the_clock(tmp_path: Path) -> None:
    seen: list[float] = []

    class Clocked:
        @hookimpl
        def on_startup(self, host: Any) -> list[str]:
            seen.append(host.now())
            return []

    path = write_scenario(tmp_path, events('at = 7\ndo = "start"'))
    path.write_text("start_time = 1000\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    run_scenario(
        load_scenario(path),
        state_dir=tmp_path / "s",
        extra_plugins_factory=lambda: {"c": Clocked()},
    )
    assert seen == [1007.0]


def test_a_runtime_error_names_the_event_and_keeps_the_timeline(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path,
        events('at = 0\ndo = "start"', 'at = 5\ndo = "disconnect"\naddr = "198.51.100.7:7447"'),
    )
    with pytest.raises(ScenarioRunError) as info:
        run_scenario(load_scenario(path), state_dir=tmp_path / "state")
    assert str(info.value) == (
        f"{path}: event 2 (disconnect at t=+5s): node 'node-a' is not connected to"
        " 198.51.100.7:7447, cannot disconnect"
    )
    assert [record.kind for record in info.value.records] == ["start"]
    assert isinstance(info.value, ScenarioError)


def test_a_startup_error_ends_the_run(tmp_path: Path) -> None:
    class OtherRealm:
        @hookimpl
        def on_startup(self, host: Any) -> list[str]:
            raise ValueError("peers/example.toml belongs to realm 'other'")

    path = write_scenario(tmp_path, events('at = 0\ndo = "start"', 'at = 1\ndo = "shutdown"'))
    with pytest.raises(ScenarioRunError) as info:
        run_scenario(
            load_scenario(path),
            state_dir=tmp_path / "s",
            extra_plugins_factory=lambda: {"store": OtherRealm()},
        )
    assert str(info.value) == (
        f"{path}: event 1 (start at t=+0s): plugin 'store' failed to start node 'node-a':"
        " peers/example.toml belongs to realm 'other'"
    )
    assert info.value.records == ()


def test_a_missing_plugin_ends_the_run(tmp_path: Path) -> None:
    node = NODE.replace("enabled = []", 'enabled = ["peerstore"]')
    path = write_scenario(tmp_path, events('at = 0\ndo = "start"'), node=node)
    with pytest.raises(
        ScenarioRunError, match=r"event 1 \(start at t=\+0s\): plugin 'peerstore' is enabled"
    ):
        run_scenario(load_scenario(path), state_dir=tmp_path / "s", entry_points=[])


def test_a_bad_host_config_names_the_config_file(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, events('at = 0\ndo = "start"'), node="port = 0\n" + NODE)
    with pytest.raises(
        HostConfigError, match=rf"^{tmp_path / 'node.toml'}: port = 0: must be 1..65535$"
    ):
        load_scenario(path)


class MemoStore:
    """A tiny stand-in peer store: remembers connected peers, dials the five most recent first."""

    def __init__(self) -> None:
        self.connected: dict[str, float] = {}

    def _file(self, host: Any) -> Path:
        return Path(host.state_dir) / "memo.json"

    @hookimpl
    def on_startup(self, host: Any) -> list[str]:
        if self._file(host).exists():
            self.connected = json.loads(self._file(host).read_text(encoding="utf-8"))
        return sorted(self.connected, key=lambda addr: -self.connected[addr])[:5]

    @hookimpl
    def on_connect(self, host: Any, peer: Any) -> None:
        addr = peer.addr if peer.direction == "outbound" else peer.listen_addr
        if addr is not None:
            self.connected[addr] = host.now()

    @hookimpl
    def on_shutdown(self, host: Any) -> None:
        self._file(host).write_text(json.dumps(self.connected), encoding="utf-8")


def test_the_example_story_with_a_stand_in_store(tmp_path: Path) -> None:
    scenario = load_scenario(EXAMPLES / "restart.toml")
    result = run_scenario(
        scenario,
        state_dir=tmp_path / "state",
        entry_points=[fake_entry_point("peerstore", MemoStore)],
    )

    first = result.records[0]
    assert first.kind == "start"
    assert {dial.origin for dial in first.dials} == {"seed"}
    assert any(dial.connected for dial in first.dials)
    connects = [record for record in result.records if record.kind == "connect"]
    assert len(connects) >= 6
    assert any("inbound" in record.text for record in connects)
    assert any(record.kind == "dial_failed" for record in result.records)
    [restart] = [record for record in result.records if record.kind == "restart"]
    assert restart.t - next(r.t for r in result.records if r.kind == "shutdown") >= 3600
    origins = [dial.origin for dial in restart.dials]
    assert origins[:5] == ["peerstore"] * 5
    assert set(origins[5:]) == {"seed"}
    assert sum(dial.connected for dial in restart.dials[:5]) >= 3
    assert (tmp_path / "state" / "memo.json").exists()


def run_error(tmp_path: Path, body: str) -> str:
    path = write_scenario(tmp_path, body)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    return message.removeprefix(f"{path}: ")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            events('at = 0\ndo = "launch"'),
            'event 1: do = "launch": unknown event (one of: start, restart, connect,',
        ),
        (events("at = 0"), 'event 1: missing key "do" (one of: start, restart,'),
        (events('at = 0\ndo = "start"', 'do = "shutdown"'), 'event 2 (shutdown): missing key "at"'),
        (events('at = 0\ndo = "connect"'), "event 1 (connect): addr: missing (required)"),
        (
            events('at = 0\ndo = "disconnect"\naddr = "x"\nresaon = "y"'),
            "event 1 (disconnect): unknown key resaon (did you mean reason?)",
        ),
        (
            events('at = 0\ndo = "start"\naddr = "x"'),
            "event 1 (start): unknown key addr (known: at, do)",
        ),
        (
            events('at = 5\ndo = "start"', 'at = 3\ndo = "shutdown"'),
            "event 2 (shutdown): at = 3 is earlier than t=+5s,"
            " where event 1 (start at = 5) leaves the clock;",
        ),
        (
            events('at = 5\ndo = "advance"\nsecs = 10', 'at = 10\ndo = "start"'),
            "event 2 (start): at = 10 is earlier than t=+15s,"
            " where event 1 (advance at = 5) leaves the clock;",
        ),
        (
            events('at = 1.5\ndo = "start"'),
            "event 1 (start): at: expected an integer, got 1.5",
        ),
        (
            events('at = "0"\ndo = "start"'),
            'event 1 (start): at: expected an integer, got "0"',
        ),
        (events('at = -1\ndo = "start"'), "event 1 (start): at = -1: must be zero or more"),
        (events("at = 0\ndo = 5"), "event 1: do = 5: unknown event"),
        (
            events('at = 0\ndo = "advance"\nsecs = true'),
            "event 1 (advance): secs: expected an integer, got true",
        ),
        (
            events('at = 0\ndo = "peer_list"\nfrom = "a"\npeers = "b"'),
            'event 1 (peer_list): peers: expected an array, got "b"',
        ),
        (
            events('at = 0\ndo = "peer_list"\nfrom = "a"\npeers = [1]'),
            "event 1 (peer_list): peers[0]: expected a string, got 1",
        ),
        (
            events('at = 0\ndo = "connect"\naddr = 7447'),
            "event 1 (connect): addr: expected a string, got 7447",
        ),
        (
            events('at = 0\ndo = "connect"\naddr = ""'),
            'event 1 (connect): addr = "": must not be empty',
        ),
        (
            events('at = 0\ndo = "connect"\naddr = "a"\ndirection = "in"'),
            'event 1 (connect): direction = "in": must be "outbound" or "inbound"',
        ),
        (
            events('at = 0\ndo = "connect"\naddr = "a"\ncapabilities = "relay"'),
            'event 1 (connect): capabilities: expected an array, got "relay"',
        ),
        ("", "[[events]]: missing (required): a scenario needs events"),
    ],
)
def test_parse_errors_name_the_event_and_key(tmp_path: Path, body: str, message: str) -> None:
    assert message in run_error(tmp_path, body)


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        (
            "colour = 1\n",
            "unknown key colour (known: config, start_time, show_files, world, names, events)",
        ),
        ("start_time = -5\n", "start_time = -5: must be zero or more"),
        ("show_files = 1\n", "show_files: expected true or false, got 1"),
    ],
)
def test_top_level_errors(tmp_path: Path, prefix: str, message: str) -> None:
    path = write_scenario(tmp_path, events('at = 0\ndo = "start"'))
    path.write_text(prefix + path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ScenarioError, match=f"^{path}: ") as info:
        load_scenario(path)
    assert message in str(info.value)


def test_events_must_be_an_array_of_tables(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, "")
    path.write_text('events = "start"\n' + path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ScenarioError, match=r'events: expected an array, got "start"'):
        load_scenario(path)


def test_world_must_map_addresses_to_node_ids(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, '"192.0.2.1:7447" = 5\n' + events('at = 0\ndo = "start"'))
    with pytest.raises(
        ScenarioError, match=r'\[world\] "192.0.2.1:7447": expected a string, got 5'
    ):
        load_scenario(path)


def test_missing_config_key(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(events('at = 0\ndo = "start"'), encoding="utf-8")
    with pytest.raises(ScenarioError, match=rf"^{path}: config: missing \(required\)"):
        load_scenario(path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[[events]\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=rf"^{path}: invalid TOML: "):
        load_scenario(path)


def test_timeline_record_defaults() -> None:
    assert TimelineRecord(0, "shutdown", "x").dials == ()


def test_a_seed_named_by_host_resolves_through_the_scenarios_names(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text(
        'bootstrap_nodes = ["Seed.Example.org:7447"]\n[node]\nid = "node-a"\n', encoding="utf-8"
    )
    path = tmp_path / "scenario.toml"
    path.write_text(
        'config = "node.toml"\n[names]\n"seed.example.org" = ["203.0.113.1"]\n'
        '[world]\n"203.0.113.1:7447" = "seed-1"\n[[events]]\nat = 0\ndo = "start"\n',
        encoding="utf-8",
    )

    result = run_scenario(load_scenario(path), state_dir=tmp_path / "state")

    start = result.records[0]
    assert start.dials == (DialOutcome("203.0.113.1:7447", "seed", node_id="seed-1"),)
