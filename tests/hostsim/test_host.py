"""PluginHost: the lifecycle, the hook calls and their arguments, the dial order, bad plugins."""

from __future__ import annotations

import gc
import logging
import os
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pluggy
import pytest

from hostsim.clock import VirtualClock
from hostsim.config import HostConfig
from hostsim.errors import HostStartupError, HostStateError, PluginError
from hostsim.host import Dial, NodeView, Peer, PluginCall, PluginHost
from hostsim.plugins import spec_hook_names
from hostsim.testing import HookCall, RecordingPlugin, fake_entry_point, hookimpl

SEED_1 = "203.0.113.1:7447"
SEED_2 = "203.0.113.2:7447"
START = 1_763_700_000.0


def make_config(tmp_path: Path, **extra: Any) -> HostConfig:
    data: dict[str, Any] = {
        "bootstrap_nodes": [SEED_1, SEED_2],
        "realm": {"name": "Example"},
        "node": {"id": "node-a", "listen_addrs": ["198.51.100.5:7447"]},
        "network": {"persistence": {"enabled": True}},
    }
    data.update(extra)
    return HostConfig.from_mapping(data, base_dir=tmp_path)


class Recorders:
    """Makes new RecordingPlugins at every start, all writing to one journal."""

    def __init__(self, **options: dict[str, Any]) -> None:
        self.options = options or {"recorder": {}}
        self.journal: list[HookCall] = []
        self.starts = 0

    def __call__(self) -> Mapping[str, object]:
        self.starts += 1
        return {
            name: RecordingPlugin(name, journal=self.journal, **opts)
            for name, opts in self.options.items()
        }

    def hooks(self) -> list[str]:
        return [call.hook for call in self.journal]

    def calls(self, hook: str) -> list[HookCall]:
        return [call for call in self.journal if call.hook == hook]

    def clear(self) -> None:
        self.journal.clear()


@pytest.fixture
def recorders() -> Recorders:
    return Recorders()


@pytest.fixture
def host(tmp_path: Path, virtual_clock: VirtualClock, recorders: Recorders) -> PluginHost:
    return PluginHost(
        make_config(tmp_path), clock=virtual_clock, extra_plugins_factory=recorders, entry_points=[]
    )


@pytest.fixture
def started(host: PluginHost, recorders: Recorders) -> PluginHost:
    host.start()
    recorders.clear()
    return host


def test_start_calls_on_startup_then_on_bootstrap(host: PluginHost, recorders: Recorders) -> None:
    dials = host.start()

    assert host.running
    assert recorders.hooks() == ["on_startup", "on_bootstrap"]
    assert recorders.calls("on_bootstrap")[0].kwargs["seeds"] == [SEED_1, SEED_2]
    assert dials == [Dial(SEED_1, "seed"), Dial(SEED_2, "seed")]


def test_the_host_view(
    host: PluginHost, recorders: Recorders, virtual_clock: VirtualClock, tmp_path: Path
) -> None:
    host.start()
    view = recorders.calls("on_startup")[0].kwargs["host"]

    assert isinstance(view, NodeView)
    assert view is host.view
    assert (view.realm.name, view.realm.code, view.realm.version) == ("Example", "example", "1.0")
    assert view.node_id == "node-a"
    assert view.listen_addrs == ("198.51.100.5:7447",)
    assert view.state_dir == tmp_path / "data"
    assert view.config["network"]["persistence"]["enabled"] is True
    assert view.log.name == "hostsim.node.node-a"
    assert view.now() == START
    virtual_clock.advance(5)
    assert view.now() == START + 5


