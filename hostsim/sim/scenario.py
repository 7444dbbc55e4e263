"""Network scenarios: frozen models (the Python API) and the TOML file that describes them.

```toml
name = "mass-restart"
nodes = 200                 # ordinary nodes, besides the seeds and the attackers
seeds = 4                   # listed in every node's bootstrap_nodes
attackers = 0               # nodes that gossip fake addresses during a "flood" event,
                            # or connect in to every node at an "inbound_attack"
duration_secs = 1800
tick_interval_secs = 1      # how often every node gets on_tick

[discovery]                 # every node's [discovery], as in TheNodes (these are its defaults)
enabled = true
request_interval_secs = 90  # a peer request every 90 s
request_want = 16           # asking for 16 addresses

[network.persistence]       # merged into every node's host config; "enabled" is the A/B switch
enabled = true

[network.connection_policy] # every node's, as in TheNodes 0.4 (its defaults): how the core
reconnect_base_delay_ms = 1000  # retries the peers the plugins plan at startup

[churn]                     # optional: nodes leave and come back on their own
session = { dist = "exponential", mean_secs = 1800 }
downtime = { dist = "weibull", shape = 0.5, scale_secs = 120 }
crash_fraction = 0.5

[[events]]
at = 900
do = "mass_restart"
```

Event kinds (besides ``at`` and ``do``): ``restart`` and ``crash`` (``node``, ``downtime_secs?``),
``mass_restart`` (``fraction?``, ``downtime_min_secs?``, ``downtime_max_secs?``, ``graceful?``),
``seed_outage`` (``until``), ``uplink_outage`` (``until``), ``flood`` (``until``,
``addrs_per_message?``, ``push_interval_secs?``), ``inbound_attack``. See :class:`SimScenario`
for every top-level key and its default. A key the format does not define is an error naming
the closest one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from hostsim.config import ConnectionPolicy, Discovery
from hostsim.convert import (
    NOT_NEGATIVE,
    OPAQUE,
    POSITIVE,
    RATIO,
    KeyTree,
    freeze,
    key_tree,
    one_of,
    overlaid,
    read_toml,
    refuse_unknown_keys,
    show,
    structure,
)
from hostsim.errors import ScenarioError

__all__ = [
    "EVENT_KINDS",
    "Churn",
    "Distribution",
    "SimEvent",
    "SimScenario",
    "load_sim_scenario",
    "parse_sim_scenario",
]

DistKind = Literal["exponential", "weibull"]


@attrs.frozen
class Distribution:
    """A distribution of durations: exponential (``mean_secs``) or Weibull (``shape``,
    ``scale_secs``; a shape below 1 is heavy-tailed: many short stays and a few very long)."""

    dist: DistKind = attrs.field(
        default="exponential",
        validator=one_of(("exponential", "weibull"), 'must be "exponential" or "weibull"'),
    )
    mean_secs: float = attrs.field(default=1800.0, validator=POSITIVE)
    shape: float = attrs.field(default=0.5, validator=POSITIVE)
    scale_secs: float = attrs.field(default=600.0, validator=POSITIVE)

    def draw(self, uniform: float) -> float:
        """A duration, from a uniform draw in [0, 1)."""
        tail = -math.log(1.0 - uniform)
        if self.dist == "exponential":
            return self.mean_secs * tail
        return float(self.scale_secs * tail ** (1.0 / self.shape))


@attrs.frozen
class Churn:
    """Ordinary nodes leave after a session and come back after a downtime, between
    ``from_secs`` and ``until_secs`` (default: the whole run)."""

    session: Distribution = Distribution("exponential", mean_secs=1800.0)
    downtime: Distribution = Distribution("weibull", shape=0.5, scale_secs=120.0)
    crash_fraction: float = attrs.field(default=0.5, validator=RATIO)
    from_secs: float = attrs.field(default=0.0, validator=NOT_NEGATIVE)
    until_secs: float | None = None


EVENT_KINDS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "restart": (("node",), ("downtime_secs",)),
    "crash": (("node",), ("downtime_secs",)),
    "mass_restart": ((), ("fraction", "downtime_min_secs", "downtime_max_secs", "graceful")),
    "seed_outage": (("until",), ()),
    "uplink_outage": (("until",), ()),
    "flood": (("until",), ("addrs_per_message", "push_interval_secs")),
    "inbound_attack": ((), ()),
}
"""Every event kind, with its required and optional keys (besides ``at`` and ``do``)."""


@attrs.frozen
class SimEvent:
    """A lifecycle event at ``at`` seconds into the run.

    - ``restart`` / ``crash``: ``node`` stops gracefully (``on_shutdown``) or dies (no hook),
      and starts again ``downtime_secs`` later.
    - ``mass_restart``: a ``fraction`` of the up ordinary nodes stop at once (gracefully unless
      ``graceful`` is false); each starts again after a downtime drawn uniformly from
      ``downtime_min_secs`` .. ``downtime_max_secs``.
    - ``seed_outage``: every seed stops at ``at`` and starts again at ``until``.
    - ``uplink_outage``: every ordinary node's own uplink is down from ``at`` to ``until``:
      its connections end, and every dial it makes or receives fails; its process runs on.
    - ``flood``: until ``until``, every attacker answers peer-list requests with
      ``addrs_per_message`` fake addresses and pushes such lists to its connections every
      ``push_interval_secs``.
    - ``inbound_attack``: every running attacker dials every running ordinary node, so each
      ordinary node gets an inbound connection from each attacker, whose HELLO advertises the
      attacker's listen address (on the IP it connects from).
    """

    at: float = attrs.field(validator=NOT_NEGATIVE)
    do: str = attrs.field(
        validator=one_of(EVENT_KINDS, f"unknown event (known: {', '.join(EVENT_KINDS)})")
    )
    node: str | None = None
    downtime_secs: float = attrs.field(default=0.0, validator=NOT_NEGATIVE)
    fraction: float = attrs.field(default=1.0, validator=RATIO)
    downtime_min_secs: float = attrs.field(default=5.0, validator=NOT_NEGATIVE)
    downtime_max_secs: float = attrs.field(default=30.0, validator=NOT_NEGATIVE)
    graceful: bool = True
    until: float | None = None
    addrs_per_message: int = attrs.field(default=1000, validator=POSITIVE)
    push_interval_secs: float = attrs.field(default=30.0, validator=POSITIVE)

    def __attrs_post_init__(self) -> None:
        required, _ = EVENT_KINDS[self.do]
        for key in required:
            if getattr(self, key) is None:
                raise ValueError(f"{self.do} needs {key!r}")
        if self.until is not None and self.until < self.at:
            raise ValueError(f"until = {show(self.until)}: must not be before at = {show(self.at)}")
        if self.downtime_max_secs < self.downtime_min_secs:
            raise ValueError(
                f"downtime_max_secs = {show(self.downtime_max_secs)}: must not be less than"
                f" downtime_min_secs = {show(self.downtime_min_secs)}"
            )


@attrs.frozen
class SimScenario:
    """A network to simulate: who is in it, how nodes behave, and what happens when."""

    name: str = "sim"
    nodes: int = attrs.field(default=100, validator=NOT_NEGATIVE)
    seeds: int = attrs.field(default=4, validator=NOT_NEGATIVE)
    attackers: int = attrs.field(default=0, validator=NOT_NEGATIVE)
    duration_secs: float = attrs.field(default=3600.0, validator=POSITIVE)
    realm: str = "Sim"
    target_outbound: int = attrs.field(default=8, validator=POSITIVE)
    """Outbound connections each node keeps; it dials known addresses to replace lost ones."""
    max_inbound: int = attrs.field(default=64, validator=POSITIVE)
    """Inbound slots; a dial to a node whose slots are all taken is refused."""
    seed_max_inbound: int = attrs.field(default=1000, validator=POSITIVE)
    """A seed's inbound slots: seeds are provisioned to take the whole network's first dials."""
    latency_min_ms: float = attrs.field(default=20.0, validator=NOT_NEGATIVE)
    latency_max_ms: float = attrs.field(default=200.0, validator=NOT_NEGATIVE)
    dial_timeout_secs: float = attrs.field(default=5.0, validator=POSITIVE)
    """How long a dial to an address nobody listens on takes to fail."""
    maintain_interval_secs: float = attrs.field(default=10.0, validator=POSITIVE)
    """How often a node below its outbound target dials more."""
    discovery: Discovery = attrs.field(factory=Discovery)
    """Every node's ``[discovery]``: how often it asks a connection for peers, and for how many."""
    tick_interval_secs: float = attrs.field(default=1.0, validator=POSITIVE)
    sample_interval_secs: float = attrs.field(default=10.0, validator=POSITIVE)
    start_spread_secs: float = attrs.field(default=60.0, validator=NOT_NEGATIVE)
    """Ordinary nodes first start at a time drawn uniformly from 0 .. this; seeds at 0."""
    attackers_start_secs: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(NOT_NEGATIVE)
    )
    """When the attackers first start, all at once; by default as ordinary nodes do. An
    attacker that starts late is one nobody has heard of or dialled before."""
    host_config: Mapping[str, Any] = attrs.field(
        factory=lambda: freeze({"network": {"persistence": {"enabled": True}}}),
        converter=freeze,
        hash=False,
        metadata={OPAQUE: True},
    )
    """A host-config overlay: merged into every node's host config (the scenario file's
    ``[network.persistence]`` table, and whatever a caller adds). Without a ``[plugins]``
    table, a node loads the installed plugins whose config table the overlay turns on."""
    connection_policy: ConnectionPolicy = attrs.field(factory=ConnectionPolicy)
    """Every node's ``[network.connection_policy]`` (TheNodes 0.4): how its core retries the
    peers its plugins plan at startup."""
    churn: Churn | None = None
    events: tuple[SimEvent, ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.nodes + self.seeds < 1:
            raise ValueError("nodes + seeds must be at least 1")
        if self.latency_max_ms < self.latency_min_ms:
            raise ValueError(
                f"latency_max_ms = {show(self.latency_max_ms)}: must not be less than"
                f" latency_min_ms = {show(self.latency_min_ms)}"
            )

    @property
    def size(self) -> int:
        """Every node of the network: the ordinary ones, the seeds and the attackers."""
        return self.nodes + self.seeds + self.attackers

    @property
    def persistence(self) -> Mapping[str, Any]:
        """The ``[network.persistence]`` table of :attr:`host_config`."""
        network = self.host_config.get("network", {})
        table: Mapping[str, Any] = network.get("persistence", {})
        return table

    @property
    def persistence_enabled(self) -> bool:
        """Whether :attr:`host_config` sets ``[network.persistence] enabled = true``."""
        return self.persistence.get("enabled") is True

    def with_persistence(self, enabled: bool) -> SimScenario:
        """The same scenario with ``[network.persistence] enabled`` set."""
        return self.with_host_config({"network": {"persistence": {"enabled": enabled}}})

    def with_host_config(self, overlay: Mapping[str, Any]) -> SimScenario:
        """The same scenario with ``overlay`` merged into :attr:`host_config`."""
        return attrs.evolve(self, host_config=overlaid(self.host_config, overlay))


_NETWORK: KeyTree = {"persistence": OPAQUE, "connection_policy": key_tree(ConnectionPolicy)}
_KEYS: KeyTree = {
    **{
        key: sub
        for key, sub in key_tree(SimScenario).items()
        if key not in ("host_config", "connection_policy", "events")
    },
    "network": _NETWORK,
    "events": "used",
}


def load_sim_scenario(path: str | os.PathLike[str]) -> SimScenario:
    """Read and check a network scenario file.

    :raises ScenarioError: the file is not valid TOML or a key or value is wrong; the message
        names the file, the key and the value.
    :raises OSError: the file cannot be read.
    """
    path = Path(path)
    return parse_sim_scenario(read_toml(path, ScenarioError), source=str(path))


def parse_sim_scenario(data: Mapping[str, Any], *, source: str = "<scenario>") -> SimScenario:
    """Check parsed TOML data and build the scenario; ``source`` names it in errors.

    The ``[network.persistence]`` table becomes the scenario's host-config overlay; without
    it, the overlay has ``[network.persistence] enabled = true``.

    :raises ScenarioError: a key or value is wrong.
    """
    refuse_unknown_keys(data, _KEYS, where=source, error=ScenarioError)
    values = {key: value for key, value in data.items() if key not in ("network", "events")}
    network = data.get("network", {})
    persistence = network.get("persistence", {}) if isinstance(network, Mapping) else network
    if not isinstance(persistence, Mapping):
        raise ScenarioError(
            f"{source}: [network.persistence]: expected a table, got {show(persistence)}"
        )
    enabled = persistence.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ScenarioError(
            f"{source}: [network.persistence] enabled: expected true or false, got {show(enabled)}"
        )
    values["host_config"] = {"network": {"persistence": {**persistence, "enabled": enabled}}}
    if isinstance(network, Mapping) and "connection_policy" in network:
        values["connection_policy"] = network["connection_policy"]
    events = data.get("events", [])
    if not isinstance(events, list) or not all(isinstance(e, Mapping) for e in events):
        raise ScenarioError(
            f"{source}: events: expected an array of tables [[events]], got {show(events)}"
        )
    scenario = structure(values, SimScenario, where=source, error=ScenarioError)
    parsed = [_event(index, table, source) for index, table in enumerate(events, start=1)]
    return attrs.evolve(scenario, events=tuple(sorted(parsed, key=lambda e: e.at)))


def _event(index: int, table: Mapping[str, Any], source: str) -> SimEvent:
    kind = table.get("do")
    if not isinstance(kind, str) or kind not in EVENT_KINDS:
        raise ScenarioError(
            f"{source}: event {index}: do = {show(kind)}: unknown event"
            f" (known: {', '.join(EVENT_KINDS)})"
        )
    where = f"{source}: event {index} ({kind})"
    required, optional = EVENT_KINDS[kind]
    keys = dict.fromkeys(("at", "do", *required, *optional), "used")
    refuse_unknown_keys(table, keys, where=where, error=ScenarioError)
    for key in ("at", *required):
        if key not in table:
            raise ScenarioError(f'{where}: missing key "{key}"')
    return structure(table, SimEvent, where=where, error=ScenarioError)
