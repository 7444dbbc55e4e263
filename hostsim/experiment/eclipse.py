"""The restart-eclipse experiment: an attacker with many addresses against restarting victims.

A network of honest nodes (and seeds) forms; then an attacker who controls ``addresses``
addresses spread over ``groups`` network groups (/16) attacks for ``attack_secs``: it connects
in to every honest node (every free inbound slot of a victim, from up to half its addresses),
pushes lists of its own addresses on its connections every ``push_interval_secs``, answers
peer requests with its own addresses only, and completes the handshake of any dial to any of
its addresses.
Then each victim is cut off from a share of the honest network (``cuts``: 0%, 90%, 100% of
honest nodes and seeds: every dial between them times out) and restarts gracefully; the
attacker goes on. An hour after the restart the cut-off ends (100%: the partition heals).
The experiment measures, per victim: the attacker's entries in the restart plan; at 60 s and
1 h after the start, its outbound connections, to the attacker and to honest nodes; whether
it keeps an honest one, beside the oracle's bound (whether its plan and seeds hold an honest
address that runs and that it can reach); whether it has none at all (isolated: a failure,
never a success); whether every one goes to the attacker (eclipsed), and when that first
happened; and, once the cut-off ends, how long until it holds an honest outbound peer again.

The attacker is one entity, not a node per address: a dial to one of its addresses makes a
lightweight :class:`_Persona` for that address (a :class:`SimNode` without a host or plugins),
so 65,536 addresses cost only the ones that are connected.

Each run is played twice with one seed: the victims with the peer store, and with seeds only.
Only the victims differ between the arms: the other honest nodes run without a store in both
(a store acts only at a node's start, the host dials its plan then, and these nodes reach the
victims only through what they answer), which keeps a day of a thousand nodes affordable.
Honest nodes other than the victims and seeds churn (exponential sessions, Weibull downtimes),
so victims lose outbound peers and dial again from what they learnt, as in a real network.
"""

from __future__ import annotations

import importlib
import logging
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from hostsim.config import HostConfig
from hostsim.core import Connection, NodeCore
from hostsim.experiment.arms import SEEDS_ONLY, STORE, Arm
from hostsim.experiment.demo import require_matplotlib
from hostsim.experiment.report import Target
from hostsim.host import Peer
from hostsim.metrics import median_or_never
from hostsim.sim.engine import stream
from hostsim.sim.network import _OCTETS, SIM_PORT, SimNetwork, SimNode
from hostsim.sim.scenario import Distribution, SimScenario
from hostsim.sim.scratch import scratch_directory

__all__ = [
    "INTACT_SHARE_1H_TARGET",
    "INTACT_SHARE_60S_TARGET",
    "REGAIN_TARGET_SECS",
    "EclipseResult",
    "EclipseSpec",
    "attacker_addr",
    "check_eclipse_targets",
    "format_eclipse",
    "plot_eclipse",
    "run_eclipse",
    "run_once",
]

logger = logging.getLogger(__name__)

MAX_ADDRESSES = 65_536
MAX_GROUPS = 256
INTACT_SHARE_60S_TARGET = 0.03
"""With nothing cut off, the attacker's share of outbound connections 60 s after the restart
is at most this."""
INTACT_SHARE_1H_TARGET = 0.05
"""... and an hour after the restart."""
PARTIAL_CUT = 0.9
"""The cut-off share whose victims are measured against the oracle's bound."""
REGAIN_TARGET_SECS = 60.0
"""When a partition (everything honest cut off) ends, the median victim holds an honest
outbound peer again within this many seconds."""
RESTART_CAUSE = "eclipse-restart"
PUSHES_PER_INTERVAL = 4
"""Attacker connections of one node that push a list each interval. More adds nothing a victim
keeps: its book takes 16 addresses of a list, and its store takes 128 new gossip entries an
hour per sender /16; at a node's start every attacker connection pushes at once."""
SAVE_INTERVAL_SECS = 3600
"""The victims' ``save_interval_secs``: they stop gracefully (a save) before the restart that
is measured, so a save a minute would only cost time."""
EARLY_SECS = 60.0
LATE_SECS = 3600.0
"""The late measure, and the end of every cut-off (the partition heals then)."""
_TIMES = ("60s", "1h")

# /8s no honest node (the first few of the simulator's octets) nor a made-up flood address (the
# last 60) uses: group g is (first octet g % 100, second octet g // 100).
_ATTACK_OCTETS = _OCTETS[40:140]
_OCTET_INDEX = {octet: i for i, octet in enumerate(_ATTACK_OCTETS)}


