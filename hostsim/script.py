"""Scripted runs: a scenario file (TOML) drives one node through time; the runner keeps a timeline.

```toml
config = "node.toml"        # the host config, relative to this file (required)
start_time = 1763700000     # virtual epoch seconds at t=0 (optional)
show_files = true           # the CLI prints the state directory's files at the end (optional)

[world]                     # who answers a dial: address -> node id; any other address refuses
"203.0.113.1:7447" = "seed-1"

[names]                     # how the host resolves a seed's host name (default: no names)
"seed.example.org" = ["203.0.113.1"]

[[events]]
at = 0                      # whole seconds since start_time, never decreasing
do = "start"
```

Event kinds and their keys, besides ``at`` and ``do`` (``?`` marks an optional key):

- ``start``, ``restart``: dial the dial order; an address in ``[world]`` connects (outbound),
  any other gets ``dial_failed`` "connection refused". ``restart`` shuts a running node down
  gracefully first; on a stopped node (after ``shutdown`` or ``crash``) it just starts it.
- ``connect``: ``addr``, ``node_id?`` (default: ``[world]``'s, else ``"peer-<addr>"``),
  ``direction?`` (``"outbound"`` | ``"inbound"``), ``listen_addr?``, ``capabilities?``.
- ``disconnect``: ``addr``, ``reason?``.
- ``peer_list``: ``from`` (a connected address), ``peers`` (strings, passed on unchecked).
- ``dial_failed``: ``addr``, ``error?``.
- ``advance``: ``secs``: let that much time pass; the next event's ``at`` must not be earlier
  than ``at + secs``.
- ``shutdown``, ``crash``.

Between events the host's time advances, one ``on_tick`` per second while the node runs. The
node's state lives in the run's state directory, whatever the host config's ``state_dir``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from hostsim.addresses import NameTable
from hostsim.clock import VirtualClock
from hostsim.config import HostConfig
from hostsim.convert import (
    KEY,
    NonEmptyStr,
    NonNegativeInt,
    key_tree,
    read_toml,
    refuse_unknown_keys,
    show,
    structure,
)
from hostsim.errors import HostsimError, ScenarioError
from hostsim.host import Dial, PluginHost
from hostsim.plugins import EntryPointLike
from thenodes_console import counted

__all__ = [
    "EVENT_KINDS",
    "DialOutcome",
    "Event",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "ScenarioRunError",
    "TimelineRecord",
    "load_scenario",
    "run_scenario",
]

Direction = Literal["outbound", "inbound"]


@attrs.frozen
class Start:
    """Start the node and dial its dial order."""


@attrs.frozen
class Restart:
    """Shut a running node down gracefully, then start it; on a stopped node, start it."""


@attrs.frozen
class Connect:
    """A handshake with ``addr`` completed."""

    addr: NonEmptyStr
    node_id: NonEmptyStr | None = None
    direction: Direction = "outbound"
    listen_addr: str | None = None
    capabilities: tuple[str, ...] = ()


@attrs.frozen
class Disconnect:
    """The connection to ``addr`` ended."""

    addr: NonEmptyStr
    reason: str = "closed"


@attrs.frozen
class PeerList:
    """The connected peer at ``from`` sent a peer list (passed on unchecked)."""

    sender: NonEmptyStr = attrs.field(metadata={KEY: "from"})
    peers: tuple[str, ...]


@attrs.frozen
class DialFailed:
    """An outbound dial to ``addr`` failed."""

    addr: NonEmptyStr
    error: str = "connection refused"


@attrs.frozen
class Advance:
    """``secs`` seconds pass."""

    secs: NonNegativeInt


@attrs.frozen
class Shutdown:
    """The node stops gracefully."""


@attrs.frozen
class Crash:
    """The node's process dies: no hook is called."""


Action = Start | Restart | Connect | Disconnect | PeerList | DialFailed | Advance | Shutdown | Crash

EVENT_KINDS: Mapping[str, type[Action]] = {
    "start": Start,
    "restart": Restart,
    "connect": Connect,
    "disconnect": Disconnect,
    "peer_list": PeerList,
    "dial_failed": DialFailed,
    "advance": Advance,
    "shutdown": Shutdown,
    "crash": Crash,
}
"""Every event kind and the model of its keys (besides ``at`` and ``do``)."""


@attrs.frozen
class Event:
    """One scripted event: its 1-based position, time, kind and checked action."""

    index: int
    at: int
    kind: str
    action: Action

    def label(self) -> str:
        """How error messages name this event."""
        return f"event {self.index} ({self.kind} at t=+{self.at}s)"


@attrs.frozen
class Scenario:
    """A checked scenario file."""

    path: Path
    config: HostConfig
    start_time: int
    show_files: bool
    world: Mapping[str, str] = attrs.field(hash=False)
    events: tuple[Event, ...]
    names: NameTable = attrs.field(factory=NameTable)


