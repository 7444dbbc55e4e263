"""A network of simulated hosts: the transport and the clock under every node's core.

Every node is a full :class:`~hostsim.host.PluginHost` with its own state directory and the
plugins its host config enables, loaded through the normal plugin manager. All nodes share
one :class:`~hostsim.clock.VirtualClock`, moved by the :class:`~hostsim.sim.engine.Engine`.

Each node's lifecycle (what it dials at start and later, how it retries, when it asks for
peer lists and what it answers, the hooks it calls) is the host core's, shared with the live
node and described once in :mod:`hostsim.core`. This module moves the bytes and the time, and
adds per node:

- **Dial.** After a latency drawn from ``latency_min_ms .. latency_max_ms``, a dial connects
  when the target is up and has a free inbound slot; else it fails with ``on_dial_failed``
  ("connection refused"). A dial to an address nobody listens on fails with "timeout"
  after ``dial_timeout_secs``. The handshake calls ``on_connect`` on both sides: outbound
  with the dialled address; inbound from an ephemeral port with the dialler's listen address.
- **Peer lists.** An answer arrives after a round trip (two latencies).
- **Seeds** are ordinary nodes listed in every node's ``bootstrap_nodes``, with more inbound
  slots (``seed_max_inbound``). A full seed makes room for a new inbound connection by
  dropping its oldest inbound one, if that one is at least two minutes old (time enough to
  have asked for a peer list).
- **Stop.** Whether the node stopped gracefully or crashed, every peer gets
  ``on_disconnect`` for its connection to the node.
- **Ticks.** Every ``tick_interval_secs`` each running node gets one ``on_tick`` (the real
  host ticks about once a second; a longer interval makes large runs cheaper and delays a
  due save by at most one interval).
- **Attackers** behave like ordinary nodes, except during a ``flood``: they answer peer-list
  requests with made-up addresses nobody listens on, and push such lists to every connection;
  and at an ``inbound_attack`` each dials every ordinary node (origin ``"attack"``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from hostsim.addresses import NameTable
from hostsim.clock import DEFAULT_START, VirtualClock
from hostsim.config import HostConfig
from hostsim.convert import overlaid
from hostsim.core import Connection, CorePolicy, NodeCore
from hostsim.errors import HostsimError, ScenarioError
from hostsim.host import SEED_ORIGIN, Dial, PluginHost
from hostsim.metrics import RunMetrics, StartRecord
from hostsim.plugins import (
    EntryPointLike,
    installed_entry_points,
    loaded_once,
    plugins_turned_on,
)
from hostsim.sim.engine import Engine, stream
from hostsim.sim.loading import HookNames
from hostsim.sim.scenario import SimEvent, SimScenario
from hostsim.sim.scratch import scratch_directory

__all__ = ["SimNetwork", "SimNode", "fake_addr", "node_addr", "simulate"]

logger = logging.getLogger(__name__)

SEED_GRACE_SECS = 120.0
"""A full seed only drops an inbound connection this old: long enough for a peer list."""
SIM_PORT = 7447
"""The port every simulated node listens on."""
ATTACK_ORIGIN = "attack"
"""The origin of an attacker's dials at an ``inbound_attack``."""

# First octets of public-looking IPv4 space: no private, loopback, link-local, CGNAT,
# benchmarking, documentation or multicast ranges.
_OCTETS = tuple(o for o in range(11, 224) if o not in (100, 127, 169, 172, 192, 198, 203))
_NODES_PER_GROUP = 4
_FAKE_OCTETS = _OCTETS[::-1]


def node_addr(index: int) -> str:
    """The listen address of the node at ``index``: four nodes per /16, /16s spread widely."""
    group, slot = divmod(index, _NODES_PER_GROUP)
    first, second = divmod(group, 256)
    return f"{_OCTETS[first]}.{second}.{slot * 16 + 1}.{(index * 37) % 250 + 2}:{SIM_PORT}"


