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
plugin's own reader (`thenodes_peerstore.door`); a damaged or missing file counts as not intact.

Before anything starts, :func:`check_capacity` compares what the run needs with what the
machine allows (open files, memory, processes, ports) and refuses a run it cannot hold,
naming the limit. Each process is handed its listening socket, bound by this process to a port
the kernel chose and held for the whole arm (:func:`~hostsim.live.processes.listening_socket`),
so no two processes race for a port and a restarted node gets its own port back. At most
:data:`START_WINDOW` processes start at once; each runs in a process group of its own and dies
with this process (``hostsim node --parent-pid``). A phase ends when every restarted node has
its target connections, when nothing can change any more (no node is connected and every
address any node could dial is a stopped process's), or after ``phase_secs``.

Every process started is stopped by its pid when the experiment ends, fails or is
interrupted, all at once and each one reaped; SIGINT and SIGTERM are taken at the next safe
point (:class:`ClusterInterrupted`), never in the middle of starting or stopping processes.
Every wait is bounded.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import socket
import statistics
import threading
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
from hostsim.live.processes import NodeProcess, listening_socket, stop_all, write_node_config
from hostsim.metrics import REJOIN_SECS, StartRecord, summarise
from thenodes_naming import realm_code
from thenodes_peerstore import door
from thenodes_peerstore.errors import StoreFileError

__all__ = [
    "CLUSTER_NODES",
    "CLUSTER_SEEDS",
    "ClusterError",
    "ClusterInterrupted",
    "ClusterResult",
    "PhaseResult",
    "check_capacity",
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
"""How long the network may take to form, once every process has started, before the
experiment gives up."""
START_TIMEOUT_SECS = 30.0
"""How long a process may take to print its dial order."""
START_WINDOW = max(4, 2 * (os.cpu_count() or 1))
"""Processes started at once: each spends about 0.3 s of CPU importing Python before it runs,
so more at once only makes each one's start slower."""
NODE_RSS_MB = 40
"""Resident memory of one ``hostsim node`` process, rounded up (34 MB measured on CPython
3.11, x86-64)."""
NODE_TASKS = 3
"""Threads of one ``hostsim node`` process (2 measured), rounded up: they count against the
limit on processes."""
FDS_PER_PROCESS = 2
"""Open files this process keeps per node process: its listening socket and its stdout."""
FDS_SPARE = 64
"""Open files this process needs besides (its own, the logs while a process starts)."""
FORMED_PEERS = 2
"""Other nodes (not seeds) each node must have been connected to when the network has formed."""
PHASES = ("seeds-up", "seeds-down")

Progress = Callable[[str], None]

REALM = "Cluster"
"""The realm every cluster node is in (:func:`~hostsim.live.processes.write_node_config`)."""
Event = dict[str, Any]


class ClusterError(HostsimError):
    """The cluster could not be run (the machine cannot hold it, a process did not start, the
    network did not form)."""


class ClusterInterrupted(HostsimError):
    """SIGINT or SIGTERM stopped the experiment; every process it started has been stopped."""

    def __init__(self, signum: int, left: Sequence[int] = ()) -> None:
        self.signum = signum
        self.left = list(left)
        """Pids that could not be reaped (none, unless the system is stuck)."""
        super().__init__(signal.Signals(signum).name)


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
    sock: socket.socket | None
    """The listening socket this process holds for the member's port while the arm runs."""
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
        sockets: list[socket.socket],
        progress: Progress | None,
        stop: _StopSignal,
    ) -> None:
        self.root = root
        self.started = started
        """Every process this experiment started (for stopping them all at the end)."""
        self.sockets = sockets
        """Every listening socket this experiment holds (closed at the end)."""
        self.progress = progress
        self.stop = stop
        self.arm = arm
        self.label = arm.label
        root.mkdir(parents=True, exist_ok=True)
        width = max(2, len(str(nodes - 1)))
        self.seeds = [self._member(f"seed-{index}", "seed", []) for index in range(seeds)]
        seed_addrs = [seed.addr for seed in self.seeds]
        self.nodes = [
            self._member(f"node-{index:0{width}d}", "node", seed_addrs) for index in range(nodes)
        ]
        self.seed_ids = frozenset(seed.name for seed in self.seeds)

    def _member(self, name: str, role: str, seeds: list[str]) -> _Member:
        sock = listening_socket()
        self.sockets.append(sock)
        port = sock.getsockname()[1]
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
            sock,
        )

    # -- processes --------------------------------------------------------------------------

    def start(self, member: _Member) -> None:
        """Start ``member``'s process on its socket; its log is appended to."""
        assert member.sock is not None, f"{member.name} was stopped for good"
        process = NodeProcess(member.config, member.log, status="json", listen_socket=member.sock)
        self.started.append(process)
        member.process = process
        member.started = process.started
        member.events = []
        member.read = 0

    def start_all(self, members: Sequence[_Member]) -> None:
        """Start every member, at most :data:`START_WINDOW` at once, and wait until each said
        its dial order (its plugins have started).

        :raises ClusterError: a process ended or did not start within its time.
        :raises ClusterInterrupted: SIGINT or SIGTERM came meanwhile.
        """
        waiting = list(members)
        starting: list[_Member] = []
        said = 0.0
        while waiting or starting:
            self.stop.check()
            if self.progress is not None and time.monotonic() - said >= 1.0:
                said = time.monotonic()
                done = len(members) - len(waiting) - len(starting)
                self.progress(
                    f"cluster {self.label}, starting: {done}/{len(members)}"
                    f" {members[0].role} processes started"
                )
            while waiting and len(starting) < START_WINDOW:
                member = waiting.pop(0)
                self.start(member)
                starting.append(member)
            self.poll()
            still = []
            for member in starting:
                assert member.process is not None
                if any(e.get("event") == "dial_order" for _, e in self.events(member)):
                    continue
                ended = member.process.proc.poll()
                if ended is not None or time.monotonic() - member.started > START_TIMEOUT_SECS:
                    why = (
                        f"it ended (exit {ended})"
                        if ended is not None
                        else (f"no dial order within {START_TIMEOUT_SECS:.0f} s")
                    )
                    raise ClusterError(f"{member.name} did not start: {why}; see {member.log}")
                still.append(member)
            starting = still
            if starting:
                time.sleep(0.05)

    def kill(self, member: _Member) -> None:
        """SIGKILL ``member``'s process, a crash."""
        if member.process is not None:
            member.process.kill()
            member.process.stop()

    def terminate(self, member: _Member) -> None:
        """SIGTERM ``member``'s process, a graceful stop, and close its port for good: dials
        to it are refused from now on."""
        if member.process is not None:
            member.process.terminate()
            member.process.stop()
        if member.sock is not None:
            member.sock.close()
            member.sock = None

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

    def stuck(self) -> bool:
        """Whether nothing can change any more: no node is connected, and every address any
        node could dial (its dial order: its seeds and stored peers) is a stopped process's.
        A node learns new addresses only from connections, so none will ever connect."""
        stopped = {m.addr for m in (*self.seeds, *self.nodes) if m.sock is None}
        for member in self.nodes:
            if self.connections(member) > 0:
                return False
            orders = [e for _, e in self.events(member) if e.get("event") == "dial_order"]
            if not orders or any(d["addr"] not in stopped for d in orders[-1]["dials"]):
                return False
        return True

    def formed(self, member: _Member, peers: int) -> float | None:
        """When ``member``'s current process had been connected to ``peers`` other nodes (not
        seeds), either way, and had received a peer list: the time of the last connection it
        took (the node's own clock, in its status line), or None while it has not."""
        seen: set[str] = set()
        heard = False
        last = 0.0
        for _, event in self.events(member):
            kind = event.get("event")
            if kind == "connected" and event["node_id"] not in self.seed_ids:
                if event["node_id"] not in seen and len(seen) < peers:
                    last = float(event["t"])
                seen.add(event["node_id"])
            heard = heard or kind == "peer_list"
        return last if heard and len(seen) >= peers else None

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
        contents = door.read(files[0], realm=realm_code(REALM))
    except (OSError, StoreFileError):
        return None
    return len(contents.entries) if contents.intact else None


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

    :param phase_secs: How long a phase waits for the restarted nodes at most (a phase ends
        earlier when every node has reached its target connections, or when none can).
    :raises ClusterError: the machine cannot hold the cluster, a process did not start or the
        network did not form in time.
    :raises ClusterInterrupted: SIGINT or SIGTERM came (when called from the main thread);
        every process was stopped.
    :raises ValueError: ``nodes`` or ``seeds`` is below 1.
    """
    if nodes < 1 or seeds < 1:
        raise ValueError(f"a cluster needs at least one node and one seed, got {nodes}, {seeds}")
    for warning in check_capacity(nodes + seeds):
        logger.warning("%s", warning)
    target = _target(nodes, seeds)
    result = ClusterResult(nodes, seeds, target)
    begun = time.monotonic()
    with _StopSignal.installed() as stop:
        for arm, phases in zip(ARMS, (result.store, result.seeds_only), strict=True):
            started: list[NodeProcess] = []
            sockets: list[socket.socket] = []
            with _stopping(started, sockets, stop):
                cluster = _Cluster(
                    workdir / arm.name,
                    nodes=nodes,
                    seeds=seeds,
                    arm=arm,
                    started=started,
                    sockets=sockets,
                    progress=progress,
                    stop=stop,
                )
                _form(cluster, "forming")
                phases["seeds-up"] = _restart_all(cluster, "seeds-up", target, phase_secs)
                _form(cluster, "forming again")
                for seed in cluster.seeds:
                    cluster.terminate(seed)
                phases["seeds-down"] = _restart_all(cluster, "seeds-down", target, phase_secs)
    result.wall_secs = time.monotonic() - begun
    return result


def check_capacity(processes: int) -> list[str]:
    """Whether this machine can hold ``processes`` node processes started from this one;
    return warnings for what is tight.

    :raises ClusterError: a limit it would exceed, named with what the run needs and what the
        limit is: open files (``ulimit -n``), memory, processes (``ulimit -u``) or the ports of
        the local port range.
    """
    refusals: list[str] = []
    warnings: list[str] = []
    need_fds = processes * FDS_PER_PROCESS + FDS_SPARE
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and need_fds > soft:
        refusals.append(
            f"open files: {processes:,} processes need about {need_fds:,} open files in this"
            f" one, and its limit is {soft:,} (raise it with `ulimit -n {need_fds}`)"
        )
    need_mb = processes * NODE_RSS_MB
    available = _available_mb()
    if available is not None and need_mb > available:
        refusals.append(
            f"memory: {processes:,} processes need about {need_mb:,} MB ({NODE_RSS_MB} MB"
            f" each), and {available:,} MB are available"
        )
    elif available is not None and need_mb > available / 2:
        warnings.append(
            f"memory: {processes:,} processes take about {need_mb:,} MB of the"
            f" {available:,} MB available"
        )
    need_tasks = processes * (NODE_TASKS + 1)  # and this process's reader thread for each
    tasks_left = _tasks_left()
    if tasks_left is not None and need_tasks > tasks_left:
        refusals.append(
            f"processes: {processes:,} processes need about {need_tasks:,} processes and"
            f" threads, and only {tasks_left:,} more are allowed (`ulimit -u`, pid_max,"
            " threads-max)"
        )
    ports = _local_ports()
    if ports is not None and processes > ports // 2:
        refusals.append(
            f"ports: {processes:,} processes each hold a port of the local port range, which"
            f" has {ports:,} (net.ipv4.ip_local_port_range): at most {ports // 2:,} leave room"
            " for their connections"
        )
    if refusals:
        raise ClusterError("this machine cannot hold the cluster: " + "; ".join(refusals))
    return warnings


def _available_mb() -> int | None:
    """MemAvailable from /proc/meminfo, in MB; None where there is no such file."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        return None
    return None


