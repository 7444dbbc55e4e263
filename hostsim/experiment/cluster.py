"""``hostsim cluster``: the rejoin experiment with real ``hostsim node`` processes on loopback.

Each arm (with the peer store, and with seeds only) gets a fresh cluster: ``seeds`` seed
processes and ``nodes`` node processes on 127.0.0.1, each with its own state directory and a
free port. Once the network has formed (every node has dialled other nodes, not only seeds,
and heard their peer lists, and its peer file was saved after that), two phases are measured
on the wall clock:

- ``seeds-up``: every node is killed with SIGKILL and started again while the seeds run;
- ``seeds-down``: the seeds are stopped, then every node is killed and started again.

Every figure comes from the nodes' status lines, one JSON object a line on stdout
(``hostsim node --status json``, :data:`hostsim.live.node.STATUS_EVENTS`): when a restarted
process was started, its dial order, each dial with its origin, each connection with the
count after it. Whether a node's peer file would load intact after a SIGKILL, and how many
peers it holds, is read from the file itself between the kill and the restart, with the
plugin's own codec; a damaged or missing file counts as not intact.

Every process started is stopped by its pid when the experiment ends, fails or is
interrupted; every wait is bounded.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from hostsim.core import CorePolicy
from hostsim.errors import HostsimError
from hostsim.experiment.arms import ARMS, Arm, peer_files
from hostsim.experiment.report import Target, pct, rejoin_rows, side_by_side
from hostsim.host import SEED_ORIGIN
from hostsim.live.processes import NodeProcess, free_port, write_node_config
from hostsim.metrics import REJOIN_SECS, StartRecord, summarise
from thenodes_naming import realm_code
from thenodes_peerstore import codec
from thenodes_peerstore.errors import StoreFileError

__all__ = [
    "CLUSTER_NODES",
    "CLUSTER_SEEDS",
    "ClusterError",
    "ClusterResult",
    "PhaseResult",
    "check_cluster_targets",
    "format_cluster",
    "run_cluster",
]

logger = logging.getLogger(__name__)

CLUSTER_NODES = 20
"""Node processes by default: small enough for about two minutes on two cores."""
CLUSTER_SEEDS = 2
PEER_REQUEST_SECS = 5
"""The cluster's ``[discovery] request_interval_secs`` (TheNodes: 90), so it forms in seconds."""
FORM_TIMEOUT_SECS = 60.0
"""How long the network may take to form before the experiment gives up."""
START_TIMEOUT_SECS = 30.0
"""How long a process may take to print its dial order."""
FORMED_PEERS = 2
"""Other nodes (not seeds) each node must have been connected to when the network has formed."""
PHASES = ("seeds-up", "seeds-down")

Progress = Callable[[str], None]

REALM = "Cluster"
"""The realm every cluster node is in (:func:`~hostsim.live.processes.write_node_config`)."""
Event = dict[str, Any]


class ClusterError(HostsimError):
    """The cluster could not be run (a process did not start, the network did not form)."""


@attrs.define
class PhaseResult:
    """One phase of one arm: a record per restarted node, and how its peer file loaded."""

    name: str
    records: list[StartRecord] = attrs.field(factory=list)
    loaded: list[int | None] = attrs.field(factory=list)
    """Per node: the peers its file held intact at the restart, or None (damaged, missing)."""
    wall_secs: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The phase as plain JSON data."""
        return {
            "phase": self.name,
            "wall_secs": self.wall_secs,
            "summary": summarise(self.records),
            "loaded_intact": self.loaded,
            "restarts": [r.to_json() for r in self.records],
        }


@attrs.define
class ClusterResult:
    """Both arms of the experiment, phase by phase."""

    nodes: int
    seeds: int
    target: int
    """Connections a node counts as its target: the outbound target, or fewer in a cluster
    with fewer other nodes."""
    store: dict[str, PhaseResult] = attrs.field(factory=dict)
    seeds_only: dict[str, PhaseResult] = attrs.field(factory=dict)
    wall_secs: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The experiment as plain JSON data."""
        return {
            "nodes": self.nodes,
            "seeds": self.seeds,
            "target_connections": self.target,
            "wall_secs": self.wall_secs,
            "store": [p.to_json() for p in self.store.values()],
            "seeds_only": [p.to_json() for p in self.seeds_only.values()],
        }