def fake_addr(number: int) -> str:
    """A made-up public address nobody listens on, distinct for every ``number``."""
    high, low = divmod(number, 65536)
    return f"{_FAKE_OCTETS[high % 60]}.{low >> 8}.{low & 255}.{(high // 60) % 250 + 1}:9735"


class SimNode:
    """One node of the network: its host core, and who it is in the network."""

    def __init__(self, index: int, name: str, role: str, core: NodeCore) -> None:
        self.index = index
        self.name = name
        self.role = role
        """``"seed"``, ``"node"`` or ``"attacker"``."""
        self.core = core
        self.host = core.host
        self.addr = self.host.config.listen_addrs[0]
        self.ip = self.addr.rpartition(":")[0]
        self.rng = core.rng
        self.record: StartRecord | None = None

    def __repr__(self) -> str:
        return f"<SimNode {self.name} {self.addr} {'up' if self.up else 'down'}>"

    @property
    def up(self) -> bool:
        """Whether the node's process runs."""
        return self.core.up

    @property
    def life(self) -> int:
        """Counts starts and stops, so events of an earlier process are ignored."""
        return self.core.life

    @property
    def conns(self) -> dict[str, Connection]:
        """Connection key (as in ``host.connections``) -> connection; its ``handle`` is the
        remote :class:`SimNode`."""
        return self.core.conns

    @property
    def by_node(self) -> dict[str, str]:
        """Remote node name -> connection key."""
        return self.core.by_node


class _SimWorld:
    """What one node's core asks of the simulated network."""

    __slots__ = ("network", "node")

    def __init__(self, network: SimNetwork) -> None:
        self.network = network
        self.node: SimNode | None = None

    def dial(self, addr: str, origin: str) -> None:
        assert self.node is not None
        self.network.dial(self.node, addr, origin)

    def request_peers(self, key: str, want: int) -> None:
        assert self.node is not None
        remote = self.node.conns[key].handle
        assert isinstance(remote, SimNode)
        self.network.request(self.node, remote, want)

    def call_later(self, delay: float, action: Callable[..., None], *args: Any) -> None:
        self.network.engine.after(delay, action, *args)


@attrs.frozen
class _Flood:
    until: float
    addrs_per_message: int