def test_dial_order_puts_plugin_lists_first_without_repeats(
    tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    recorders = Recorders(
        first={"dial_first": ["192.0.2.1:7447", SEED_2, "192.0.2.1:7447"]},
        quiet={},
        second={"dial_first": ["198.51.100.9:7447", "192.0.2.1:7447"]},
    )
    host = PluginHost(
        make_config(tmp_path), clock=virtual_clock, extra_plugins_factory=recorders, entry_points=[]
    )

    assert host.start() == [
        Dial("192.0.2.1:7447", "first"),
        Dial(SEED_2, "first"),
        Dial("198.51.100.9:7447", "second"),
        Dial(SEED_1, "seed"),
    ]


def test_entry_point_plugins_come_before_extras_in_the_dial_order(
    tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    class Store(RecordingPlugin):
        def __init__(self) -> None:
            super().__init__("store", dial_first=["192.0.2.1:7447"])

    recorders = Recorders(extra={"dial_first": ["198.51.100.9:7447"]})
    host = PluginHost(
        make_config(tmp_path, plugins={"enabled": ["store"]}),
        clock=virtual_clock,
        extra_plugins_factory=recorders,
        entry_points=[fake_entry_point("store", Store)],
    )
    assert host.start()[:2] == [Dial("192.0.2.1:7447", "store"), Dial("198.51.100.9:7447", "extra")]
    assert host.plugin_manager is not None
    assert [name for name, _ in host.plugin_manager.list_name_plugin()] == ["store", "extra"]


def test_on_startup_returning_none_dials_only_seeds(
    tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    class Silent:
        @hookimpl
        def on_startup(self, host: Any) -> None:
            return None

    host = PluginHost(
        make_config(tmp_path), clock=virtual_clock, extra_plugins_factory=lambda: {"s": Silent()}
    )
    assert host.start() == [Dial(SEED_1, "seed"), Dial(SEED_2, "seed")]


def test_outbound_connect(started: PluginHost, recorders: Recorders) -> None:
    peer = started.connect("198.51.100.7:7447", node_id="node-b", capabilities=["relay"])

    assert peer == Peer(
        node_id="node-b",
        addr="198.51.100.7:7447",
        direction="outbound",
        listen_addr="198.51.100.7:7447",
        capabilities=("relay",),
    )
    [call] = recorders.journal
    assert call.hook == "on_connect"
    assert call.kwargs == {"host": started.view, "peer": peer}
    assert started.connections == {"198.51.100.7:7447": peer}


def test_inbound_connect_keeps_the_advertised_listen_addr(
    started: PluginHost, recorders: Recorders
) -> None:
    peer = started.connect(
        "100.64.3.4:51234", node_id="node-h", direction="inbound", listen_addr="100.64.3.4:7447"
    )
    assert recorders.calls("on_connect")[0].kwargs["peer"] is peer
    assert (peer.addr, peer.listen_addr, peer.direction) == (
        "100.64.3.4:51234",
        "100.64.3.4:7447",
        "inbound",
    )

    anonymous = started.connect("100.64.3.5:40000", node_id="node-i", direction="inbound")
    assert anonymous.listen_addr is None


def test_connect_twice_is_an_error(started: PluginHost) -> None:
    started.connect(SEED_1, node_id="seed-1")
    with pytest.raises(HostStateError, match=f"node 'node-a' is already connected to {SEED_1}"):
        started.connect(SEED_1, node_id="seed-1")


def test_connect_checks_the_direction(started: PluginHost) -> None:
    with pytest.raises(
        ValueError, match="direction must be 'outbound' or 'inbound', got 'sideways'"
    ):
        started.connect(SEED_1, node_id="seed-1", direction="sideways")  # type: ignore[arg-type]
    assert started.connections == {}


def test_disconnect_passes_the_same_peer_and_the_reason(
    started: PluginHost, recorders: Recorders
) -> None:
    peer = started.connect(SEED_1, node_id="seed-1")
    started.disconnect(SEED_1, "closed by peer")

    call = recorders.calls("on_disconnect")[0]
    assert call.kwargs == {"host": started.view, "peer": peer, "reason": "closed by peer"}
    assert call.kwargs["peer"] is peer
    assert started.connections == {}


def test_disconnect_default_reason(started: PluginHost, recorders: Recorders) -> None:
    started.connect(SEED_1, node_id="seed-1")
    started.disconnect(SEED_1)
    assert recorders.calls("on_disconnect")[0].kwargs["reason"] == "closed"


def test_disconnect_when_not_connected(started: PluginHost) -> None:
    with pytest.raises(
        HostStateError, match=f"node 'node-a' is not connected to {SEED_1}, cannot disconnect"
    ):
        started.disconnect(SEED_1)


def test_peer_list(started: PluginHost, recorders: Recorders) -> None:
    sender = started.connect(SEED_1, node_id="seed-1")
    peers = ("198.51.100.7:7447", "not an address")
    started.peer_list(SEED_1, peers)

    call = recorders.calls("on_peer_list")[0]
    assert call.kwargs == {"host": started.view, "sender": sender, "peers": list(peers)}
    assert type(call.kwargs["peers"]) is list


def test_peer_list_from_an_unconnected_peer(started: PluginHost) -> None:
    with pytest.raises(
        HostStateError, match=r"not connected to 192\.0\.2\.1:7447, cannot receive a peer list"
    ):
        started.peer_list("192.0.2.1:7447", [])


def test_dial_failed(started: PluginHost, recorders: Recorders) -> None:
    started.dial_failed(SEED_2)
    started.dial_failed(SEED_1, "timeout")
    assert [call.kwargs for call in recorders.calls("on_dial_failed")] == [
        {"host": started.view, "addr": SEED_2, "error": "connection refused"},
        {"host": started.view, "addr": SEED_1, "error": "timeout"},
    ]


def test_advance_ticks_once_per_second(
    started: PluginHost, recorders: Recorders, virtual_clock: VirtualClock
) -> None:
    seen: list[float] = []

    class Clocked:
        @hookimpl
        def on_tick(self, host: Any) -> None:
            seen.append(host.now())

    assert started.plugin_manager is not None
    started.plugin_manager.register(Clocked(), name="clocked")
    started.advance(3)

    assert recorders.hooks() == ["on_tick"] * 3
    assert seen == [START + 1, START + 2, START + 3]
    assert virtual_clock.now() == START + 3
    started.advance(0)
    started.advance(2.0)  # type: ignore[arg-type]
    assert virtual_clock.now() == START + 5


def test_advance_while_stopped_only_moves_the_clock(
    host: PluginHost, recorders: Recorders, virtual_clock: VirtualClock
) -> None:
    host.advance(3600)
    assert recorders.journal == []
    assert virtual_clock.now() == START + 3600


@pytest.mark.parametrize("secs", [-1, 1.5, True, "3"])
def test_advance_refuses_bad_seconds(started: PluginHost, secs: Any) -> None:
    with pytest.raises(ValueError, match="secs"):
        started.advance(secs)


def test_shutdown(started: PluginHost, recorders: Recorders) -> None:
    started.connect(SEED_1, node_id="seed-1")
    recorders.clear()
    started.shutdown()

    assert recorders.hooks() == ["on_shutdown"]
    assert recorders.calls("on_shutdown")[0].kwargs == {"host": started.view}
    assert not started.running
    assert started.plugin_manager is None
    assert started.connections == {}


def test_crash_calls_no_hook(started: PluginHost, recorders: Recorders) -> None:
    started.connect(SEED_1, node_id="seed-1")
    recorders.clear()
    started.crash()

    assert recorders.journal == []
    assert not started.running
    assert started.plugin_manager is None
    assert started.connections == {}


class Holder:
    """A plugin that holds an OS resource and is only freed by the garbage collector."""

    def __init__(self, lock_path: Path, registry: list[weakref.ref[Holder]]) -> None:
        self.lock_path = lock_path
        self.me = self  # a reference cycle: only gc.collect() frees this instance
        registry.append(weakref.ref(self))

    @hookimpl
    def on_startup(self, host: Any) -> list[str]:
        fcntl = pytest.importorskip("fcntl")
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        weakref.finalize(self, os.close, fd)
        return []


def lock_is_free(path: Path) -> bool:
    fcntl = pytest.importorskip("fcntl")
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_crash_releases_what_the_plugins_held(tmp_path: Path, virtual_clock: VirtualClock) -> None:
    lock_path = tmp_path / "held.lock"
    instances: list[weakref.ref[Holder]] = []
    host = PluginHost(
        make_config(tmp_path),
        clock=virtual_clock,
        extra_plugins_factory=lambda: {"holder": Holder(lock_path, instances)},
    )
    gc.disable()
    try:
        host.start()
        assert not lock_is_free(lock_path)
        host.crash()
        assert instances[0]() is None
        assert lock_is_free(lock_path)
        host.start()  # a new process takes the lock again
        assert not lock_is_free(lock_path)
        host.crash()
    finally:
        gc.enable()


def test_restart_makes_new_plugin_instances(started: PluginHost, recorders: Recorders) -> None:
    before = started.plugin_manager
    assert before is not None
    old = before.get_plugin("recorder")

    dials = started.restart()

    assert recorders.hooks() == ["on_shutdown", "on_startup", "on_bootstrap"]
    assert recorders.starts == 2
    assert started.plugin_manager is not None
    assert started.plugin_manager is not before
    assert started.plugin_manager.get_plugin("recorder") is not old
    assert dials == [Dial(SEED_1, "seed"), Dial(SEED_2, "seed")]


def test_start_after_shutdown_and_after_crash(started: PluginHost, recorders: Recorders) -> None:
    started.shutdown()
    started.start()
    started.crash()
    started.start()
    assert recorders.hooks() == [
        "on_shutdown",
        "on_startup",
        "on_bootstrap",
        "on_startup",
        "on_bootstrap",
    ]


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda h: h.connect(SEED_1, node_id="x"), "node 'node-a' is not running, cannot connect"),
        (lambda h: h.disconnect(SEED_1), "not running, cannot disconnect"),
        (lambda h: h.peer_list(SEED_1, []), "not running, cannot receive a peer list"),
        (lambda h: h.dial_failed(SEED_1), "not running, cannot fail a dial"),
        (lambda h: h.shutdown(), "not running, cannot shut down"),
        (lambda h: h.crash(), "not running, cannot crash"),
        (lambda h: h.restart(), "not running, cannot shut down"),
    ],
)
def test_lifecycle_methods_need_a_running_node(
    host: PluginHost, action: Callable[[PluginHost], object], message: str
) -> None:
    with pytest.raises(HostStateError, match=message):
        action(host)


