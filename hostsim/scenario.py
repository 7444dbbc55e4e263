"""Scripted runs: a scenario file (TOML) drives one node through time; the runner keeps a timeline.

```toml
config = "node.toml"        # the host config, relative to this file (required)
start_time = 1763700000     # virtual epoch seconds at t=0 (optional)
show_files = true           # the CLI prints the state directory's files at the end (optional)

[world]                     # who answers a dial: address -> node id; any other address refuses
"203.0.113.1:7447" = "seed-1"

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

Between events the host's time advances, one ``on_tick`` per second while the node runs.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from hostsim._frozen import check_event_keys, show
from hostsim.clock import VirtualClock
from hostsim.config import HostConfig
from hostsim.errors import HostsimError, ScenarioError
from hostsim.host import Dial, SimHost
from hostsim.plugins import EntryPointLike

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

_TOP_KEYS = ("config", "start_time", "show_files", "world", "events")

EVENT_KINDS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "start": ((), ()),
    "restart": ((), ()),
    "connect": (("addr",), ("node_id", "direction", "listen_addr", "capabilities")),
    "disconnect": (("addr",), ("reason",)),
    "peer_list": (("from", "peers"), ()),
    "dial_failed": (("addr",), ("error",)),
    "advance": (("secs",), ()),
    "shutdown": ((), ()),
    "crash": ((), ()),
}
"""Every event kind, with its required and its optional keys (besides ``at`` and ``do``)."""

_STRING_KEYS = ("addr", "node_id", "listen_addr", "reason", "from", "error")
_STRING_LIST_KEYS = ("capabilities", "peers")
_DIRECTIONS = ("outbound", "inbound")


@attrs.frozen
class Event:
    """One scripted event: its 1-based position, time, kind and checked arguments."""

    index: int
    at: int
    kind: str
    args: Mapping[str, Any] = attrs.field(hash=False)

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
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: invalid TOML: {exc}") from None
    return _Parser(str(path)).parse(data, path)


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
    host = SimHost(
        attrs.evolve(scenario.config, state_dir=state_dir),
        clock=VirtualClock(scenario.start_time),
        extra_plugins_factory=extra_plugins_factory,
        entry_points=entry_points,
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

    def __init__(self, scenario: Scenario, host: SimHost) -> None:
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
        args = event.args
        node = self.host.node_id
        match event.kind:
            case "start":
                dials = self.dial(self.host.start())
                text = f"{node} (realm {self.host.config.realm.code}) dials {_count(dials)}"
                return TimelineRecord(event.at, event.kind, text, dials)
            case "restart":
                if self.host.running:
                    self.host.shutdown()
                dials = self.dial(self.host.start())
                return TimelineRecord(event.at, event.kind, f"{node} dials {_count(dials)}", dials)
            case "connect":
                return self.connect(event)
            case "disconnect":
                peer = self.host.connections.get(args["addr"])
                reason = args.get("reason", "closed")
                self.host.disconnect(args["addr"], reason)
                assert peer is not None
                text = f"{peer.addr} ({peer.node_id}): {reason}"
                return TimelineRecord(event.at, event.kind, text)
            case "peer_list":
                self.host.peer_list(args["from"], args["peers"])
                count = len(args["peers"])
                text = f"from {args['from']}: {count} address{'es' if count != 1 else ''}"
                return TimelineRecord(event.at, event.kind, text)
            case "dial_failed":
                error = args.get("error", "connection refused")
                self.host.dial_failed(args["addr"], error)
                return TimelineRecord(event.at, event.kind, f"{args['addr']}: {error}")
            case "advance":
                secs = args["secs"]
                self.host.advance(secs)
                self.t += secs
                ticks = f", {secs} ticks" if self.host.running else ", node stopped"
                return TimelineRecord(event.at, event.kind, f"{secs} s pass{ticks}")
            case "shutdown":
                self.host.shutdown()
                return TimelineRecord(event.at, event.kind, f"{node} stops gracefully")
            case "crash":
                self.host.crash()
                return TimelineRecord(event.at, event.kind, f"{node} crashes (no hook is called)")
        raise AssertionError(event.kind)  # pragma: no cover - the parser allows no other kind

    def connect(self, event: Event) -> TimelineRecord:
        args = event.args
        addr = args["addr"]
        node_id = args.get("node_id") or self.scenario.world.get(addr) or f"peer-{addr}"
        peer = self.host.connect(
            addr,
            node_id=node_id,
            direction=args.get("direction", "outbound"),
            listen_addr=args.get("listen_addr"),
            capabilities=args.get("capabilities", ()),
        )
        text = f"{addr} ({node_id}), {peer.direction}"
        if peer.direction == "inbound" and peer.listen_addr is not None:
            text += f", listens on {peer.listen_addr}"
        return TimelineRecord(event.at, event.kind, text)

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
    return f"{len(dials)} address{'es' if len(dials) != 1 else ''}" + (":" if dials else "")


@attrs.frozen
class _Parser:
    """Checks a scenario document; ``source`` prefixes every error message."""

    source: str

    def error(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {where}: {message}")

    def parse(self, data: Mapping[str, Any], path: Path) -> Scenario:
        for key in data:
            if key not in _TOP_KEYS:
                raise self.error(show(key), f"unknown key (known keys: {', '.join(_TOP_KEYS)})")
        config_name = data.get("config")
        if config_name is None:
            raise self.error("config", "missing (required): the host config file to run")
        if not isinstance(config_name, str) or not config_name:
            raise self.error("config", f"expected a file name, got {show(config_name)}")
        start_time = data.get("start_time", 1_763_700_000)
        if isinstance(start_time, bool) or not isinstance(start_time, int) or start_time < 0:
            raise self.error(
                "start_time", f"expected a non-negative integer, got {show(start_time)}"
            )
        show_files = data.get("show_files", False)
        if not isinstance(show_files, bool):
            raise self.error("show_files", f"expected true or false, got {show(show_files)}")
        return Scenario(
            path=path,
            config=HostConfig.from_file(path.parent / config_name),
            start_time=start_time,
            show_files=show_files,
            world=self.world(data.get("world", {})),
            events=self.events(data.get("events")),
        )

    def world(self, world: object) -> dict[str, str]:
        if not isinstance(world, Mapping):
            raise self.error("[world]", f"expected a table of address = node id, got {show(world)}")
        for addr, node_id in world.items():
            if not isinstance(node_id, str) or not node_id:
                raise self.error(
                    f"[world] {show(addr)}", f"expected a node id, got {show(node_id)}"
                )
        return dict(world)

    def events(self, events: object) -> tuple[Event, ...]:
        if events is None:
            raise self.error("[[events]]", "missing (required): a scenario needs events")
        if not isinstance(events, list) or not all(isinstance(e, Mapping) for e in events):
            raise self.error(
                "events", f"expected an array of tables [[events]], got {show(events)}"
            )
        parsed: list[Event] = []
        not_before = 0
        for index, table in enumerate(events, start=1):
            event = self.event(index, table)
            if event.at < not_before:
                earlier = parsed[-1]
                raise self.error(
                    f"event {index} ({event.kind})",
                    f"at = {event.at} is earlier than t=+{not_before}s, where event"
                    f" {earlier.index} ({earlier.kind} at = {earlier.at}) leaves the clock;"
                    " events must be in time order",
                )
            not_before = event.at + (event.args["secs"] if event.kind == "advance" else 0)
            parsed.append(event)
        return tuple(parsed)

    def event(self, index: int, table: Mapping[str, Any]) -> Event:
        if table.get("do") is None:
            raise self.error(
                f"event {index}", f'missing key "do" (one of: {", ".join(EVENT_KINDS)})'
            )
        kind, where, required, optional = check_event_keys(table, index, EVENT_KINDS, self.error)
        args = {
            key: self.value(where, key, table[key])
            for key in (*required, *optional)
            if key in table
        }
        return Event(
            index=index, at=self.whole_secs(where, "at", table["at"]), kind=kind, args=args
        )

    def value(self, where: str, key: str, value: object) -> Any:
        if key == "secs":
            return self.whole_secs(where, key, value)
        if key in _STRING_LIST_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self.error(where, f"{key}: expected an array of strings, got {show(value)}")
            return tuple(value)
        assert key in _STRING_KEYS or key == "direction"
        if not isinstance(value, str):
            raise self.error(where, f"{key}: expected a string, got {show(value)}")
        if key == "direction" and value not in _DIRECTIONS:
            raise self.error(where, f'direction = {show(value)}: must be "outbound" or "inbound"')
        if key in ("addr", "from", "node_id") and not value:
            raise self.error(where, f"{key}: must not be empty")
        return value

    def whole_secs(self, where: str, key: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(
                where, f"{key}: expected whole seconds (an integer), got {show(value)}"
            )
        if value < 0:
            raise self.error(where, f"{key} = {value}: must not be negative")
        return value