def _fraction_list(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not value or not all(0.0 <= v <= 1.0 for v in value):
        raise ValueError(f"{attribute.name}: every share must be between 0 and 1")


@attrs.frozen
class EclipseSpec:
    """One eclipse experiment: the network, the attacker, the timeline."""

    addresses: int = 4096
    """Addresses the attacker controls (at most 65,536)."""
    groups: int = 64
    """Network groups (/16) the addresses are spread over (at most 256)."""
    attack_secs: float = 3600.0
    """How long the attacker works on the network before the victims restart."""
    cuts: tuple[float, ...] = attrs.field(default=(0.0, 0.9, 1.0), validator=_fraction_list)
    """Shares of honest peers cut off from a victim before it restarts; one set of victims each."""
    honest: int = 200
    """Honest nodes, victims included (seeds besides)."""
    seeds: int = 4
    victims: int = 5
    """Victims per cut-off share."""
    warmup_secs: float = 600.0
    """Time the network has to form before the attack."""
    downtime_secs: float = 30.0
    after_secs: float = 4 * 3600.0
    """How long the victims are watched after they start again (at least 2 h: their cut-off
    ends after 1 h)."""
    session_mean_secs: float = 7200.0
    """Mean session of a churning honest node (exponential); 0: no churn."""
    downtime_scale_secs: float = 600.0
    """Scale of a churning node's downtime (Weibull, shape 0.5)."""
    push_interval_secs: float = 90.0
    tick_interval_secs: float = 60.0
    """How often every node gets ``on_tick`` (a due save comes at most this much later)."""
    watch_interval_secs: float = 10.0
    """How often a restarted victim's connections are looked at (time-to-eclipse resolution)."""

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.addresses <= MAX_ADDRESSES:
            raise ValueError(f"addresses = {self.addresses}: must be 1 to {MAX_ADDRESSES:,}")
        if not 1 <= self.groups <= min(MAX_GROUPS, self.addresses):
            raise ValueError(
                f"groups = {self.groups}: must be 1 to {MAX_GROUPS}, and not above addresses"
            )
        if self.victims < 1 or self.victims * len(self.cuts) > self.honest:
            raise ValueError(
                f"victims = {self.victims} per cut-off share: {len(self.cuts)} shares need"
                f" at most {self.honest} honest nodes"
            )
        if self.attack_secs <= 0:
            raise ValueError(f"attack_secs = {self.attack_secs:g}: must be positive")
        if self.after_secs < 2 * LATE_SECS:
            raise ValueError(
                f"after_secs = {self.after_secs:g}: must be at least {2 * LATE_SECS:g}"
                " (an hour cut off, then an hour to regain honest peers)"
            )

    @property
    def restart_at(self) -> float:
        """When the victims stop (and their cut-off begins)."""
        return self.warmup_secs + self.attack_secs

    def scenario(self, store: bool) -> SimScenario:
        """The honest network, with the victims' peer store enabled or not."""
        scenario = SimScenario(
            name="eclipse",
            nodes=self.honest,
            seeds=self.seeds,
            attackers=0,
            duration_secs=self.restart_at + self.downtime_secs + self.after_secs,
            tick_interval_secs=self.tick_interval_secs,
            sample_interval_secs=max(600.0, self.tick_interval_secs),
            host_config={"network": {"persistence": {"save_interval_secs": SAVE_INTERVAL_SECS}}},
        )
        return _arm(store).on(scenario)

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON data."""
        data = attrs.asdict(self)
        data["cuts"] = list(self.cuts)
        return data


def _arm(store: bool) -> Arm:
    return STORE if store else SEEDS_ONLY


def attacker_addr(index: int, groups: int) -> str:
    """The attacker's address number ``index`` when its addresses span ``groups`` /16s:
    consecutive numbers lie in different groups."""
    host, group = divmod(index, groups)
    high, low = divmod(host, 256)
    return f"{_ATTACK_OCTETS[group % 100]}.{group // 100}.{high}.{low}:{SIM_PORT}"


def _attacker_index(addr: str, spec: EclipseSpec) -> int | None:
    ip, _, port = addr.rpartition(":")
    parts = ip.split(".")
    if port != str(SIM_PORT) or len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    first, second, high, low = (int(p) for p in parts)
    column = _OCTET_INDEX.get(first)
    if column is None:
        return None
    group = second * 100 + column
    index = (high * 256 + low) * spec.groups + group
    if group >= spec.groups or index >= spec.addresses:
        return None
    return index if attacker_addr(index, spec.groups) == addr else None


class _PersonaCore(NodeCore):
    """What a persona needs of a node core: its connections. No host, no plugins, no timers."""

    def __init__(self, attacker: _Attacker) -> None:  # no super().__init__: nothing to host
        self.attacker = attacker
        self.up = True
        self.life = 1
        self.conns = {}
        self.by_node = {}
        self.by_addr = {}
        self.outbound = 0
        self.dialing = set()

    def connected(
        self,
        key: str,
        *,
        node_id: str,
        direction: Any,
        listen_addr: str | None = None,
        capabilities: Any = (),
        handle: object = None,
        cert_fingerprint: str | None = None,
    ) -> Connection:
        peer = Peer(node_id, key, direction, listen_addr, cert_fingerprint=cert_fingerprint)
        conn = Connection(peer, listen_addr if direction == "inbound" else key, 0.0, handle)
        self.conns[key] = conn
        self.by_node[node_id] = key
        if direction == "outbound":
            self.outbound += 1
        return conn

    def disconnected(self, key: str, reason: str) -> Connection | None:
        conn = self.conns.pop(key, None)
        if conn is None:
            return None
        if self.by_node.get(conn.peer.node_id) == key:
            del self.by_node[conn.peer.node_id]
        if conn.outbound:
            self.outbound -= 1
        return conn

    def answer(self, want: int, exclude: str | None) -> list[str]:
        return self.attacker.gossip(want)

    def dial_abandoned(self, addr: str) -> None:
        pass


class _Persona(SimNode):
    """One of the attacker's addresses, as the network sees it: a node that answers dials."""

    def __init__(self, attacker: _Attacker, addr: str) -> None:  # no super().__init__: no host
        self.index = -1
        self.name = f"attacker {addr}"
        self.role = "attacker"
        self.core = _PersonaCore(attacker)
        self.addr = addr
        self.ip = addr.rpartition(":")[0]
        self.rng = attacker.rng
        self.record = None


class _Attacker:
    """The attacker entity: its addresses, its personas, and what it gossips."""

    def __init__(self, spec: EclipseSpec, seed: int) -> None:
        self.spec = spec
        self.rng = stream(seed, "attacker")
        self.active = False
        self.personas: dict[str, _Persona] = {}
        self.addrs = [attacker_addr(i, spec.groups) for i in range(spec.addresses)]
        self._cursor = 0

    def persona(self, addr: str) -> _Persona | None:
        """The persona answering at ``addr``, or None when ``addr`` is not the attacker's (or
        the attack has not begun)."""
        if not self.active:
            return None
        persona = self.personas.get(addr)
        if persona is None and _attacker_index(addr, self.spec) is not None:
            persona = self.personas[addr] = _Persona(self, addr)
        return persona

    def persona_at(self, index: int) -> _Persona:
        persona = self.persona(self.addrs[index % self.spec.addresses])
        assert persona is not None
        return persona

    def gossip(self, count: int) -> list[str]:
        """The next ``count`` of its addresses, round the whole range (so across groups)."""
        addrs = self.addrs
        start = self._cursor
        end = start + min(count, len(addrs))
        self._cursor = end % len(addrs)
        if end <= len(addrs):
            return addrs[start:end]
        return addrs[start:] + addrs[: end - len(addrs)]


class _Directory(dict[str, SimNode]):
    """The network's address -> node table, which also finds the attacker's personas."""

    def __init__(self, nodes: dict[str, SimNode], attacker: _Attacker) -> None:
        super().__init__(nodes)
        self.attacker = attacker

    def get(self, addr: str, default: Any = None) -> Any:
        node = super().get(addr)
        if node is None:
            node = self.attacker.persona(addr)
        return default if node is None else node


@attrs.define
class _Watch:
    """One victim after its restart."""

    name: str
    cut: float
    started: float | None = None
    plan: tuple[str, ...] = ()
    plan_attacker: int = 0
    knows_honest: int = 0
    """Addresses of its plan and seeds that are honest, running and not cut off at its start:
    what an oracle of reachability would let it dial."""
    early: tuple[int, int] | None = None
    """(attacker, all) outbound connections 60 s after the start."""
    late: tuple[int, int] | None = None
    eclipsed_after: float | None = None
    healed_at: float | None = None
    """When its cut-off ended (within the minute after the +1 h measures)."""
    regained_after: float | None = None
    """Seconds from the end of the cut-off until it held an honest outbound peer (0: it held
    one then already); None: not within the watch."""

    def to_json(self) -> dict[str, Any]:
        return {
            "victim": self.name,
            "cut": self.cut,
            "plan": list(self.plan),
            "plan_attacker": self.plan_attacker,
            "knows_honest": self.knows_honest,
            "outbound_60s": list(self.early) if self.early else None,
            "outbound_1h": list(self.late) if self.late else None,
            "eclipsed_after_secs": self.eclipsed_after,
            "regained_honest_secs": self.regained_after,
        }


class EclipseNetwork(SimNetwork):
    """A :class:`SimNetwork` with the attacker entity, the victims and their cut-offs."""

    def __init__(self, spec: EclipseSpec, *, store: bool, seed: int, state_dir: Path) -> None:
        self.spec = spec
        scenario = spec.scenario(store)
        count = spec.victims * len(spec.cuts)
        step = scenario.nodes / count
        self.victim_cut = {
            f"node-{int(i * step):04d}": spec.cuts[i % len(spec.cuts)] for i in range(count)
        }
        self.attacker = _Attacker(spec, seed)
        super().__init__(scenario, seed=seed, state_dir=state_dir)
        self.by_addr = _Directory(self.by_addr, self.attacker)
        self._slots = {**self._slots, "attacker": 1 << 30}
        self.victims = [self.by_name[name] for name in self.victim_cut]
        self.honest = {node.addr: node for node in self.nodes}
        """Address -> honest node (seed or ordinary): every node but the attacker's personas."""
        self.watches = {name: _Watch(name, cut) for name, cut in self.victim_cut.items()}
        self.cut_off: dict[str, frozenset[str]] = {}
        """Victim address -> the honest addresses it cannot reach, nor they it."""
        self._churn_session = Distribution("exponential", mean_secs=spec.session_mean_secs or 1.0)
        self._churn_downtime = Distribution(
            "weibull", shape=0.5, scale_secs=spec.downtime_scale_secs
        )

    def _config(self, name: str, addr: str, seeds: list[str], state_dir: Path) -> HostConfig:
        config = super()._config(name, addr, seeds, state_dir)
        if name in self.victim_cut:
            return config
        # Only the victims' store is under test; the other nodes never restart with a plan that
        # could matter to a victim, so they run without one in both arms.
        data = dict(config.data)
        data["network"] = {**data["network"], "persistence": {"enabled": False}}
        return attrs.evolve(config, data=data)

    # -- the timeline -------------------------------------------------------------------------

    def _prepare(self) -> None:
        super()._prepare()
        spec = self.spec
        self.engine.at(spec.warmup_secs, self._attack_begins)
        self.engine.at(spec.restart_at, self._restart_victims)

    def start(self, node: SimNode, cause: str) -> None:
        if node.up:
            return
        super().start(node, cause)
        if not node.up:
            return
        spec = self.spec
        if node.name in self.watches and cause == RESTART_CAUSE:
            self._watch_start(node)
        if self.attacker.active:
            self.engine.after(1.0, self._attack_node, node, node.life, True)
        churns = node.role == "node" and node.name not in self.victim_cut
        if churns and spec.session_mean_secs > 0:
            leave = self._churn_session.draw(node.rng.random())
            self.engine.after(leave, self._leave, node, node.life)

    def _leave(self, node: SimNode, life: int) -> None:
        if node.life != life:
            return
        self.stop(node, graceful=node.rng.random() < 0.5)
        self.engine.after(self._churn_downtime.draw(node.rng.random()), self.start, node, "churn")

    def _attack_begins(self) -> None:
        self.attacker.active = True
        logger.info("the attacker begins at t=%s", self.engine.t)
        self._push_all()

    def _restart_victims(self) -> None:
        spec = self.spec
        honest = [n.addr for n in self.nodes if n.role in ("seed", "node")]
        for victim in self.victims:
            share = self.victim_cut[victim.name]
            pool = [a for a in honest if a != victim.addr]
            rng = stream(self.seed, f"cut {victim.name}")
            self.cut_off[victim.addr] = frozenset(rng.sample(pool, round(share * len(pool))))
            self.stop(victim, graceful=True)
            self.engine.after(spec.downtime_secs, self.start, victim, RESTART_CAUSE)

    # -- the attacker ---------------------------------------------------------------------------

    def _push_all(self) -> None:
        first = self.engine.t <= self.spec.warmup_secs
        for node in self.nodes:
            if node.up:
                self._attack_node(node, node.life, first)
        self.engine.after(self.spec.push_interval_secs, self._push_all)

    def _attack_node(self, node: SimNode, life: int, burst: bool = False) -> None:
        """Connect in to ``node`` (every free slot of a victim, one of any other node), then
        push a list of attacker addresses: on every attacker connection in a ``burst`` (when
        the node has just started), else on a few of them (:data:`PUSHES_PER_INTERVAL`)."""
        if node.life != life or not node.up:
            return
        slots = self._slots[node.role]
        free = slots - (len(node.conns) - node.core.outbound)
        mine = sum(1 for c in node.conns.values() if c.handle.__class__ is _Persona)
        # A victim's every free slot, from at most half the addresses: the rest stay free for
        # the victim to dial (a node never dials a peer it is connected to).
        spec = self.spec
        wanted = min(free, spec.addresses // 2) if node.name in self.victim_cut else 1
        attacker = self.attacker
        tries = wanted - mine
        start = node.index * 131 + mine
        for k in range(spec.addresses):
            if tries <= 0:
                break
            persona = attacker.persona_at(start + k)
            if persona.name in node.by_node or node.core.refusal(persona.name) is not None:
                continue
            self._handshake(persona, node, "attack")
            tries -= 1
        want = node.core.policy.peer_list_want
        keys = [key for key, conn in node.conns.items() if conn.handle.__class__ is _Persona]
        if not burst and len(keys) > PUSHES_PER_INTERVAL:
            keys = attacker.rng.sample(keys, PUSHES_PER_INTERVAL)
        for key in keys:
            if key in node.conns:
                node.core.peer_list(key, attacker.gossip(want))
            if not node.up or node.life != life:
                return

    # -- the cut-off ----------------------------------------------------------------------------

    def _is_cut(self, node: SimNode, addr: str) -> bool:
        cut = self.cut_off.get(node.addr)
        if cut is not None and addr in cut:
            return True
        cut = self.cut_off.get(addr)
        return cut is not None and node.addr in cut

    def dial(self, node: SimNode, addr: str, origin: str) -> None:
        if self.cut_off and self._is_cut(node, addr):
            record = node.record
            if record is not None:
                record.dials.setdefault(origin, [0, 0])[0] += 1
            delay = self.scenario.dial_timeout_secs
            self.engine.after(delay, self._cut_dial_done, node, node.life, addr, origin)
            return
        super().dial(node, addr, origin)

    def _cut_dial_done(self, node: SimNode, life: int, addr: str, origin: str) -> None:
        if node.life == life:
            node.core.dial_failed(addr, origin, "timeout")

    # -- measuring --------------------------------------------------------------------------------

    def _watch_start(self, node: SimNode) -> None:
        watch = self.watches[node.name]
        watch.started = self.engine.t
        record = node.record
        if record is not None:
            watch.plan = record.plan
            watch.plan_attacker = record.plan_attacker + record.plan_fake
        watch.knows_honest = sum(
            1 for addr in {*watch.plan, *node.core.seeds} if self._reachable(node, addr)
        )
        life = node.life
        self.engine.after(EARLY_SECS, self._snapshot, node, life, "early")
        self.engine.after(LATE_SECS, self._snapshot, node, life, "late")
        # The cut-off ends within the minute after the +1 h measures, at a drawn second, so
        # that no timer of the victim's (its 10 s maintenance) lines up with it.
        heal = LATE_SECS + stream(self.seed, f"heal {node.name}").uniform(0.0, 60.0)
        self.engine.after(heal, self._heal, node, life)
        self.engine.after(0.0, self._look, node, life)

    def _reachable(self, node: SimNode, addr: str) -> bool:
        """Whether ``addr`` is an honest node that runs and that ``node`` can reach now."""
        target = self.honest.get(addr)
        return target is not None and target.up and not self._is_cut(node, addr)

    def _outbound(self, node: SimNode) -> tuple[int, int]:
        total = attacker = 0
        for conn in node.conns.values():
            if conn.outbound:
                total += 1
                attacker += conn.handle.__class__ is _Persona
        return attacker, total

    def _snapshot(self, node: SimNode, life: int, which: str) -> None:
        if node.life == life:
            setattr(self.watches[node.name], which, self._outbound(node))

    def _heal(self, node: SimNode, life: int) -> None:
        """The victim's cut-off ends; note whether it holds an honest outbound peer already
        (else :meth:`_handshake` notes when it first does)."""
        if node.life != life:
            return
        self.cut_off.pop(node.addr, None)
        watch = self.watches[node.name]
        watch.healed_at = self.engine.t
        attacker, total = self._outbound(node)
        if total > attacker:
            watch.regained_after = 0.0

    def _handshake(self, node: SimNode, target: SimNode, origin: str) -> None:
        super()._handshake(node, target, origin)
        watch = self.watches.get(node.name)
        if (
            watch is not None
            and watch.healed_at is not None
            and watch.regained_after is None
            and target.role != "attacker"
        ):
            watch.regained_after = self.engine.t - watch.healed_at

    def _look(self, node: SimNode, life: int) -> None:
        watch = self.watches[node.name]
        if node.life != life or watch.started is None or watch.eclipsed_after is not None:
            return
        attacker, total = self._outbound(node)
        if total and attacker == total:
            watch.eclipsed_after = self.engine.t - watch.started
            return
        self.engine.after(self.spec.watch_interval_secs, self._look, node, life)


def run_once(
    spec: EclipseSpec,
    *,
    store: bool,
    seed: int,
    state_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    network_class: type[EclipseNetwork] | None = None,
) -> dict[str, Any]:
    """Play one arm of one seeded run; return what it measured, per victim, as JSON data.

    ``network_class`` plays it instead of :class:`EclipseNetwork` (a variant of the host, to
    see what the measures make of it)."""
    if state_dir is None:
        with scratch_directory("hostsim-eclipse-", spec.scenario(store).size) as tmp:
            return run_once(
                spec,
                store=store,
                seed=seed,
                state_dir=Path(tmp),
                progress=progress,
                network_class=network_class,
            )
    network = (network_class or EclipseNetwork)(spec, store=store, seed=seed, state_dir=state_dir)
    network.progress = progress
    network.label = _arm(store).label
    metrics = network.run()
    return {
        "seed": seed,
        "arm": "store" if store else "seeds_only",
        "events_run": metrics.events_run,
        "attacker_personas": len(network.attacker.personas),
        "victims": [w.to_json() for w in network.watches.values()],
    }


@attrs.frozen
class EclipseResult:
    """Every run of one spec, both arms."""

    spec: EclipseSpec
    seeds: tuple[int, ...]
    runs: tuple[dict[str, Any], ...]

    def victims(self, arm: str, cut: float) -> list[dict[str, Any]]:
        """Every victim of ``arm`` with cut-off share ``cut``, over every run."""
        return [
            v for run in self.runs if run["arm"] == arm for v in run["victims"] if v["cut"] == cut
        ]

    def summary(self, arm: str, cut: float) -> dict[str, Any]:
        """The measures of one arm and cut-off share, over every run."""
        victims = self.victims(arm, cut)
        plan = sum(len(v["plan"]) for v in victims)
        plan_attacker = sum(v["plan_attacker"] for v in victims)
        out: dict[str, Any] = {
            "victims": len(victims),
            "plan_entries": plan,
            "plan_attacker_entries": plan_attacker,
            "plan_attacker_share": plan_attacker / plan if plan else 0.0,
        }
        for key, label in (("outbound_60s", "60s"), ("outbound_1h", "1h")):
            counts = [v[key] for v in victims if v[key] is not None]
            attacker = sum(c[0] for c in counts)
            total = sum(c[1] for c in counts)
            out[f"outbound_{label}"] = total
            out[f"attacker_outbound_share_{label}"] = attacker / total if total else None
            out[f"eclipsed_{label}"] = sum(1 for c in counts if c[1] and c[0] == c[1])
            out[f"isolated_{label}"] = sum(1 for c in counts if not c[1])
            out[f"honest_kept_{label}"] = sum(1 for c in counts if c[1] > c[0])
        times = [v["eclipsed_after_secs"] for v in victims]
        eclipsed = sorted(t for t in times if t is not None)
        out["eclipsed_within_watch"] = len(eclipsed)
        out["first_eclipse_secs"] = eclipsed[0] if eclipsed else None
        out["median_eclipse_secs"] = (
            statistics.median(eclipsed) if len(eclipsed) * 2 > len(times) else None
        )
        out["honest_bound"] = sum(1 for v in victims if v["knows_honest"] > 0)
        regained = [v["regained_honest_secs"] for v in victims]
        out["regained_honest"] = sum(1 for t in regained if t is not None)
        out["regained_honest_secs"] = median_or_never(regained)
        return out

    def to_json(self) -> dict[str, Any]:
        """The spec, every run, and the summaries."""
        return {
            "spec": self.spec.to_json(),
            "seeds": list(self.seeds),
            "summary": {
                arm: {f"{cut:g}": self.summary(arm, cut) for cut in self.spec.cuts}
                for arm in ("store", "seeds_only")
            },
            "runs": list(self.runs),
        }


def run_eclipse(
    spec: EclipseSpec,
    *,
    seeds: Sequence[int],
    progress: Callable[[str], None] | None = None,
) -> EclipseResult:
    """Play every seed, each with the victims' store and with seeds only."""
    runs = []
    for seed in seeds:
        for store in (True, False):
            runs.append(run_once(spec, store=store, seed=seed, progress=progress))
    return EclipseResult(spec, tuple(seeds), tuple(runs))


# -- the table, the targets, the plot -----------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _duration(value: float | None, horizon: float) -> str:
    if value is None:
        return f"> {_hours(horizon)}"
    return _hours(value)


def _hours(secs: float) -> str:
    if secs < 60:
        return f"{secs:.0f} s"
    if secs < 3600:
        return f"{secs / 60:.1f} min"
    return f"{secs / 3600:.1f} h"


_COLUMNS = (
    ("cut off", 7),
    ("arm", 10),
    ("plan: attacker/all", 18),
    ("attacker share @60s", 19),
    ("@1h", 6),
    ("honest kept @60s", 16),
    ("@1h", 5),
    ("bound", 5),
    ("isolated @60s", 13),
    ("@1h", 5),
    ("eclipsed @60s", 13),
    ("@1h", 5),
    ("healed: honest again", 20),
)


def format_eclipse(result: EclipseResult) -> list[str]:
    """The table of one spec: a row per cut-off share and arm."""
    lines = ["  ".join(f"{name:<{width}}" for name, width in _COLUMNS).rstrip()]
    for cut in result.spec.cuts:
        for arm, label in (("store", STORE.label), ("seeds_only", SEEDS_ONLY.label)):
            s = result.summary(arm, cut)
            n = s["victims"]
            cells = (
                f"{100 * cut:.0f}%",
                label,
                f"{s['plan_attacker_entries']}/{s['plan_entries']}"
                f" ({_pct(s['plan_attacker_share'])})",
                _pct(s["attacker_outbound_share_60s"]),
                _pct(s["attacker_outbound_share_1h"]),
                f"{s['honest_kept_60s']}/{n}",
                f"{s['honest_kept_1h']}/{n}",
                f"{s['honest_bound']}/{n}",
                f"{s['isolated_60s']}/{n}",
                f"{s['isolated_1h']}/{n}",
                f"{s['eclipsed_60s']}/{n}",
                f"{s['eclipsed_1h']}/{n}",
                f"{s['regained_honest']}/{n}, {_regained(s['regained_honest_secs'])}",
            )
            lines.append(
                "  ".join(
                    f"{cell:<{width}}" for cell, (_, width) in zip(cells, _COLUMNS, strict=True)
                ).rstrip()
            )
    return lines


def _regained(median: float | None) -> str:
    return "median never" if median is None else f"median {_hours(median)}"


def check_eclipse_targets(results: Sequence[EclipseResult]) -> list[Target]:
    """The store's claims against the attacker, over every spec (every N), store arm; and the
    partition's outcome, reported beside them (it decides nothing: the attacker wins a
    partition by construction)."""
    targets: list[Target] = []
    zero = [(r, r.summary("store", 0.0)) for r in results if 0.0 in r.spec.cuts]
    if zero:
        targets += _intact_targets(zero)
    partial = [r for r in results if PARTIAL_CUT in r.spec.cuts]
    if partial:
        targets += _partial_targets(partial)
    whole = [r for r in results if 1.0 in r.spec.cuts]
    if whole:
        targets += _partition_targets(whole)
    return targets


def _by_n(results: Sequence[Any], figure: Callable[[Any], str]) -> str:
    return ", ".join(f"N={r.spec.addresses}: {figure(r)}" for r in results)


def _intact_targets(zero: Sequence[tuple[EclipseResult, dict[str, Any]]]) -> list[Target]:
    plan = sum(s["plan_attacker_entries"] for _, s in zero)
    entries = sum(s["plan_entries"] for _, s in zero)
    eclipsed = sum(max(s["eclipsed_60s"], s["eclipsed_1h"]) for _, s in zero)
    isolated = sum(max(s["isolated_60s"], s["isolated_1h"]) for _, s in zero)
    victims = sum(s["victims"] for _, s in zero)
    shares = [(s["attacker_outbound_share_60s"], s["attacker_outbound_share_1h"]) for _, s in zero]
    share_holds = all(
        early is not None
        and late is not None
        and early <= INTACT_SHARE_60S_TARGET
        and late <= INTACT_SHARE_1H_TARGET
        for early, late in shares
    )
    return [
        Target(
            "nothing cut off: 0 attacker plan entries, 0 eclipsed and 0 isolated victims",
            plan == 0 and eclipsed == 0 and isolated == 0 and entries > 0,
            f"{plan} attacker entries among {entries}; of {victims} victims, {eclipsed}"
            f" eclipsed and {isolated} isolated at +60 s or +1 h",
        ),
        Target(
            f"nothing cut off: attacker share of outbound <= {100 * INTACT_SHARE_60S_TARGET:.0f}%"
            f" at +60 s and <= {100 * INTACT_SHARE_1H_TARGET:.0f}% at +1 h",
            share_holds,
            ", ".join(
                f"N={r.spec.addresses}: {_pct(s['attacker_outbound_share_60s'])},"
                f" {_pct(s['attacker_outbound_share_1h'])}"
                for r, s in zero
            ),
        ),
    ]


def _partial_targets(partial: Sequence[EclipseResult]) -> list[Target]:
    kept_holds = True
    isolated_holds = True
    for result in partial:
        store, seeds = (result.summary(arm, PARTIAL_CUT) for arm in ("store", "seeds_only"))
        bound = store["honest_bound"]
        kept_holds &= store["honest_kept_60s"] >= bound and store["honest_kept_1h"] >= bound
        isolated_holds &= all(store[f"isolated_{t}"] <= seeds[f"isolated_{t}"] for t in _TIMES)

    def kept(r: EclipseResult) -> str:
        s = r.summary("store", PARTIAL_CUT)
        return f"{s['honest_kept_60s']}, {s['honest_kept_1h']} of bound {s['honest_bound']}"

    def isolated(r: EclipseResult) -> str:
        store, seeds = (r.summary(arm, PARTIAL_CUT) for arm in ("store", "seeds_only"))
        return (
            f"{store['isolated_60s']}, {store['isolated_1h']}"
            f" vs seeds only {seeds['isolated_60s']}, {seeds['isolated_1h']}"
        )

    cut = f"{100 * PARTIAL_CUT:.0f}% cut off"
    return [
        Target(
            f"{cut}: victims that keep an honest outbound peer at +60 s and at +1 h >= the"
            " victims that know a reachable honest address (the bound)",
            kept_holds,
            _by_n(partial, kept),
        ),
        Target(
            f"{cut}: isolated victims at +60 s and at +1 h no more than with seeds only",
            isolated_holds,
            _by_n(partial, isolated),
        ),
    ]


def _partition_targets(whole: Sequence[EclipseResult]) -> list[Target]:
    medians = [r.summary("store", 1.0)["regained_honest_secs"] for r in whole]
    holds = all(m is not None and m <= REGAIN_TARGET_SECS for m in medians)

    def regained(r: EclipseResult) -> str:
        store, seeds = (r.summary(arm, 1.0) for arm in ("store", "seeds_only"))
        return (
            f"{store['regained_honest']}/{store['victims']},"
            f" {_regained(store['regained_honest_secs'])}"
            f" (seeds only {seeds['regained_honest']}/{seeds['victims']},"
            f" {_regained(seeds['regained_honest_secs'])})"
        )

    def partition(r: EclipseResult) -> str:
        store, seeds = (r.summary(arm, 1.0) for arm in ("store", "seeds_only"))
        return (
            f"eclipsed {store['eclipsed_1h']}/{store['victims']}, isolated"
            f" {store['isolated_1h']}/{store['victims']} (seeds only: eclipsed"
            f" {seeds['eclipsed_1h']}, isolated {seeds['isolated_1h']})"
        )

    return [
        Target(
            f"partition (100% cut off) healed after {_hours(LATE_SECS)}: median time until a"
            f" victim holds an honest outbound peer again <= {REGAIN_TARGET_SECS:.0f} s",
            holds,
            _by_n(whole, regained),
        ),
        Target(
            "100% cut off is a partition: at +1 h, every outbound connection can only go to the"
            " attacker",
            True,
            _by_n(whole, partition),
            gate=False,
        ),
    ]


def plot_eclipse(results: Sequence[EclipseResult], path: Path) -> None:
    """Against N, both arms, one line per cut-off share: the attacker's share of outbound
    connections an hour after the restart, and the share of victims that keep an honest
    outbound peer then, beside the bound (dotted: the share that know a reachable one).

    :raises HostsimError: matplotlib is not installed.
    """
    require_matplotlib()
    plt = importlib.import_module("matplotlib.pyplot")
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    ordered = sorted(results, key=lambda r: r.spec.addresses)
    xs = [r.spec.addresses for r in ordered]
    for cut in ordered[0].spec.cuts:
        for arm, label, style in (
            ("store", STORE.label, "-"),
            ("seeds_only", SEEDS_ONLY.label, "--"),
        ):
            summaries = [r.summary(arm, cut) for r in ordered]
            share = [s["attacker_outbound_share_1h"] or 0.0 for s in summaries]
            kept = [s["honest_kept_1h"] / max(s["victims"], 1) for s in summaries]
            name = f"{label}, {100 * cut:.0f}% cut off"
            (line,) = left.plot(xs, share, style, marker="o", label=name)
            right.plot(xs, kept, style, marker="o", color=line.get_color(), label=name)
            bound = [s["honest_bound"] / max(s["victims"], 1) for s in summaries]
            right.plot(xs, bound, ":", color=line.get_color())
    for axis, title in (
        (left, "attacker share of outbound, 1 h after restart"),
        (right, "victims with an honest outbound peer at 1 h (dotted: the bound)"),
    ):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("attacker addresses (N)")
        axis.set_ylim(-0.02, 1.02)
        axis.set_title(title, fontsize=10)
    left.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
