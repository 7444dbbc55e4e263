"""A network of simulated hosts: dials, handshakes, peer lists, lifecycle events and churn.

Every node is a full :class:`~hostsim.host.SimHost` with its own state directory and the
plugins its host config enables, loaded through the normal plugin manager. All nodes share
one :class:`~hostsim.clock.VirtualClock`, moved by the :class:`~hostsim.sim.engine.Engine`.

The model, per node:

- **Start.** The host's dial order (the plugins' lists, then the seeds) is dialled at once
  and becomes the node's in-memory address book. A restarted process remembers nothing else.
- **Dial.** After a latency drawn from ``latency_min_ms .. latency_max_ms``, a dial connects
  when the target is up and has a free inbound slot; else it fails with ``on_dial_failed``
  ("connection refused"). A dial to an address nobody listens on fails with "timeout"
  after ``dial_timeout_secs``. The handshake calls ``on_connect`` on both sides: outbound
  with the dialled address; inbound from an ephemeral port with the dialler's listen address.
- **Peer lists.** Every ``[discovery] request_interval_secs`` after its start, a node asks one
  random connection for a peer list (TheNodes' defaults: every 90 s, want 16; none at all when
  ``[discovery] enabled`` is false). The answer (after a round trip) holds up to the request's
  ``request_want`` addresses from the peer's connections and address book. The receiving host
  calls ``on_peer_list`` with the whole list and keeps the first ``request_want`` addresses in
  its book (at most 1,000 addresses, oldest out).
- **Seeds** are ordinary nodes listed in every node's ``bootstrap_nodes``, with more inbound
  slots (``seed_max_inbound``). A full seed makes room for a new inbound connection by
  dropping its oldest inbound one, if that one is at least two minutes old (time enough to
  have asked for a peer list).
- **Outbound target.** Every ``maintain_interval_secs`` (and when a peer list arrives) a node
  below ``target_outbound`` dials addresses from its book it is not connected to, skipping
  addresses that failed recently (30 s, doubling per failure, at most 10 minutes), and
  skipping the seeds unless it has no connection at all.
- **Stop.** A graceful stop calls ``on_shutdown``; a crash calls nothing. Either way every
  peer gets ``on_disconnect`` for its connection to the node.
- **Ticks.** Every ``tick_interval_secs`` each running node gets one ``on_tick`` (the real
  host ticks about once a second; a longer interval makes large runs cheaper and delays a
  due save by at most one interval).
- **Attackers** behave like ordinary nodes, except during a ``flood``: they answer peer-list
  requests with made-up addresses nobody listens on, and push such lists to every connection.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from hostsim.addresses import NameTable
from hostsim.clock import DEFAULT_START, VirtualClock
from hostsim.config import HostConfig
from hostsim.errors import HostsimError, ScenarioError
from hostsim.host import SEED_ORIGIN, SimHost
from hostsim.plugins import EntryPointLike, installed_entry_points, loaded_once
from hostsim.sim.engine import Engine, stream
from hostsim.sim.metrics import RunMetrics, StartRecord
from hostsim.sim.scenario import SimEvent, SimScenario

__all__ = ["SimNetwork", "SimNode", "fake_addr", "node_addr", "report", "simulate"]

logger = logging.getLogger(__name__)

BOOK_LIMIT = 1000
"""Addresses a node keeps in memory."""
RETRY_BASE_SECS = 30.0
RETRY_MAX_SECS = 600.0
SEED_GRACE_SECS = 120.0
"""A full seed only drops an inbound connection this old: long enough for a peer list."""
BOOK_ORIGIN = "book"
SIM_PORT = 7447
"""The port every simulated node listens on."""
"""The origin of a dial a node makes from its address book, after its start."""

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
    """One node of the network: its host, and what its process holds in memory."""

    def __init__(self, index: int, name: str, role: str, host: SimHost, seed: int) -> None:
        self.index = index
        self.name = name
        self.role = role
        """``"seed"``, ``"node"`` or ``"attacker"``."""
        self.host = host
        self.addr = host.config.listen_addrs[0]
        self.ip = self.addr.rpartition(":")[0]
        self.rng = stream(seed, name)
        self.up = False
        self.life = 0
        """Counts starts and stops, so events of an earlier process are ignored."""
        self.conns: dict[str, tuple[SimNode, bool, float]] = {}
        """Connection key (as in ``host.connections``) -> (remote node, outbound, since)."""
        self.by_node: dict[str, str] = {}
        """Remote node name -> connection key."""
        self.outbound = 0
        self.dialing: set[str] = set()
        self.book: dict[str, None] = {}
        self.failures: dict[str, tuple[int, float]] = {}
        self.record: StartRecord | None = None

    def __repr__(self) -> str:
        return f"<SimNode {self.name} {self.addr} {'up' if self.up else 'down'}>"

    def learn(self, addrs: Iterable[str]) -> None:
        """Add addresses to the in-memory book, dropping the oldest beyond the limit."""
        book = self.book
        for addr in addrs:
            if addr not in book and addr != self.addr:
                book[addr] = None
                if len(book) > BOOK_LIMIT:
                    del book[next(iter(book))]


@attrs.frozen
class _Flood:
    until: float
    addrs_per_message: int


class SimNetwork:
    """A network of :class:`SimHost` nodes playing a :class:`SimScenario` with a seed.

    :param scenario: What to simulate.
    :param seed: The run's seed; the same seed gives the same run.
    :param state_dir: Where the nodes keep their state, one directory per node.
    :param extra_plugins_factory: Called with a node's name at each of its starts, for more
        plugins (name -> instance) besides the enabled ones (as :class:`SimHost` takes).
    :param entry_points: Where enabled plugins are looked up (default: the installed ones).
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
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.clock = VirtualClock(start_time)
        self.engine = Engine(self.clock)
        self.metrics = RunMetrics()
        self.rng = stream(seed, "network")
        self._flood: _Flood | None = None
        self._fakes = 0
        self._prepared = False
        # One process, many nodes: read the plugins' metadata and import them once.
        eps = loaded_once(installed_entry_points() if entry_points is None else entry_points)
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
            host = SimHost(
                config,
                clock=self.clock,
                extra_plugins_factory=factory,
                entry_points=eps,
                resolver=NameTable(),  # seeds are IP literals: nothing to look up
            )
            self.nodes.append(SimNode(index, name, role, host, seed))
        self.by_addr = {node.addr: node for node in self.nodes}
        self.by_name = {node.name: node for node in self.nodes}
        self._seed_addrs = frozenset(seeds)
        self._slots = {
            "seed": scenario.seed_max_inbound,
            "node": scenario.max_inbound,
            "attacker": scenario.max_inbound,
        }

    def _config(self, name: str, addr: str, seeds: list[str], state_dir: Path) -> HostConfig:
        data: dict[str, Any] = {
            "port": SIM_PORT,
            "bootstrap_nodes": [s for s in seeds if s != addr],
            "realm": {"name": self.scenario.realm},
            "node": {"id": name, "state_dir": name, "listen_addrs": [addr]},
            "discovery": attrs.asdict(self.scenario.discovery),
            "network": {"persistence": dict(self.scenario.persistence)},
            "plugins": {"enabled": ["peerstore"]},
        }
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
            if node.host.running:
                node.host.crash()
            node.up = False

    def _prepare(self) -> None:
        self._prepared = True
        scenario = self.scenario
        engine = self.engine
        for node in self.nodes:
            delay = 0.0 if node.role == "seed" else node.rng.uniform(0, scenario.start_spread_secs)
            engine.at(delay, self.start, node, "initial")
        for event in scenario.events:
            engine.at(event.at, self._apply, event)
        engine.at(scenario.tick_interval_secs, self._tick_all)
        engine.at(0.0, self._sample)

    def start(self, node: SimNode, cause: str) -> None:
        """Start a stopped node and dial its dial order."""
        if node.up:
            return
        try:
            dials = node.host.start()
        except HostsimError as exc:
            if cause == "initial":
                # A node that cannot start at all is a broken setup, not a measurement.
                raise ScenarioError(f"node {node.name} could not start: {exc}") from exc
            logger.error("node %s could not start: %s", node.name, exc)
            self.metrics.failed_starts += 1
            return
        node.up = True
        node.life += 1
        node.book = {}
        node.failures = {}
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
        node.learn(d.addr for d in dials)
        for dial in dials:
            self.dial(node, dial.addr, dial.origin)
        engine = self.engine
        life = node.life
        discovery = node.host.config.discovery
        if discovery.enabled:
            engine.after(discovery.request_interval_secs, self._gossip, node, life)
        engine.after(self.scenario.maintain_interval_secs, self._maintain, node, life)
        churn = self.scenario.churn
        if node.role == "node" and churn is not None:
            until = (
                churn.until_secs if churn.until_secs is not None else self.scenario.duration_secs
            )
            leave = max(engine.t, churn.from_secs) + churn.session.draw(node.rng.random())
            if leave < until:
                engine.at(leave, self._churn_leave, node, life)

    def stop(self, node: SimNode, *, graceful: bool) -> None:
        """Stop a running node: its peers see the connections end; then shut down or crash."""
        if not node.up:
            return
        reason = "closed by peer" if graceful else "connection reset by peer"
        for remote, _, _ in list(node.conns.values()):
            self._drop(remote, node, reason)
        node.conns.clear()
        node.by_node.clear()
        node.outbound = 0
        node.dialing.clear()
        node.up = False
        node.life += 1
        if graceful:
            node.host.shutdown()
        else:
            node.host.crash()

    def _drop(self, node: SimNode, remote: SimNode, reason: str) -> None:
        """``node`` sees its connection to ``remote`` end."""
        key = node.by_node.pop(remote.name)
        _, outbound, _ = node.conns[key]
        node.host.disconnect(key, reason)
        del node.conns[key]
        if outbound:
            node.outbound -= 1

    # -- dials ---------------------------------------------------------------------------------

    def dial(self, node: SimNode, addr: str, origin: str) -> None:
        """Start a dial from ``node``; it completes or fails after a latency or a timeout."""
        target = self.by_addr.get(addr)
        if addr in node.dialing or addr == node.addr:
            return
        if target is not None and target.name in node.by_node:
            return
        node.dialing.add(addr)
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
        node.dialing.discard(addr)
        target = self.by_addr.get(addr)
        if target is None:
            error = "timeout"
        elif not target.up:
            error = "connection refused"
        elif target.name in node.by_node:
            return  # it dialled us meanwhile
        elif len(target.conns) - target.outbound >= self._slots[target.role] and not (
            target.role == "seed" and self._evict(target)
        ):
            error = "connection refused: no free inbound slot"
        else:
            self._handshake(node, target, origin)
            return
        node.host.dial_failed(addr, error)
        count = node.failures.get(addr, (0, 0.0))[0] + 1
        wait = min(RETRY_BASE_SECS * 2 ** (count - 1), RETRY_MAX_SECS)
        node.failures[addr] = (count, self.engine.t + wait)

    def _evict(self, seed: SimNode) -> bool:
        """A full seed drops its oldest inbound connection to make room; return whether it did."""
        oldest = self.engine.t - SEED_GRACE_SECS
        for remote, outbound, since in seed.conns.values():
            if since > oldest:
                break  # connections are in the order they were made
            if not outbound:
                self._drop(seed, remote, "evicted: inbound slots full")
                self._drop(remote, seed, "evicted by peer: inbound slots full")
                return True
        return False

    def _handshake(self, node: SimNode, target: SimNode, origin: str) -> None:
        node.host.connect(target.addr, node_id=target.name, direction="outbound")
        while True:
            key = f"{node.ip}:{49152 + node.rng.randrange(16384)}"
            if key not in target.conns:
                break
        target.host.connect(key, node_id=node.name, direction="inbound", listen_addr=node.addr)
        now = self.engine.t
        node.conns[target.addr] = (target, True, now)
        node.by_node[target.name] = target.addr
        node.outbound += 1
        target.conns[key] = (node, False, now)
        target.by_node[node.name] = key
        node.failures.pop(target.addr, None)
        node.learn((target.addr,))
        target.learn((node.addr,))
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

    def _request(self, node: SimNode, peer: SimNode) -> None:
        """``node`` asks ``peer`` for a peer list; the answer comes after a round trip."""
        delay = 2 * self._latency(node)
        self.engine.after(delay, self._answer, node, node.life, peer, peer.life)

    def _answer(self, node: SimNode, life: int, peer: SimNode, peer_life: int) -> None:
        if node.life != life or peer.life != peer_life or peer.name not in node.by_node:
            return
        flood = self._flood
        if peer.role == "attacker" and flood is not None and self.engine.t < flood.until:
            addrs = self._fake_list(flood.addrs_per_message)
        else:
            want = node.host.config.discovery.request_want
            addrs = self._honest_list(peer, exclude=node.addr, want=want)
        self._deliver(node, peer, addrs)

    def _honest_list(self, peer: SimNode, exclude: str, want: int) -> list[str]:
        """Up to ``want`` addresses: half from the peer's connections, the rest from its book,
        never the requester's own. A seed has a thousand connections, so draw first (copying a
        list is cheap) and filter the few drawn."""
        half = want // 2
        conns = list(peer.conns.values())
        if len(conns) > half + 1:
            conns = peer.rng.sample(conns, half + 1)
        chosen = [remote.addr for remote, _, _ in conns if remote.addr != exclude][:half]
        taken = {*chosen, exclude}
        room = want - len(chosen)
        book = list(peer.book)
        if len(book) > room + len(taken):
            book = peer.rng.sample(book, room + len(taken))
        chosen += [addr for addr in book if addr not in taken][:room]
        return chosen

    def _fake_list(self, count: int) -> list[str]:
        start = self._fakes
        self._fakes += count
        return [fake_addr(n) for n in range(start, start + count)]

    def _deliver(self, node: SimNode, sender: SimNode, addrs: list[str]) -> None:
        node.host.peer_list(node.by_node[sender.name], addrs)
        node.learn(addrs[: node.host.config.discovery.request_want])
        self._fill(node)

    def _gossip(self, node: SimNode, life: int) -> None:
        if node.life != life:
            return
        if node.conns:
            keys = list(node.conns)
            peer = node.conns[keys[node.rng.randrange(len(keys))]][0]
            self._request(node, peer)
        interval = node.host.config.discovery.request_interval_secs
        self.engine.after(interval, self._gossip, node, life)

    def _push_fakes(self, node: SimNode, life: int, interval: float) -> None:
        flood = self._flood
        if node.life != life or flood is None or self.engine.t >= flood.until:
            return
        for remote, _, _ in list(node.conns.values()):
            addrs = self._fake_list(flood.addrs_per_message)
            self.engine.after(self._latency(node), self._pushed, remote, remote.life, node, addrs)
        self.engine.after(interval, self._push_fakes, node, life, interval)

    def _pushed(self, node: SimNode, life: int, sender: SimNode, addrs: list[str]) -> None:
        if node.life == life and sender.name in node.by_node:
            self._deliver(node, sender, addrs)

    # -- keeping connections -----------------------------------------------------------------------

    def _fill(self, node: SimNode) -> None:
        """Dial known addresses until the dials in flight could reach the outbound target."""
        deficit = self.scenario.target_outbound - node.outbound - len(node.dialing)
        if deficit <= 0:
            return
        now = self.engine.t
        by_addr = self.by_addr
        failures = node.failures
        # Seeds are for bootstrapping: a node that has a connection leaves them to newcomers.
        seeds = self._seed_addrs if node.conns else frozenset()
        candidates = []
        for addr in node.book:
            if addr in node.dialing or addr in seeds:
                continue
            target = by_addr.get(addr)
            if target is not None and target.name in node.by_node:
                continue
            failure = failures.get(addr)
            if failure is not None and failure[1] > now:
                continue
            candidates.append(addr)
        if len(candidates) > deficit:
            candidates = node.rng.sample(candidates, deficit)
        for addr in candidates:
            self.dial(node, addr, BOOK_ORIGIN)

    def _maintain(self, node: SimNode, life: int) -> None:
        if node.life != life:
            return
        self._fill(node)
        self.engine.after(self.scenario.maintain_interval_secs, self._maintain, node, life)

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
            case "flood":
                assert event.until is not None
                self._flood = _Flood(event.until, event.addrs_per_message)
                for node in self.nodes:
                    if node.role == "attacker" and node.up:
                        self._push_fakes(node, node.life, event.push_interval_secs)

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
                node.host.tick()
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
            for remote, _, _ in node.conns.values():
                honest_conns += 1
                attacker_conns += remote.role == "attacker"
        metrics = self.metrics
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
) -> RunMetrics:
    """Run ``scenario`` with ``seed``; without ``state_dir`` the nodes' files go to a temporary
    directory that is removed afterwards."""
    if state_dir is not None:
        network = SimNetwork(
            scenario,
            seed=seed,
            state_dir=state_dir,
            extra_plugins_factory=extra_plugins_factory,
            entry_points=entry_points,
        )
        return network.run()
    with tempfile.TemporaryDirectory(prefix="hostsim-sim-") as tmp:
        return simulate(
            scenario,
            seed=seed,
            state_dir=Path(tmp),
            extra_plugins_factory=extra_plugins_factory,
            entry_points=entry_points,
        )


def report(scenario: SimScenario, seed: int, metrics: RunMetrics) -> dict[str, Any]:
    """A run as JSON data: what was run, the summary, the series and every start."""
    return {
        "scenario": scenario.name,
        "seed": seed,
        "persistence": scenario.persistence_enabled,
        "nodes": scenario.nodes,
        "seeds": scenario.seeds,
        "attackers": scenario.attackers,
        "duration_secs": scenario.duration_secs,
        "events_run": metrics.events_run,
        **metrics.to_json(),
    }


def _bind(
    factory: Callable[[str], Mapping[str, object]], name: str
) -> Callable[[], Mapping[str, object]]:
    return lambda: factory(name)