def _tasks_left() -> int | None:
    """How many more processes and threads this user may start: the least of what
    ``RLIMIT_NPROC`` (which root is not held to), ``kernel.pid_max`` and
    ``kernel.threads-max`` leave; None where it cannot be told."""
    try:
        every, mine = _tasks(os.getuid())
        limits = [
            int(_read("/proc/sys/kernel/pid_max")) - every,
            int(_read("/proc/sys/kernel/threads-max")) - every,
        ]
    except (OSError, ValueError):
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY and os.geteuid() != 0:
        limits.append(soft - mine)
    return max(min(limits), 0)


def _tasks(uid: int) -> tuple[int, int]:
    """The processes and threads running: all of them, and those of ``uid``."""
    every = mine = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            count = len(os.listdir(f"/proc/{name}/task"))
            owner = os.stat(f"/proc/{name}").st_uid
        except OSError:
            continue  # ended meanwhile
        every += count
        mine += count if owner == uid else 0
    return every, mine


def _local_ports() -> int | None:
    """How many ports the local port range holds; None where it cannot be told."""
    try:
        low, high = _read("/proc/sys/net/ipv4/ip_local_port_range").split()
        return int(high) - int(low) + 1
    except (OSError, ValueError):
        return None


def _read(path: str) -> str:
    with open(path, encoding="ascii") as file:
        return file.read()