@attrs.frozen
class DialOutcome:
    """What became of one dial of a start: who answered (``node_id``) or why not (``error``)."""

    addr: str
    origin: str
    node_id: str | None = None
    error: str | None = None

    @property
    def connected(self) -> bool:
        """Whether the dial connected."""
        return self.node_id is not None

    def describe(self) -> str:
        """``"connected (node-b)"`` or ``"failed: connection refused"``."""
        if self.node_id is not None:
            return f"connected ({self.node_id})"
        return f"failed: {self.error}"


@attrs.frozen
class TimelineRecord:
    """What happened at one event: time since the start, kind, a sentence, and dials if any."""

    t: int
    kind: str
    text: str
    dials: tuple[DialOutcome, ...] = ()


class ScenarioRunError(ScenarioError):
    """An event could not be played; :attr:`records` is the timeline up to it."""

    def __init__(self, message: str, records: tuple[TimelineRecord, ...]) -> None:
        super().__init__(message)
        self.records = records


@attrs.frozen
class RunResult:
    """A finished run: the timeline and where the node kept its state."""

    scenario: Scenario
    records: tuple[TimelineRecord, ...]
    state_dir: Path


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and check a scenario file and the host config it names.

    :raises ScenarioError: the scenario is invalid; the message names the file, event and key.
    :raises HostConfigError: the host config is invalid.
    :raises OSError: a file cannot be read.
    """
    path = Path(path)
    return _parse(read_toml(path, ScenarioError), path)


def run_scenario(
    scenario: Scenario,
    *,
    state_dir: Path,
    extra_plugins_factory: Callable[[], Mapping[str, object]] | None = None,
    entry_points: Iterable[EntryPointLike] | None = None,
) -> RunResult:
    """Play a scenario on a new node whose state lives in ``state_dir`` (created if needed).

    A node still running after the last event stops without a hook, as if the process were
    killed, so the files under ``state_dir`` are what the scenario left.

    :raises ScenarioRunError: an event could not be played (a plugin failed to start, a
        disconnect from an address that is not connected...); its ``records`` attribute holds
        the timeline up to the failure.
    """
    state_dir = Path(os.path.abspath(state_dir))
    state_dir.mkdir(parents=True, exist_ok=True)
    host = PluginHost(
        attrs.evolve(scenario.config, state_dir=state_dir),
        clock=VirtualClock(scenario.start_time),
        extra_plugins_factory=extra_plugins_factory,
        entry_points=entry_points,
        resolver=scenario.names,
    )
    player = _Player(scenario, host)
    try:
        player.play()
    finally:
        if host.running:
            host.crash()
    return RunResult(scenario=scenario, records=tuple(player.records), state_dir=state_dir)


class _Player:
    """Plays a scenario's events on a host and keeps the timeline."""

    def __init__(self, scenario: Scenario, host: PluginHost) -> None:
        self.scenario = scenario
        self.host = host
        self.records: list[TimelineRecord] = []
        self.t = 0

    def play(self) -> None:
        for event in self.scenario.events:
            self.host.advance(event.at - self.t)
            self.t = event.at
            try:
                self.records.append(self.apply(event))
            except (HostsimError, ValueError) as exc:
                message = f"{self.scenario.path}: {event.label()}: {exc}"
                raise ScenarioRunError(message, tuple(self.records)) from exc
        if self.host.running:
            self.records.append(
                TimelineRecord(
                    self.t,
                    "end",
                    f"the run ends with {self.host.node_id} running;"
                    " it stops without a shutdown (no hook called)",
                )
            )

    def apply(self, event: Event) -> TimelineRecord:
        node = self.host.node_id
        at, kind = event.at, event.kind
        match event.action:
            case Start():
                dials = self.dial(self.host.start())
                text = f"{node} (realm {self.host.config.realm.code}) dials {_count(dials)}"
                return TimelineRecord(at, kind, text, dials)
            case Restart():
                if self.host.running:
                    self.host.shutdown()
                dials = self.dial(self.host.start())
                return TimelineRecord(at, kind, f"{node} dials {_count(dials)}", dials)
            case Connect() as connect:
                return self.connect(at, kind, connect)
            case Disconnect(addr=addr, reason=reason):
                peer = self.host.connections.get(addr)
                self.host.disconnect(addr, reason)
                assert peer is not None
                return TimelineRecord(at, kind, f"{peer.addr} ({peer.node_id}): {reason}")
            case PeerList(sender=sender, peers=peers):
                self.host.peer_list(sender, peers)
                count = len(peers)
                text = f"from {sender}: {counted(count, 'address')}"
                return TimelineRecord(at, kind, text)
            case DialFailed(addr=addr, error=error):
                self.host.dial_failed(addr, error)
                return TimelineRecord(at, kind, f"{addr}: {error}")
            case Advance(secs=secs):
                self.host.advance(secs)
                self.t += secs
                ticks = f", {secs} ticks" if self.host.running else ", node stopped"
                return TimelineRecord(at, kind, f"{secs} s pass{ticks}")
            case Shutdown():
                self.host.shutdown()
                return TimelineRecord(at, kind, f"{node} stops gracefully")
            case Crash():
                self.host.crash()
                return TimelineRecord(at, kind, f"{node} crashes (no hook is called)")
        raise AssertionError(kind)  # pragma: no cover - the parser allows no other kind

    def connect(self, at: int, kind: str, connect: Connect) -> TimelineRecord:
        addr = connect.addr
        node_id = connect.node_id or self.scenario.world.get(addr) or f"peer-{addr}"
        peer = self.host.connect(
            addr,
            node_id=node_id,
            direction=connect.direction,
            listen_addr=connect.listen_addr,
            capabilities=connect.capabilities,
        )
        text = f"{addr} ({node_id}), {peer.direction}"
        if peer.direction == "inbound" and peer.listen_addr is not None:
            text += f", listens on {peer.listen_addr}"
        return TimelineRecord(at, kind, text)

    def dial(self, dials: list[Dial]) -> tuple[DialOutcome, ...]:
        """Dial each address: the world answers or the dial fails."""
        outcomes = []
        for dial in dials:
            node_id = self.scenario.world.get(dial.addr)
            if dial.addr in self.host.connections:
                outcome = DialOutcome(dial.addr, dial.origin, error="already connected")
            elif node_id is None:
                self.host.dial_failed(dial.addr, "connection refused")
                outcome = DialOutcome(dial.addr, dial.origin, error="connection refused")
            else:
                self.host.connect(dial.addr, node_id=node_id, direction="outbound")
                outcome = DialOutcome(dial.addr, dial.origin, node_id=node_id)
            outcomes.append(outcome)
        return tuple(outcomes)