@attrs.define(eq=False)
class _Member:
    """One node or seed of a cluster: its config, its log, and the process running it now."""

    name: str
    role: str
    config: Path
    log: Path
    addr: str
    state_dir: Path
    process: NodeProcess | None = None
    started: float = 0.0
    events: list[tuple[float, Event]] = attrs.field(factory=list)
    """The status events of the current process read so far, with the time each was read."""
    read: int = 0
    """How many of the current process's status lines :attr:`events` took in."""


class _Cluster:
    """The processes of one arm, and what their status lines say."""

    def __init__(
        self,
        root: Path,
        *,
        nodes: int,
        seeds: int,
        arm: Arm,
        started: list[NodeProcess],
        progress: Progress | None,
    ) -> None:
        self.root = root
        self.started = started
        """Every process this experiment started (for stopping them all at the end)."""
        self.progress = progress
        self.arm = arm
        self.label = arm.label
        root.mkdir(parents=True, exist_ok=True)
        seed_ports = [free_port() for _ in range(seeds)]
        seed_addrs = [f"127.0.0.1:{port}" for port in seed_ports]
        self.seeds = [
            self._member(f"seed-{index}", "seed", port, []) for index, port in enumerate(seed_ports)
        ]
        self.nodes = [
            self._member(f"node-{index:02d}", "node", free_port(), seed_addrs)
            for index in range(nodes)
        ]
        self.seed_ids = frozenset(seed.name for seed in self.seeds)

    def _member(self, name: str, role: str, port: int, seeds: list[str]) -> _Member:
        config = write_node_config(
            self.root / f"{name}.toml",
            node_id=name,
            port=port,
            seeds=seeds,
            extra={
                "realm": {"name": REALM},
                "discovery": {"request_interval_secs": PEER_REQUEST_SECS},
                **self.arm.overlay,
            },
        )
        return _Member(
            name,
            role,
            config,
            self.root / f"{name}.log",
            f"127.0.0.1:{port}",
            self.root / f"{name}-state",
        )

    # -- processes --------------------------------------------------------------------------

    def start(self, member: _Member) -> None:
        """Start ``member``'s process; its log is appended to."""
        member.process = NodeProcess(member.config, member.log, status="json")
        member.started = member.process.started
        member.events = []
        member.read = 0
        self.started.append(member.process)

    def wait_started(self, members: Sequence[_Member]) -> None:
        """Wait until every member said its dial order (its plugins have started)."""
        for member in members:
            assert member.process is not None
            try:
                member.process.wait_for(r'"event": "dial_order"', START_TIMEOUT_SECS)
            except TimeoutError as exc:
                raise ClusterError(
                    f"{member.name} did not start: {exc}; see {member.log}"
                ) from None

    def kill(self, member: _Member) -> None:
        """SIGKILL ``member``'s process, a crash."""
        if member.process is not None:
            member.process.kill()
            member.process.stop()

    def terminate(self, member: _Member) -> None:
        """SIGTERM ``member``'s process, a graceful stop."""
        if member.process is not None:
            member.process.terminate()
            member.process.stop()

    def poll(self) -> None:
        """Take in every status line read so far."""
        for member in (*self.seeds, *self.nodes):
            if member.process is not None:
                member.process.poll_lines()

    # -- reading the status lines --------------------------------------------------------------

    def events(self, member: _Member) -> list[tuple[float, Event]]:
        """The status events of ``member``'s current process, with the time each was read."""
        lines = [] if member.process is None else member.process.lines
        for at, line in lines[member.read :]:
            try:
                event = json.loads(line)
            except ValueError:
                logger.warning("%s: a status line that is not JSON: %.80r", member.name, line)
                continue
            if isinstance(event, dict):
                member.events.append((at, event))
        member.read = len(lines)
        return member.events

    def connections(self, member: _Member) -> int:
        """The connections ``member`` has now, by its latest status event that says."""
        count = 0
        for _, event in self.events(member):
            if event.get("event") in ("connected", "disconnected"):
                count = int(event["connections"])
        return count

    def formed(self, member: _Member, peers: int) -> bool:
        """Whether ``member``'s current process has been connected to ``peers`` other nodes
        (not seeds), either way, and has received a peer list."""
        seen = set()
        heard = False
        for _, event in self.events(member):
            kind = event.get("event")
            if kind == "connected" and event["node_id"] not in self.seed_ids:
                seen.add(event["node_id"])
            heard = heard or kind == "peer_list"
        return heard and len(seen) >= peers

    def record(self, member: _Member, phase: str, target: int, begun: float) -> StartRecord:
        """What ``member``'s current process did since it was started (``at``: seconds since
        ``begun``, the phase's start)."""
        record = StartRecord(member.name, member.role, phase, member.started - begun)
        plan: list[str] = []
        pending: dict[str, str] = {}
        for at, event in self.events(member):
            match event.get("event"):
                case "dial_order":
                    plan = [d["addr"] for d in event["dials"] if d["origin"] != SEED_ORIGIN]
                case "dialling":
                    pending[event["addr"]] = event["origin"]
                    record.dials.setdefault(event["origin"], [0, 0])[0] += 1
                case "connected":
                    since = at - member.started
                    if record.first_connection is None:
                        record.first_connection = since
                    if record.target_reached is None and event["connections"] >= target:
                        record.target_reached = since
                    origin = pending.pop(event["addr"], None)
                    if event["direction"] == "outbound" and origin is not None:
                        record.dials[origin][1] += 1
        record.plan = tuple(plan)
        return record

    def peer_file_saved_since(self, member: _Member, since: float) -> bool:
        """Whether ``member``'s peer file was written after ``since`` (wall clock)."""
        for path in peer_files(member.state_dir):
            try:
                if path.stat().st_mtime > since:
                    return True
            except OSError:
                continue
        return False

    def say(self, phase: str, started: float) -> None:
        """Report progress: arm, phase, wall time, nodes connected."""
        if self.progress is None:
            return
        up = sum(1 for m in self.nodes if self.connections(m) > 0)
        self.progress(
            f"cluster {self.label}, {phase}: {time.monotonic() - started:.0f} s,"
            f" {up}/{len(self.nodes)} nodes connected"
        )


