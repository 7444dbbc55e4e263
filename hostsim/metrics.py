"""What a run of many nodes measures, in either world: one record per node start, a
connected-fraction series, and the attacker's share of reconnect plans and connections;
summaries and a stable JSON form."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "REJOIN_SECS",
    "RunMetrics",
    "StartRecord",
    "dumps",
    "median_or_never",
    "summarise",
]

REJOIN_SECS = 60.0
"""A restarted node has rejoined when its first connection comes within this many seconds."""
DIGITS = 3
"""Floats in the JSON output are rounded to this many decimals."""


@attrs.define
class StartRecord:
    """One start of one node, and how fast it got back into the network.

    ``cause`` is ``"initial"`` for a node's first start, else the event that stopped it
    (``"restart"``, ``"crash"``, ``"mass_restart"``, ``"seed_outage"``, ``"churn"``).
    Times are seconds since the start of the run; durations are seconds since ``at``.
    """

    node: str
    role: str
    cause: str
    at: float
    plan: tuple[str, ...] = ()
    """The addresses the plugins asked to dial before the seeds (the reconnect plan)."""
    plan_attacker: int = 0
    """Entries of the plan that are attacker nodes."""
    plan_fake: int = 0
    """Entries of the plan that no node listens on (addresses an attacker made up)."""
    dials: dict[str, list[int]] = attrs.field(factory=dict)
    """Per origin (a plugin's name, ``"seed"``, ``"book"``): [dials, connected]."""
    first_connection: float | None = None
    """When the node got its first connection, inbound or outbound."""
    target_reached: float | None = None
    """When the node first had as many connections, inbound or outbound, as its outbound
    target (``target_outbound``)."""

    @property
    def rejoined(self) -> bool:
        """Whether the first connection came within :data:`REJOIN_SECS`."""
        return self.first_connection is not None and self.first_connection <= REJOIN_SECS

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON data."""
        return {
            "node": self.node,
            "role": self.role,
            "cause": self.cause,
            "at": self.at,
            "plan": list(self.plan),
            "plan_attacker": self.plan_attacker,
            "plan_fake": self.plan_fake,
            "dials": {origin: list(counts) for origin, counts in sorted(self.dials.items())},
            "first_connection_secs": self.first_connection,
            "target_secs": self.target_reached,
            "rejoined": self.rejoined,
        }


@attrs.define
class RunMetrics:
    """Everything one run measured."""

    starts: list[StartRecord] = attrs.field(factory=list)
    series_t: list[float] = attrs.field(factory=list)
    series_connected: list[float] = attrs.field(factory=list)
    """Per sample: the fraction of ordinary nodes that are up and have a connection."""
    attacker_conn_samples: list[float] = attrs.field(factory=list)
    """Per sample: the attackers' share of the honest nodes' connections."""
    failed_starts: int = 0
    events_run: int = 0

    def restarts(self, cause: str | None = None) -> list[StartRecord]:
        """The starts of ordinary nodes after their first, optionally of one cause only."""
        return [
            r
            for r in self.starts
            if r.role == "node" and r.cause != "initial" and (cause is None or r.cause == cause)
        ]

    def summary(self) -> dict[str, Any]:
        """The run's headline figures, overall and per cause of restart."""
        causes = sorted({r.cause for r in self.restarts()})
        plans = [r for r in self.starts if r.cause != "initial" and r.role != "attacker"]
        entries = sum(len(r.plan) for r in plans)
        return {
            "restarts": summarise(self.restarts()),
            "by_cause": {cause: summarise(self.restarts(cause)) for cause in causes},
            "plan_entries": entries,
            "plan_attacker_entries": sum(r.plan_attacker for r in plans),
            "plan_fake_entries": sum(r.plan_fake for r in plans),
            "attacker_plan_share": _ratio(
                sum(r.plan_attacker + r.plan_fake for r in plans), entries
            ),
            "attacker_connection_share": _mean(self.attacker_conn_samples),
            "connected_fraction_mean": _mean(self.series_connected),
            "failed_starts": self.failed_starts,
        }

    def to_json(self) -> dict[str, Any]:
        """The whole run as plain JSON data."""
        return {
            "summary": self.summary(),
            "series": {"t": self.series_t, "connected_fraction": self.series_connected},
            "starts": [r.to_json() for r in self.starts],
        }


def summarise(records: Sequence[StartRecord]) -> dict[str, Any]:
    """Medians and counts over some restarts.

    A restart that never reached a milestone counts as slower than every one that did, so a
    median is None ("never") when half or more of the restarts never got there.
    """
    dials: dict[str, list[int]] = {}
    for record in records:
        for origin, (tried, ok) in record.dials.items():
            total = dials.setdefault(origin, [0, 0])
            total[0] += tried
            total[1] += ok
    return {
        "count": len(records),
        "median_first_connection_secs": median_or_never(r.first_connection for r in records),
        "median_target_secs": median_or_never(r.target_reached for r in records),
        "rejoined_within_60s": _ratio(sum(r.rejoined for r in records), len(records)),
        "never_connected": sum(r.first_connection is None for r in records),
        "dials": {
            origin: {"tried": t, "connected": ok} for origin, (t, ok) in sorted(dials.items())
        },
    }


def median_or_never(values: Iterable[float | None]) -> float | None:
    """The median of some times, None ("never") standing for a time that never came: it
    counts as later than every other, so the median is None when half or more never came (or
    there are none)."""
    ranked = [math.inf if v is None else v for v in values]
    if not ranked:
        return None
    median = statistics.median_low(ranked)
    return None if math.isinf(median) else median


def _ratio(part: float, whole: float) -> float | None:
    return None if whole == 0 else part / whole


def _mean(values: Sequence[float]) -> float | None:
    return None if not values else math.fsum(values) / len(values)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, DIGITS) + 0.0  # + 0.0 turns -0.0 into 0.0
    if isinstance(value, Mapping):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def dumps(data: Mapping[str, Any]) -> str:
    """Stable JSON: sorted keys, floats rounded to :data:`DIGITS` decimals, a final newline."""
    return json.dumps(_rounded(data), sort_keys=True, indent=1, allow_nan=False) + "\n"