def _count(dials: tuple[DialOutcome, ...]) -> str:
    return counted(len(dials), "address") + (":" if dials else "")


@attrs.frozen
class _File:
    config: NonEmptyStr
    start_time: NonNegativeInt = 1_763_700_000
    show_files: bool = False
    world: Mapping[str, NonEmptyStr] = attrs.field(factory=dict)
    names: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    events: tuple[Mapping[str, Any], ...] = ()


@attrs.frozen
class _When:
    at: NonNegativeInt


_KEYS = {**key_tree(_File), "events": "used"}
_EVENT_KEYS = {
    kind: {"at": "used", "do": "used", **key_tree(model)} for kind, model in EVENT_KINDS.items()
}


def _parse(data: Mapping[str, Any], path: Path) -> Scenario:
    source = str(path)
    refuse_unknown_keys(data, _KEYS, where=source, error=ScenarioError)
    if "config" not in data:
        raise ScenarioError(f"{source}: config: missing (required): the host config file to run")
    if "events" not in data:
        raise ScenarioError(f"{source}: [[events]]: missing (required): a scenario needs events")
    file = structure(data, _File, where=source, error=ScenarioError)
    names = {name.lower().removesuffix("."): ips for name, ips in file.names.items()}
    return Scenario(
        path=path,
        config=HostConfig.from_file(path.parent / file.config, base_dir=path.parent),
        start_time=file.start_time,
        show_files=file.show_files,
        world=file.world,
        events=_events(file.events, source),
        names=NameTable(names),
    )


def _events(tables: tuple[Mapping[str, Any], ...], source: str) -> tuple[Event, ...]:
    parsed: list[Event] = []
    not_before = 0
    for index, table in enumerate(tables, start=1):
        event = _event(index, table, source)
        if event.at < not_before:
            earlier = parsed[-1]
            raise ScenarioError(
                f"{source}: event {index} ({event.kind}): at = {event.at} is earlier than"
                f" t=+{not_before}s, where event {earlier.index} ({earlier.kind} at ="
                f" {earlier.at}) leaves the clock; events must be in time order"
            )
        not_before = event.at + (event.action.secs if isinstance(event.action, Advance) else 0)
        parsed.append(event)
    return tuple(parsed)


def _event(index: int, table: Mapping[str, Any], source: str) -> Event:
    kind = table.get("do")
    if not isinstance(kind, str) or kind not in EVENT_KINDS:
        problem = 'missing key "do"' if kind is None else f"do = {show(kind)}: unknown event"
        raise ScenarioError(
            f"{source}: event {index}: {problem} (one of: {', '.join(EVENT_KINDS)})"
        )
    where = f"{source}: event {index} ({kind})"
    refuse_unknown_keys(table, _EVENT_KEYS[kind], where=where, error=ScenarioError)
    if "at" not in table:
        raise ScenarioError(f'{where}: missing key "at"')
    at = structure({"at": table["at"]}, _When, where=where, error=ScenarioError).at
    fields = {key: value for key, value in table.items() if key not in ("at", "do")}
    action = structure(fields, EVENT_KINDS[kind], where=where, error=ScenarioError)
    return Event(index=index, at=at, kind=kind, action=action)