class SimNetwork:
    """A network of :class:`PluginHost` nodes playing a :class:`SimScenario` with a seed.

    :param scenario: What to simulate.
    :param seed: The run's seed; the same seed gives the same run.
    :param state_dir: Where the nodes keep their state, one directory per node.
    :param extra_plugins_factory: Called with a node's name at each of its starts, for more
        plugins (name -> instance) besides the enabled ones (as :class:`PluginHost` takes).
    :param entry_points: Where enabled plugins are looked up (default: the installed ones).
    :param progress: Called every ``sample_interval_secs`` of simulated time with a line
        saying how far the run is (for a progress display; it must be cheap).
    :param label: What the progress line calls this run, after the scenario's name.
    """

    def __init__(
        self,
        scenario: SimScenario,
        *,
        seed: int,
        state_dir: Path,
        extra_plugins_factory: Callable[[str], Mapping[str, object]] | None = None,
        entry_points: Iterable[EntryPointLike] | None = None,
        start_time: float = DEFAULT_START,
        progress: Callable[[str], None] | None = None,
        label: str | None = None,
    ) -> None:
        self.scenario = scenario
        self.progress = progress
        self.label = label
        self.seed = seed
        self.clock = VirtualClock(start_time)
        self.engine = Engine(self.clock)
        self.metrics = RunMetrics()
        self.rng = stream(seed, "network")
        self._flood: _Flood | None = None
        self._uplink_down_until = -1.0
        """Until when every ordinary node's own uplink is down (``uplink_outage``)."""
        self._fakes = 0
        self._prepared = False
        # One process, many nodes: read the plugins' metadata and import them once.
        eps = loaded_once(installed_entry_points() if entry_points is None else entry_points)
        self._eps = eps
        hook_names = HookNames()  # the plugins' hooks, read once a class for every start
        roles = (
            [("seed", f"seed-{i}") for i in range(scenario.seeds)]
            + [("node", f"node-{i:04d}") for i in range(scenario.nodes)]
            + [("attacker", f"attacker-{i}") for i in range(scenario.attackers)]
        )
        seeds = [node_addr(i) for i in range(scenario.seeds)]
        self.nodes: list[SimNode] = []
        for index, (role, name) in enumerate(roles):
            config = self._config(name, node_addr(index), seeds, Path(state_dir))
            factory = None
            if extra_plugins_factory is not None:
                factory = _bind(extra_plugins_factory, name)
            host = PluginHost(
                config,
                clock=self.clock,
                extra_plugins_factory=factory,
                entry_points=eps,
                resolver=NameTable(),  # seeds are IP literals: nothing to look up
                plugin_manager=hook_names.manager,
            )
            policy = CorePolicy.of(
                config,
                target_outbound=scenario.target_outbound,
                maintain_interval_secs=scenario.maintain_interval_secs,
            )
            world = _SimWorld(self)
            core = NodeCore(host, policy=policy, world=world, rng=stream(seed, name), now=self._now)
            world.node = SimNode(index, name, role, core)
            self.nodes.append(world.node)
        self.by_addr = {node.addr: node for node in self.nodes}
        self.by_name = {node.name: node for node in self.nodes}
        self._seed_addrs = frozenset(seeds)
        self._slots = {
            "seed": scenario.seed_max_inbound,
            "node": scenario.max_inbound,
            "attacker": scenario.max_inbound,
        }

    def _now(self) -> float:
        return self.engine.t

    def _config(self, name: str, addr: str, seeds: list[str], state_dir: Path) -> HostConfig:
        data: dict[str, Any] = {
            "port": SIM_PORT,
            "bootstrap_nodes": [s for s in seeds if s != addr],
            "realm": {"name": self.scenario.realm},
            "node": {"id": name, "state_dir": name, "listen_addrs": [addr]},
            "discovery": attrs.asdict(self.scenario.discovery),
            "network": {"connection_policy": attrs.asdict(self.scenario.connection_policy)},
        }
        data = overlaid(data, self.scenario.host_config)
        if "plugins" not in data:
            data["plugins"] = {"enabled": list(plugins_turned_on(data, self._eps))}
        return HostConfig.from_mapping(data, base_dir=state_dir, source=f"node {name}")

    # -- running -----------------------------------------------------------------------------

    def run(self) -> RunMetrics:
        """Play the scenario to its end; return what was measured.

        Nodes still running at the end stop without a hook, as if the processes were killed.
        """
        try:
            self.run_until(self.scenario.duration_secs)
        finally:
            self.close()
        return self.metrics

    def run_until(self, t: float) -> None:
        """Play the scenario up to ``t`` seconds into the run (a test can step through it)."""
        if not self._prepared:
            self._prepare()
        self.engine.run(t)
        self.metrics.events_run = self.engine.events_run

    def close(self) -> None:
        """Stop every running node without a hook, as if the processes were killed."""
        for node in self.nodes:
            if node.up:
                node.core.stop(graceful=False)

    def _prepare(self) -> None:
        self._prepared = True
        scenario = self.scenario
        engine = self.engine
        for node in self.nodes:
            if node.role == "seed":
                delay = 0.0
            elif node.role == "attacker" and scenario.attackers_start_secs is not None:
                delay = scenario.attackers_start_secs
            else:
                delay = node.rng.uniform(0, scenario.start_spread_secs)
            engine.at(delay, self.start, node, "initial")
        for event in scenario.events:
            engine.at(event.at, self._apply, event)
        engine.at(scenario.tick_interval_secs, self._tick_all)
        engine.at(0.0, self._sample)

    def start(self, node: SimNode, cause: str) -> None:
        """Start a stopped node; its core dials its dial order."""
        if node.up:
            return
        try:
            node.core.start(before_dials=lambda dials: self._record(node, cause, dials))
        except HostsimError as exc:
            if cause == "initial":
                # A node that cannot start at all is a broken setup, not a measurement.
                raise ScenarioError(f"node {node.name} could not start: {exc}") from exc
            logger.error("node %s could not start: %s", node.name, exc)
            self.metrics.failed_starts += 1
            return
        engine = self.engine
        life = node.life
        churn = self.scenario.churn
        if node.role == "node" and churn is not None:
            until = (
                churn.until_secs if churn.until_secs is not None else self.scenario.duration_secs
            )
            leave = max(engine.t, churn.from_secs) + churn.session.draw(node.rng.random())
            if leave < until:
                engine.at(leave, self._churn_leave, node, life)

    def _record(self, node: SimNode, cause: str, dials: list[Dial]) -> None:
        plan = tuple(d.addr for d in dials if d.origin != SEED_ORIGIN)
        record = StartRecord(node.name, node.role, cause, self.engine.t, plan=plan)
        for addr in plan:
            target = self.by_addr.get(addr)
            if target is None:
                record.plan_fake += 1
            elif target.role == "attacker":
                record.plan_attacker += 1
        node.record = record
        self.metrics.starts.append(record)

    def stop(self, node: SimNode, *, graceful: bool) -> None:
        """Stop a running node: its peers see the connections end; then shut down or crash."""
        if not node.up:
            return
        reason = "closed by peer" if graceful else "connection reset by peer"
        for conn in list(node.conns.values()):
            self._drop(_remote(conn), node, reason)
        node.core.stop(graceful=graceful)

    def _drop(self, node: SimNode, remote: SimNode, reason: str) -> None:
        """``node`` sees its connection to ``remote`` end."""
        node.core.disconnected(node.by_node[remote.name], reason)

    # -- dials ---------------------------------------------------------------------------------

    def dial(self, node: SimNode, addr: str, origin: str) -> None:
        """A dial from ``node`` (its core decided it); it completes or fails after a latency
        or a timeout."""
        target = self.by_addr.get(addr)
        record = node.record
        if record is not None:
            record.dials.setdefault(origin, [0, 0])[0] += 1
        delay = self.scenario.dial_timeout_secs if target is None else self._latency(node)
        self.engine.after(delay, self._dial_done, node, node.life, addr, origin)

    def _latency(self, node: SimNode) -> float:
        low = self.scenario.latency_min_ms
        return node.rng.uniform(low, self.scenario.latency_max_ms) / 1000.0

    def _dial_done(self, node: SimNode, life: int, addr: str, origin: str) -> None:
        if node.life != life:
            return
        target = self.by_addr.get(addr)
        if self.engine.t < self._uplink_down_until and "node" in (
            node.role,
            target.role if target is not None else "",
        ):
            error = "network is unreachable"
        elif target is None:
            error = "timeout"
        elif not target.up:
            error = "connection refused"
        elif target.name in node.by_node:
            node.core.dial_abandoned(addr)  # it dialled us meanwhile
            return
        elif len(target.conns) - target.core.outbound >= self._slots[target.role] and not (
            target.role == "seed" and self._evict(target)
        ):
            error = "connection refused: no free inbound slot"
        else:
            self._handshake(node, target, origin)
            return
        node.core.dial_failed(addr, origin, error)

    def _evict(self, seed: SimNode) -> bool:
        """A full seed drops its oldest inbound connection to make room; return whether it did."""
        oldest = self.engine.t - SEED_GRACE_SECS
        for conn in seed.conns.values():
            if conn.since > oldest:
                break  # connections are in the order they were made
            if not conn.outbound:
                remote = _remote(conn)
                self._drop(seed, remote, "evicted: inbound slots full")
                self._drop(remote, seed, "evicted by peer: inbound slots full")
                return True
        return False

    def _handshake(self, node: SimNode, target: SimNode, origin: str) -> None:
        while True:
            key = f"{node.ip}:{49152 + node.rng.randrange(16384)}"
            if key not in target.conns:
                break
        node.core.connected(target.addr, node_id=target.name, direction="outbound", handle=target)
        target.core.connected(
            key, node_id=node.name, direction="inbound", listen_addr=node.addr, handle=node
        )
        if node.record is not None:
            node.record.dials[origin][1] += 1
        self._connected(node)
        self._connected(target)

    def _connected(self, node: SimNode) -> None:
        """Note the times of a start's first connection and of its reaching the target."""
        record = node.record
        if record is None:
            return
        if record.first_connection is None:
            record.first_connection = self.engine.t - record.at
        if record.target_reached is None and len(node.conns) >= self.scenario.target_outbound:
            record.target_reached = self.engine.t - record.at

    # -- peer lists ------------------------------------------------------------------------------

    def request(self, node: SimNode, peer: SimNode, want: int) -> None:
        """``node`` asks ``peer`` for up to ``want`` peers; the answer comes after a round trip."""
        delay = 2 * self._latency(node)
        self.engine.after(delay, self._answer, node, node.life, peer, peer.life, want)

    def _answer(self, node: SimNode, life: int, peer: SimNode, peer_life: int, want: int) -> None:
        if node.life != life or peer.life != peer_life or peer.name not in node.by_node:
            return
        flood = self._flood
        if peer.role == "attacker" and flood is not None and self.engine.t < flood.until:
            addrs = self._fake_list(flood.addrs_per_message)
        else:
            addrs = peer.core.answer(want, exclude=node.addr)
        self._deliver(node, peer, addrs)

    def _fake_list(self, count: int) -> list[str]:
        start = self._fakes
        self._fakes += count
        return [fake_addr(n) for n in range(start, start + count)]

    def _deliver(self, node: SimNode, sender: SimNode, addrs: list[str]) -> None:
        node.core.peer_list(node.by_node[sender.name], addrs)

    def _push_fakes(self, node: SimNode, life: int, interval: float) -> None:
        flood = self._flood
        if node.life != life or flood is None or self.engine.t >= flood.until:
            return
        for conn in list(node.conns.values()):
            remote = _remote(conn)
            addrs = self._fake_list(flood.addrs_per_message)
            self.engine.after(self._latency(node), self._pushed, remote, remote.life, node, addrs)
        self.engine.after(interval, self._push_fakes, node, life, interval)

    def _pushed(self, node: SimNode, life: int, sender: SimNode, addrs: list[str]) -> None:
        if node.life == life and sender.name in node.by_node:
            self._deliver(node, sender, addrs)

    # -- lifecycle events ------------------------------------------------------------------------

    def _apply(self, event: SimEvent) -> None:
        engine = self.engine
        match event.do:
            case "restart" | "crash":
                node = self.by_name.get(event.node or "")
                if node is None:
                    logger.warning("event %s at t=%s: no node %r", event.do, event.at, event.node)
                    return
                if node.up:
                    self.stop(node, graceful=event.do == "restart")
                    engine.after(event.downtime_secs, self.start, node, event.do)
            case "mass_restart":
                ordinary = [n for n in self.nodes if n.role == "node" and n.up]
                count = round(event.fraction * len(ordinary))
                chosen = ordinary if count == len(ordinary) else self.rng.sample(ordinary, count)
                for node in sorted(chosen, key=lambda n: n.index):
                    self.stop(node, graceful=event.graceful)
                for node in sorted(chosen, key=lambda n: n.index):
                    down = node.rng.uniform(event.downtime_min_secs, event.downtime_max_secs)
                    engine.after(down, self.start, node, "mass_restart")
            case "seed_outage":
                assert event.until is not None
                for node in self.nodes:
                    if node.role == "seed" and node.up:
                        self.stop(node, graceful=False)
                        engine.at(event.until, self.start, node, "seed_outage")
            case "uplink_outage":
                assert event.until is not None
                self._uplink_down_until = event.until
                for node in self.nodes:
                    if node.role == "node" and node.up:
                        for conn in list(node.conns.values()):
                            self._drop(_remote(conn), node, "connection timed out")
                            self._drop(node, _remote(conn), "connection timed out")
            case "flood":
                assert event.until is not None
                self._flood = _Flood(event.until, event.addrs_per_message)
                for node in self.nodes:
                    if node.role == "attacker" and node.up:
                        self._push_fakes(node, node.life, event.push_interval_secs)
            case "inbound_attack":
                targets = [n for n in self.nodes if n.role == "node" and n.up]
                for attacker in self.nodes:
                    if attacker.role == "attacker" and attacker.up:
                        for target in targets:
                            attacker.core.dial(target.addr, ATTACK_ORIGIN)

    def _churn_leave(self, node: SimNode, life: int) -> None:
        churn = self.scenario.churn
        if node.life != life or churn is None:
            return
        graceful = node.rng.random() >= churn.crash_fraction
        self.stop(node, graceful=graceful)
        self.engine.after(churn.downtime.draw(node.rng.random()), self.start, node, "churn")

    # -- time ------------------------------------------------------------------------------------

    def _tick_all(self) -> None:
        for node in self.nodes:
            if node.up:
                node.core.tick()
        self.engine.after(self.scenario.tick_interval_secs, self._tick_all)

    def _sample(self) -> None:
        ordinary = 0
        connected = 0
        honest_conns = 0
        attacker_conns = 0
        for node in self.nodes:
            if node.role == "attacker":
                continue
            if node.role == "node":
                ordinary += 1
                connected += bool(node.conns)
            for conn in node.conns.values():
                honest_conns += 1
                attacker_conns += _remote(conn).role == "attacker"
        metrics = self.metrics
        if self.progress is not None:
            run = (
                self.scenario.name if self.label is None else f"{self.scenario.name}, {self.label}"
            )
            up = sum(1 for node in self.nodes if node.role == "node" and node.up)
            self.progress(
                f"{run}: {self.engine.t:.0f} of"
                f" {self.scenario.duration_secs:.0f} s simulated; {up}/{ordinary} nodes up,"
                f" {connected} connected"
            )
        metrics.series_t.append(self.engine.t)
        metrics.series_connected.append(connected / ordinary if ordinary else 0.0)
        if self.scenario.attackers:
            metrics.attacker_conn_samples.append(
                attacker_conns / honest_conns if honest_conns else 0.0
            )
        self.engine.after(self.scenario.sample_interval_secs, self._sample)