class _StopSignal:
    """SIGINT and SIGTERM, taken at the experiment's safe points: the handler only notes the
    signal, and :meth:`check` raises :class:`ClusterInterrupted` where the code calls it."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def check(self) -> None:
        """Raise :class:`ClusterInterrupted` if a signal came."""
        if self.signum is not None:
            raise ClusterInterrupted(self.signum)

    def _note(self, signum: int, frame: object) -> None:
        self.signum = signum

    @classmethod
    @contextmanager
    def installed(cls) -> Iterator[_StopSignal]:
        """Note SIGINT and SIGTERM while the block runs (from the main thread only; in another
        thread, signals keep their handlers and :meth:`check` never raises)."""
        stop = cls()
        if threading.current_thread() is not threading.main_thread():
            yield stop
            return
        previous = {s: signal.signal(s, stop._note) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield stop
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        stop.check()  # a signal that came while the last processes were stopped


@contextmanager
def _stopping(
    started: list[NodeProcess], sockets: list[socket.socket], stop: _StopSignal
) -> Iterator[None]:
    """Stop every process in ``started`` on the way out, whatever happened: all at once, each
    reaped by its pid; then close the sockets. A signal meanwhile (a second Ctrl-C) is only
    noted, as every signal is while the experiment runs, so it cannot cut this short."""
    try:
        yield
    finally:
        left = stop_all(started)
        for sock in sockets:
            sock.close()
        if left:
            logger.error("processes not stopped: %s", ", ".join(map(str, left)))
        if stop.signum is not None:
            raise ClusterInterrupted(stop.signum, left)


def _form(cluster: _Cluster, phase: str) -> None:
    """Start whatever is not running; wait until every node has been connected to other nodes
    and heard a peer list and, with the store, saved its peer file after the last of those
    connections (a connection is a change the node saves within its save interval; a network
    that has formed may change no more, so a later save may never come)."""
    fresh = [m for m in (*cluster.seeds, *cluster.nodes) if m.process is None]
    cluster.start_all([m for m in fresh if m.role == "seed"])
    cluster.start_all([m for m in fresh if m.role == "node"])
    begun = time.monotonic()
    wanted = min(FORMED_PEERS, len(cluster.nodes) - 1)
    deadline = begun + FORM_TIMEOUT_SECS
    for now in _watching(cluster, phase, begun):
        formed = {m.name: cluster.formed(m, wanted) for m in cluster.nodes}
        waiting = [name for name, at in formed.items() if at is None]
        if not waiting and (
            not cluster.arm.keeps_peers
            or all(cluster.peer_file_saved_since(m, formed[m.name] or 0.0) for m in cluster.nodes)
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
        cluster.stop.check()
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
    cluster.start_all(cluster.nodes)
    for now in _watching(cluster, phase, begun):
        done = all(cluster.connections(m) >= target for m in cluster.nodes)
        if done or cluster.stuck() or all(now - m.started >= phase_secs for m in cluster.nodes):
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