def test_start_twice(started: PluginHost) -> None:
    with pytest.raises(HostStateError, match="node 'node-a' is already running"):
        started.start()


def test_runtime_hook_errors_are_logged_and_the_node_carries_on(
    tmp_path: Path, virtual_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    recorders = Recorders(
        broken={"raise_in": ["on_connect", "on_tick", "on_shutdown"]},
        healthy={},
    )
    host = PluginHost(make_config(tmp_path), clock=virtual_clock, extra_plugins_factory=recorders)
    host.start()
    with caplog.at_level(logging.ERROR, logger="hostsim"):
        host.connect(SEED_1, node_id="seed-1")
        host.advance(2)
        host.shutdown()

    hooks = [
        (call.plugin, call.hook)
        for call in recorders.journal
        if call.hook not in ("on_startup", "on_bootstrap")
    ]
    for hook in ("on_connect", "on_tick", "on_shutdown"):
        assert ("broken", hook) in hooks
        assert ("healthy", hook) in hooks
    assert hooks.count(("healthy", "on_tick")) == 2
    messages = [record.getMessage() for record in caplog.records]
    assert "node node-a: plugin 'broken' raised in on_connect; the node carries on" in messages
    assert (
        messages.count("node node-a: plugin 'broken' raised in on_tick; the node carries on") == 2
    )
    assert all(record.exc_info is not None for record in caplog.records)
    assert not host.running


def test_startup_error_stops_the_start(tmp_path: Path, virtual_clock: VirtualClock) -> None:
    class Misconfigured:
        @hookimpl
        def on_startup(self, host: Any) -> list[str]:
            raise ValueError("[network.persistence] max_entries = -1: must be positive")

    recorders = Recorders()
    factory = lambda: {**recorders(), "store": Misconfigured()}  # noqa: E731
    host = PluginHost(make_config(tmp_path), clock=virtual_clock, extra_plugins_factory=factory)

    with pytest.raises(HostStartupError) as info:
        host.start()

    assert str(info.value) == (
        "plugin 'store' failed to start node 'node-a':"
        " [network.persistence] max_entries = -1: must be positive"
    )
    assert isinstance(info.value.__cause__, ValueError)
    assert not host.running
    assert host.plugin_manager is None
    assert "on_shutdown" not in [call.hook for call in recorders.journal]
    assert "on_bootstrap" not in [call.hook for call in recorders.journal]


def test_on_startup_must_return_a_list_of_strings(
    tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    class Sloppy:
        @hookimpl
        def on_startup(self, host: Any) -> object:
            return "192.0.2.1:7447"

    host = PluginHost(
        make_config(tmp_path),
        clock=virtual_clock,
        extra_plugins_factory=lambda: {"sloppy": Sloppy()},
    )
    with pytest.raises(
        HostStartupError,
        match=r"plugin 'sloppy' failed to start node 'node-a':"
        r" on_startup returned '192\.0\.2\.1:7447'",
    ):
        host.start()


def test_plugin_load_errors_leave_the_node_stopped(
    tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    host = PluginHost(
        make_config(tmp_path, plugins={"enabled": ["peerstore"]}),
        clock=virtual_clock,
        entry_points=[],
    )
    with pytest.raises(PluginError, match="plugin 'peerstore' is enabled in"):
        host.start()
    assert not host.running


def test_hooks_receive_keyword_arguments(started: PluginHost) -> None:
    received: list[tuple[str, str, str]] = []

    class Reordered:
        @hookimpl
        def on_disconnect(self, reason: str, peer: Peer, host: NodeView) -> None:
            received.append((reason, peer.node_id, host.node_id))

    assert started.plugin_manager is not None
    started.plugin_manager.register(Reordered(), name="reordered")
    started.connect(SEED_1, node_id="seed-1")
    started.disconnect(SEED_1, "timeout")
    assert received == [("timeout", "seed-1", "node-a")]


def test_from_file_with_a_state_dir_override(tmp_path: Path, virtual_clock: VirtualClock) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[realm]\nname = "Example"\n[node]\nid = "node-a"\n', encoding="utf-8")

    assert PluginHost.from_file(path, clock=virtual_clock).view.state_dir == tmp_path / "data"
    override = PluginHost.from_file(path, clock=virtual_clock, state_dir=tmp_path / "run")
    assert override.view.state_dir == tmp_path / "run"
    assert override.config.state_dir == tmp_path / "run"


def test_connections_are_read_only(started: PluginHost) -> None:
    started.connect(SEED_1, node_id="seed-1")
    with pytest.raises(TypeError):
        started.connections[SEED_2] = started.connections[SEED_1]  # type: ignore[index]


def test_many_nodes_share_a_process(tmp_path: Path) -> None:
    journal: list[HookCall] = []
    hosts = []
    for name in ("a", "b"):
        config = make_config(tmp_path, node={"id": f"node-{name}", "state_dir": name})
        host = PluginHost(
            config,
            clock=VirtualClock(),
            extra_plugins_factory=lambda: {"r": RecordingPlugin(journal=journal)},
        )
        host.start()
        hosts.append(host)
    views = {
        call.kwargs["host"].node_id: call.kwargs["host"].state_dir
        for call in journal
        if call.hook == "on_startup"
    }
    assert views == {"node-a": tmp_path / "a", "node-b": tmp_path / "b"}
    assert hosts[0].plugin_manager is not hosts[1].plugin_manager


class FirstSpecs:
    @pluggy.HookspecMarker("thenodes")(firstresult=True)
    def pick(self, n: int) -> int | None:
        """A firstresult hook."""


class Picker:
    def __init__(self, answer: int | None, *, fails: bool = False) -> None:
        self.answer = answer
        self.fails = fails

    @hookimpl
    def pick(self, n: int) -> int | None:
        if self.fails:
            raise RuntimeError("no pick")
        return self.answer


def test_a_plugin_call_keeps_pluggys_order_and_stops_a_firstresult_hook_at_a_result() -> None:
    pm = pluggy.PluginManager("thenodes")
    pm.add_hookspecs(FirstSpecs)
    for name, plugin in [
        ("late", Picker(3)),
        ("answers", Picker(2)),
        ("silent", Picker(None)),
        ("broken", Picker(1, fails=True)),
    ]:
        pm.register(plugin, name=name)
    failures: list[tuple[str, str]] = []
    pick = PluginCall(pm.hook.pick, lambda p, h, e: failures.append((p, h)), lambda v: v)

    assert pick(n=1) == [("silent", None), ("answers", 2)]
    assert failures == [("broken", "pick")]


def test_the_host_calls_every_hook_of_the_contract(started: PluginHost) -> None:
    assert {
        name for name, value in vars(started.hook).items() if isinstance(value, PluginCall)
    } == set(spec_hook_names())


def test_a_stopped_node_has_no_hooks(host: PluginHost) -> None:
    with pytest.raises(HostStateError, match="node 'node-a' is not running, it has no hooks"):
        host.hook.on_tick(host=host.view)