def stored_peers(state_dir: Path) -> int | None:
    """The peers a node's peer file holds if it is intact, else None (damaged, missing, or
    more than one): what the node loads when it starts next."""
    files = peer_files(state_dir)
    if len(files) != 1:
        return None
    try:
        decoded = codec.decode(files[0].read_bytes(), realm=realm_code(REALM))
    except (OSError, StoreFileError):
        return None
    return len(decoded.entries) if decoded.intact else None


def _target(nodes: int, seeds: int) -> int:
    """The outbound target, or all the other nodes when there are fewer (seeds down)."""
    return max(1, min(CorePolicy().target_outbound, nodes - 1 if nodes > 1 else seeds))


def run_cluster(
    workdir: Path,
    *,
    nodes: int = CLUSTER_NODES,
    seeds: int = CLUSTER_SEEDS,
    progress: Progress | None = None,
    phase_secs: float = REJOIN_SECS,
) -> ClusterResult:
    """Run both arms of the experiment in ``workdir`` (a directory per arm); every process
    started is stopped by its pid before this returns or raises.

    :param phase_secs: How long a phase waits for the restarted nodes (a phase ends earlier
        when every node has reached its target connections).
    :raises ClusterError: a process did not start or the network did not form in time.
    :raises ValueError: ``nodes`` or ``seeds`` is below 1.
    """
    if nodes < 1 or seeds < 1:
        raise ValueError(f"a cluster needs at least one node and one seed, got {nodes}, {seeds}")
    target = _target(nodes, seeds)
    result = ClusterResult(nodes, seeds, target)
    begun = time.monotonic()
    for arm, phases in zip(ARMS, (result.store, result.seeds_only), strict=True):
        started: list[NodeProcess] = []
        with _stopping(started):
            cluster = _Cluster(
                workdir / arm.name,
                nodes=nodes,
                seeds=seeds,
                arm=arm,
                started=started,
                progress=progress,
            )
            _form(cluster, "forming")
            phases["seeds-up"] = _restart_all(cluster, "seeds-up", target, phase_secs)
            _form(cluster, "forming again")
            for seed in cluster.seeds:
                cluster.terminate(seed)
            phases["seeds-down"] = _restart_all(cluster, "seeds-down", target, phase_secs)
    result.wall_secs = time.monotonic() - begun
    return result


@contextmanager
def _stopping(started: list[NodeProcess]) -> Iterator[None]:
    """Stop every process in ``started`` by its pid on the way out, whatever happened."""
    try:
        yield
    finally:
        for process in started:
            process.stop()


