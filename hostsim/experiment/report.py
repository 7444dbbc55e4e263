"""What the experiment reports: a simulated run as JSON data, the rejoin table both worlds
print side by side (the simulator's demo and the live cluster), and the claims each
experiment checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from hostsim.experiment.arms import SEEDS_ONLY, STORE, STORED_ORIGIN, arm_of
from hostsim.metrics import REJOIN_SECS, RunMetrics
from hostsim.sim.scenario import SimScenario

__all__ = ["Row", "Target", "dials", "pct", "rejoin_rows", "report", "secs", "side_by_side"]


@attrs.frozen
class Target:
    """A claim an experiment checks, whether it holds, and the figures behind the verdict.

    A target that does not ``gate`` is reported with its verdict but does not decide the
    command's exit status.
    """

    name: str
    holds: bool
    detail: str
    gate: bool = True


Row = tuple[str, str, str]


def secs(value: float | None) -> str:
    """A time in seconds for a table, or "never"."""
    return "never" if value is None else f"{value:.1f} s"


def pct(value: float | None) -> str:
    """A share for a table, or "-"."""
    return "-" if value is None else f"{100 * value:.1f}%"


def dials(summary: Mapping[str, Any], origin: str) -> str:
    """The dials of one origin as "connected/tried", or "-"."""
    counts = summary["dials"].get(origin)
    return "-" if counts is None else f"{counts['connected']}/{counts['tried']}"


def rejoin_rows(
    store: Mapping[str, Any], seeds: Mapping[str, Any], *, target: str = ""
) -> list[Row]:
    """The rows both worlds report of their restarts, from two :func:`summarise` results."""
    rows: list[Row] = [
        ("restarts measured", str(store["count"]), str(seeds["count"])),
        (
            "median time to first connection",
            secs(store["median_first_connection_secs"]),
            secs(seeds["median_first_connection_secs"]),
        ),
        (
            f"median time to target connections{target}",
            secs(store["median_target_secs"]),
            secs(seeds["median_target_secs"]),
        ),
        (
            f"rejoined within {REJOIN_SECS:.0f} s",
            pct(store["rejoined_within_60s"]),
            pct(seeds["rejoined_within_60s"]),
        ),
        ("never connected", str(store["never_connected"]), str(seeds["never_connected"])),
    ]
    for origin, label in (
        (STORED_ORIGIN, "dials to stored peers"),
        ("seed", "dials to seeds"),
        ("book", "dials from the address book"),
    ):
        rows.append((f"{label}: connected/tried", dials(store, origin), dials(seeds, origin)))
    return rows


def side_by_side(rows: Sequence[Row]) -> list[str]:
    """``rows`` as a table with a peer-store and a seeds-only column."""
    width = max(len(label) for label, _, _ in rows)
    column = max(12, *(len(v) for _, a, b in rows for v in (a, b)))
    lines = [f"{'':<{width}}  {STORE.label:>{column}}  {SEEDS_ONLY.label:>{column}}"]
    lines += [f"{label:<{width}}  {a:>{column}}  {b:>{column}}" for label, a, b in rows]
    return lines


def report(scenario: SimScenario, seed: int, metrics: RunMetrics) -> dict[str, Any]:
    """A run as JSON data: what was run (``persistence``: whether its arm keeps peers), the
    summary, the series and every start."""
    return {
        "scenario": scenario.name,
        "seed": seed,
        "persistence": arm_of(scenario).keeps_peers,
        "nodes": scenario.nodes,
        "seeds": scenario.seeds,
        "attackers": scenario.attackers,
        "duration_secs": scenario.duration_secs,
        "events_run": metrics.events_run,
        **metrics.to_json(),
    }