def simulate(
    scenario: SimScenario,
    *,
    seed: int,
    state_dir: Path | None = None,
    extra_plugins_factory: Callable[[str], Mapping[str, object]] | None = None,
    entry_points: Iterable[EntryPointLike] | None = None,
    progress: Callable[[str], None] | None = None,
    label: str | None = None,
) -> RunMetrics:
    """Run ``scenario`` with ``seed``; without ``state_dir`` the nodes' files go to a temporary
    directory that is removed afterwards, in memory where there is room
    (:func:`~hostsim.sim.scratch.scratch_directory`). ``progress`` and ``label`` are as
    :class:`SimNetwork` takes them."""
    if state_dir is not None:
        network = SimNetwork(
            scenario,
            seed=seed,
            state_dir=state_dir,
            extra_plugins_factory=extra_plugins_factory,
            entry_points=entry_points,
            progress=progress,
            label=label,
        )
        return network.run()
    with scratch_directory("hostsim-sim-", scenario.size) as tmp:
        return simulate(
            scenario,
            seed=seed,
            state_dir=Path(tmp),
            extra_plugins_factory=extra_plugins_factory,
            entry_points=entry_points,
            progress=progress,
            label=label,
        )


def _remote(conn: Connection) -> SimNode:
    remote = conn.handle
    assert isinstance(remote, SimNode)
    return remote


def _bind(
    factory: Callable[[str], Mapping[str, object]], name: str
) -> Callable[[], Mapping[str, object]]:
    return lambda: factory(name)