def _form(cluster: _Cluster, phase: str) -> None:
    """Start whatever is not running; wait until every node has been connected to other nodes
    and heard a peer list and, with the store, saved its peer file after that."""
    begun = time.monotonic()
    fresh = [m for m in (*cluster.seeds, *cluster.nodes) if m.process is None]
    for member in fresh:
        if member.role == "seed":
            cluster.start(member)
    cluster.wait_started([m for m in fresh if m.role == "seed"])
    for member in fresh:
        if member.role == "node":
            cluster.start(member)
    cluster.wait_started([m for m in fresh if m.role == "node"])
    wanted = min(FORMED_PEERS, len(cluster.nodes) - 1)
    deadline = begun + FORM_TIMEOUT_SECS
    formed_at: float | None = None
    for now in _watching(cluster, phase, begun):
        waiting = [m.name for m in cluster.nodes if not cluster.formed(m, wanted)]
        if not waiting and formed_at is None:
            formed_at = time.time()
        if formed_at is not None and (
            not cluster.arm.keeps_peers
            or all(cluster.peer_file_saved_since(m, formed_at) for m in cluster.nodes)
        ):
            logger.debug("cluster %s: formed in %.1f s", cluster.label, now - begun)
            return
        if now > deadline:
            raise ClusterError(
                f"the network did not form within {FORM_TIMEOUT_SECS:.0f} s"
                f" ({', '.join(waiting) or 'peer files not saved'}); logs in {cluster.root}"
            )


def _watching(cluster: _Cluster, phase: str, begun: float) -> Iterator[float]:
    """Every 0.1 s, take in the status lines (and say how far ``phase`` is, once a second);
    yield the time."""
    last_said = 0.0
    while True:
        cluster.poll()
        now = time.monotonic()
        if now - last_said >= 1.0:
            cluster.say(phase, begun)
            last_said = now
        yield now
        time.sleep(0.1)


def _restart_all(cluster: _Cluster, phase: str, target: int, phase_secs: float) -> PhaseResult:
    """SIGKILL every node, start them all again, and watch them for ``phase_secs``."""
    result = PhaseResult(phase)
    begun = time.monotonic()
    for member in cluster.nodes:
        cluster.kill(member)
    keeps = cluster.arm.keeps_peers
    result.loaded = [stored_peers(m.state_dir) if keeps else None for m in cluster.nodes]
    for member in cluster.nodes:
        cluster.start(member)
    cluster.wait_started(cluster.nodes)
    for now in _watching(cluster, phase, begun):
        done = all(cluster.connections(m) >= target for m in cluster.nodes)
        if done or all(now - m.started >= phase_secs for m in cluster.nodes):
            break
    result.records = [cluster.record(m, phase, target, begun) for m in cluster.nodes]
    result.wall_secs = time.monotonic() - begun
    return result


def check_cluster_targets(result: ClusterResult) -> list[Target]:
    """The cluster's claims: seeds down, >= 95% rejoin within 60 s with the store and none
    without; every peer file loaded intact after every SIGKILL."""
    store = summarise(result.store["seeds-down"].records)
    seeds = summarise(result.seeds_only["seeds-down"].records)
    rejoined, rejoined_seeds = store["rejoined_within_60s"] or 0.0, seeds["rejoined_within_60s"]
    loaded = [n for phase in result.store.values() for n in phase.loaded]
    intact = sum(n is not None for n in loaded)
    return [
        Target(
            "seeds down: >= 95% rejoin within 60 s with the store (seeds only: none)",
            rejoined >= 0.95 and not rejoined_seeds,
            f"{pct(rejoined)} vs {pct(rejoined_seeds)}",
        ),
        Target(
            "every node's peer file loaded intact after each SIGKILL",
            intact == len(loaded) and intact > 0,
            f"{intact} of {len(loaded)} starts",
        ),
    ]


def format_cluster(result: ClusterResult, phase: str) -> list[str]:
    """The side-by-side table of one phase, both arms."""
    with_store, seeds_only = result.store[phase], result.seeds_only[phase]
    store, seeds = summarise(with_store.records), summarise(seeds_only.records)
    rows = rejoin_rows(store, seeds, target=f" ({result.target})")
    loaded = with_store.loaded
    intact = [n for n in loaded if n is not None]
    rows.append(
        (
            "peer files loaded intact (median peers)",
            f"{len(intact)}/{len(loaded)} ({_median(intact)})",
            "-",
        )
    )
    plans = [len(r.plan) for r in with_store.records]
    rows.append(("reconnect plan entries", str(sum(plans)), "0"))
    return side_by_side(rows)


def _median(values: Sequence[int]) -> str:
    return "-" if not values else f"{statistics.median_low(values)}"
