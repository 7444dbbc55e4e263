"""A/B runs (the same scenario and seed with the peer store enabled and disabled) and the
built-in demo: a mass restart with seeds up, with every seed down, after a gossip flood, after
attackers connected in to every node, and after a downtime of twice the entries' TTL; and,
with ``--own-failures``, a restart after hours without uplink and a restart from a stale
file."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from hostsim.errors import HostsimError
from hostsim.experiment.arms import ARMS, SEEDS_ONLY, STORE
from hostsim.experiment.report import Target, pct, rejoin_rows, report, secs, side_by_side
from hostsim.metrics import RunMetrics, summarise
from hostsim.sim.network import ATTACK_ORIGIN, SimNetwork, fake_addr, simulate
from hostsim.sim.scenario import SimEvent, SimScenario
from hostsim.sim.scratch import scratch_directory
from thenodes_console import counted
from thenodes_peerstore import door
from thenodes_peerstore.model import Source

__all__ = [
    "DEMO_NODES",
    "Comparison",
    "check_own_failure_targets",
    "check_targets",
    "compare",
    "compare_stale_file",
    "demo_scenarios",
    "format_comparison",
    "long_downtime_scenario",
    "plot_comparisons",
    "require_matplotlib",
    "stale_file_scenario",
    "uplink_outage_scenario",
]

DEMO_NODES = 60
"""The demo's default network size: small enough to run in seconds on two cores."""
RESTART_AT = 300.0
"""When the demo's mass restart happens: the stores have had five minutes to learn peers."""
FAST_REJOIN_SECS = 15.0
"""With the seeds down, the store's median time to the target connections is at most this."""
ATTACKERS = 5
"""Attacker nodes in the flood and the inbound attack."""
ATTACK_AT = RESTART_AT - 30
"""When the attackers connect in to every node: half a minute before the mass restart."""
UPLINK_OUTAGE_SECS = 4 * 3600
"""How long every node's own uplink is down in the uplink-outage scenario."""
STALE_RATIO = 1.1
"""With every stored peer dead, the store's median time to target is at most this times
seeds only's."""
PLAN_SIZE = 5
"""``reconnect_limit``'s default: the anchors a restart should still plan."""
LONG_TTL_SECS = 3600
"""``[network.persistence] ttl_secs`` in the long-downtime scenario: an hour, so that twice it
is a downtime the simulator plays in a few seconds; what matters is the ratio."""


@attrs.frozen
class Comparison:
    """One scenario run twice with one seed: with the peer store, and with seeds only."""

    scenario: SimScenario
    seed: int
    store: RunMetrics
    seeds_only: RunMetrics
    cause: str | None = None
    """The restarts the table is about (e.g. ``"mass_restart"``); None for every restart."""

    def summaries(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The restart summaries of both arms."""
        return (
            summarise(self.store.restarts(self.cause)),
            summarise(self.seeds_only.restarts(self.cause)),
        )

    def to_json(self) -> dict[str, Any]:
        """Both runs as JSON data."""
        return {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "store": report(STORE.on(self.scenario), self.seed, self.store),
            "seeds_only": report(SEEDS_ONLY.on(self.scenario), self.seed, self.seeds_only),
        }


def compare(
    scenario: SimScenario,
    *,
    seed: int,
    state_dir: Path | None = None,
    cause: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Run ``scenario`` with the peer store enabled, then disabled, with the same seed.

    With ``state_dir`` the arms keep their files in its ``store`` and ``seeds-only``
    subdirectories; else in temporary directories that are removed afterwards. ``progress``
    is as :class:`~hostsim.sim.network.SimNetwork` takes it.
    """
    arms = []
    for arm in ARMS:
        arms.append(
            simulate(
                arm.on(scenario),
                seed=seed,
                state_dir=None if state_dir is None else state_dir / arm.name,
                progress=progress,
                label=arm.label,
            )
        )
    return Comparison(scenario, seed, arms[0], arms[1], cause)


def demo_scenarios(
    nodes: int = DEMO_NODES, *, tick_interval_secs: float = 1.0
) -> tuple[SimScenario, ...]:
    """The five built-in scenarios, for a network of ``nodes`` ordinary nodes and 4 seeds.

    Every node starts in the first minute; at t=300 s every ordinary node restarts
    gracefully and comes back after 5 to 30 s; the run ends at t=900 s.

    (a) ``seeds-up``: the seeds stay up.
    (b) ``seeds-down``: the seeds go down at t=280 s and stay down.
    (c) ``flood``: 5 attackers gossip 1,000 fake addresses per message from t=60 s until
        the restart.
    (d) ``inbound-attack``: 5 attackers, unknown until then, start at t=260 s and at t=270 s
        each connects in to every node (advertising its own listen address); seeds stay up.
    (e) ``long-downtime``: see :func:`long_downtime_scenario`.
    """
    restart = SimEvent(at=RESTART_AT, do="mass_restart", downtime_min_secs=5, downtime_max_secs=30)
    common: dict[str, Any] = {
        "nodes": nodes,
        "seeds": 4,
        "duration_secs": 900.0,
        "tick_interval_secs": tick_interval_secs,
    }
    return (
        SimScenario(name="seeds-up", events=(restart,), **common),
        SimScenario(
            name="seeds-down",
            events=(SimEvent(at=RESTART_AT - 20, do="seed_outage", until=900.0), restart),
            **common,
        ),
        SimScenario(
            name="flood",
            attackers=ATTACKERS,
            events=(SimEvent(at=60.0, do="flood", until=RESTART_AT), restart),
            **common,
        ),
        SimScenario(
            name="inbound-attack",
            attackers=ATTACKERS,
            attackers_start_secs=ATTACK_AT - 10,
            events=(SimEvent(at=ATTACK_AT, do="inbound_attack"), restart),
            **common,
        ),
        long_downtime_scenario(nodes, tick_interval_secs=tick_interval_secs),
    )


def long_downtime_scenario(
    nodes: int = DEMO_NODES, *, ttl_secs: int = LONG_TTL_SECS, tick_interval_secs: float = 1.0
) -> SimScenario:
    """``long-downtime``: the nodes' ``[network.persistence] ttl_secs`` is ``ttl_secs``; the
    seeds go down at t=280 s and stay down; at t=300 s every ordinary node stops gracefully and
    stays off for twice ``ttl_secs`` (to 25 s more, so they do not all come back in one
    instant); the run ends 10 minutes after the last is back."""
    downtime = 2.0 * ttl_secs
    end = RESTART_AT + downtime + 25 + 600
    return SimScenario(
        name="long-downtime",
        nodes=nodes,
        seeds=4,
        duration_secs=end,
        tick_interval_secs=tick_interval_secs,
        host_config={"network": {"persistence": {"enabled": True, "ttl_secs": ttl_secs}}},
        events=(
            SimEvent(at=RESTART_AT - 20, do="seed_outage", until=end),
            SimEvent(
                at=RESTART_AT,
                do="mass_restart",
                downtime_min_secs=downtime,
                downtime_max_secs=downtime + 25,
            ),
        ),
    )


def uplink_outage_scenario(
    nodes: int = DEMO_NODES,
    *,
    outage_secs: float = UPLINK_OUTAGE_SECS,
    tick_interval_secs: float = 1.0,
) -> SimScenario:
    """``uplink-outage``: the seeds go down at t=280 s and stay down; from t=300 s every
    ordinary node's own uplink is down for ``outage_secs`` (its connections end, every dial
    fails, the process runs on); when it is back every node restarts (5 to 30 s later); the
    run ends 5 minutes after."""
    back = RESTART_AT + outage_secs
    end = back + 330
    return SimScenario(
        name="uplink-outage",
        nodes=nodes,
        seeds=4,
        duration_secs=end,
        tick_interval_secs=tick_interval_secs,
        events=(
            SimEvent(at=RESTART_AT - 20, do="seed_outage", until=end),
            SimEvent(at=RESTART_AT, do="uplink_outage", until=back),
            SimEvent(at=back, do="mass_restart", downtime_min_secs=5, downtime_max_secs=30),
        ),
    )


def stale_file_scenario(nodes: int = DEMO_NODES, *, tick_interval_secs: float = 1.0) -> SimScenario:
    """``stale-file``: seeds up; at t=300 s every ordinary node stops for 60 to 90 s, and while
    it is stopped every peer its file names is gone (see :func:`compare_stale_file`)."""
    return SimScenario(
        name="stale-file",
        nodes=nodes,
        seeds=4,
        duration_secs=900.0,
        tick_interval_secs=tick_interval_secs,
        events=(
            SimEvent(at=RESTART_AT, do="mass_restart", downtime_min_secs=60, downtime_max_secs=90),
        ),
    )


def compare_stale_file(
    scenario: SimScenario,
    *,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Run ``scenario`` with and without the store; a second after its mass restart every
    stopped node's file has each stored peer but the seeds moved to an address nobody listens
    on: the network moved on while the nodes were down."""
    arms = []
    for arm in ARMS:
        with scratch_directory("hostsim-stale-", scenario.size) as tmp:
            network = SimNetwork(
                arm.on(scenario),
                seed=seed,
                state_dir=Path(tmp),
                progress=progress,
                label=arm.label,
            )
            network.engine.at(RESTART_AT + 1, _move_on, Path(tmp), scenario.realm.lower())
            arms.append(network.run())
    return Comparison(scenario, seed, arms[0], arms[1], "mass_restart")


def _move_on(state_dir: Path, realm: str) -> None:
    """Give every stored peer of every file under ``state_dir``, seeds aside, a dead address."""
    number = 0
    for path in sorted(state_dir.rglob(f"{realm}.toml")):
        contents = door.read(path, realm=realm)
        moved = []
        for entry in contents.entries:
            if entry.source is Source.BOOTSTRAP:
                moved.append(entry)
            else:
                moved.append(entry.replace(addr=fake_addr(number)))
                number += 1
        written = door.render(
            realm,
            contents.saved_at or 0,
            moved,
            version=contents.version,
            offline=contents.offline,
        )
        assert isinstance(written, bytes)  # no key: the plain file's bytes
        path.write_bytes(written)


def check_own_failure_targets(outage: Comparison, stale: Comparison) -> list[Target]:
    """The claims about the node's own failures: its uplink, and a stale file."""
    targets = _rejoin_targets("after 4 h without uplink, seeds down", outage, fast_median=False)
    plans = [len(r.plan) for r in outage.store.restarts(outage.cause)]
    full = sum(n >= PLAN_SIZE for n in plans)
    targets.append(
        Target(
            f"after 4 h without uplink: {PLAN_SIZE} of {PLAN_SIZE} anchors still planned",
            bool(plans) and full == len(plans),
            f"{full} of {len(plans)} restarts planned {PLAN_SIZE} peers",
        )
    )
    store, seeds = stale.summaries()
    fast, slow = store["median_target_secs"], seeds["median_target_secs"]
    holds = fast is not None and slow is not None and fast <= STALE_RATIO * slow
    ratio = f", ratio {fast / slow:.2f}" if fast is not None and slow else ""
    targets.append(
        Target(
            f"every stored peer dead, seeds up: median time to target with the store"
            f" <= {STALE_RATIO}x seeds only",
            holds,
            f"{secs(fast)} vs {secs(slow)}{ratio}",
        )
    )
    return targets


def check_targets(comparisons: Sequence[Comparison]) -> list[Target]:
    """The demo's claims, measured on its comparisons (in demo order; the last two are
    checked when they are there)."""
    up, down, flood, *more = comparisons
    store, seeds = up.summaries()
    fast, slow = store["median_target_secs"], seeds["median_target_secs"]
    holds = fast is not None and (slow is None or fast <= slow)
    targets = [
        Target(
            "seeds up: median time to target with the store no later than with seeds only",
            holds,
            f"{secs(fast)} vs {secs(slow)}",
        )
    ]
    targets += _rejoin_targets("seeds down", down)
    summary = flood.store.summary()
    fake, entries = summary["plan_fake_entries"], summary["plan_entries"]
    targets.append(
        Target(
            "after the flood: no fake address in any reconnect plan",
            fake == 0 and entries > 0,
            f"{counted(fake, 'fake address')} among {entries} plan entries"
            f" (not counted: {summary['plan_attacker_entries']} entries for attacker nodes"
            " that really connected)",
        )
    )
    if more:
        inbound, long_down = more
        targets += _inbound_targets(inbound)
        targets += _rejoin_targets("long downtime, seeds down", long_down, fast_median=False)
    return targets


def _rejoin_targets(
    label: str, comparison: Comparison, *, fast_median: bool = True
) -> list[Target]:
    store, seeds = comparison.summaries()
    rejoined, rejoined_seeds = store["rejoined_within_60s"] or 0.0, seeds["rejoined_within_60s"]
    targets = [
        Target(
            f"{label}: >= 95% rejoin within 60 s with the store (seeds only: none)",
            rejoined >= 0.95 and not rejoined_seeds,
            f"{pct(rejoined)} vs {pct(rejoined_seeds)}",
        )
    ]
    if fast_median:
        median = store["median_target_secs"]
        targets.append(
            Target(
                f"{label}: median time to target with the store <= {FAST_REJOIN_SECS:.0f} s",
                median is not None and median <= FAST_REJOIN_SECS,
                secs(median),
            )
        )
    return targets


def _inbound_targets(comparison: Comparison) -> list[Target]:
    summary = comparison.store.summary()
    attacker = summary["plan_attacker_entries"] + summary["plan_fake_entries"]
    entries = summary["plan_entries"]
    attacks = sum(
        record.dials.get(ATTACK_ORIGIN, [0, 0])[1]
        for record in comparison.store.starts
        if record.role == "attacker"
    )
    share = attacker / entries if entries else 0.0
    store, seeds = comparison.summaries()
    fast, slow = store["median_target_secs"], seeds["median_target_secs"]
    if fast is None:
        ratio, holds = "-", False
    elif slow is None:
        ratio, holds = "seeds only never", True
    elif slow == 0:
        ratio, holds = "-", False
    else:
        ratio, holds = f"ratio {fast / slow:.2f}", fast <= slow / 3
    return [
        Target(
            "inbound attack: share of attacker addresses in the restart plans is 0",
            attacker == 0 and entries > 0 and attacks > 0,
            f"{attacker} attacker addresses among {entries} plan entries ({pct(share)});"
            f" the attackers connected in {attacks} times",
        ),
        Target(
            "inbound attack, seeds up: median time to target with the store <= 1/3 of seeds only",
            holds,
            f"{secs(fast)} vs {secs(slow)}, {ratio}",
            gate=False,
        ),
    ]


def format_comparison(comparison: Comparison) -> list[str]:
    """The side-by-side table of one comparison."""
    store, seeds = comparison.summaries()
    whole_store, whole_seeds = comparison.store.summary(), comparison.seeds_only.summary()
    rows = rejoin_rows(store, seeds)
    rows += [
        (
            "reconnect plan entries (attacker/fake)",
            _plans(whole_store),
            _plans(whole_seeds),
        ),
        (
            "attacker share of connections",
            pct(whole_store["attacker_connection_share"]),
            pct(whole_seeds["attacker_connection_share"]),
        ),
        (
            "mean fraction of nodes connected",
            pct(whole_store["connected_fraction_mean"]),
            pct(whole_seeds["connected_fraction_mean"]),
        ),
    ]
    return side_by_side(rows)


PLOT_COLUMNS = 3
"""Panels side by side in the demo's plot; more scenarios go on further rows."""


def plot_comparisons(comparisons: Sequence[Comparison], path: Path) -> None:
    """Draw the fraction of nodes connected over time, both arms, one panel per scenario.

    :raises HostsimError: matplotlib is not installed.
    """
    figure = comparison_figure(comparisons)
    figure.savefig(path)
    importlib.import_module("matplotlib.pyplot").close(figure)


def comparison_figure(comparisons: Sequence[Comparison]) -> Any:
    """The demo's plot as a matplotlib figure: the panels in rows of :data:`PLOT_COLUMNS`;
    the store's arm a wide solid line, seeds only a dashed line with markers over it, so
    that where the two coincide both can still be seen; one legend for the figure.

    :raises HostsimError: matplotlib is not installed.
    """
    require_matplotlib()
    plt = importlib.import_module("matplotlib.pyplot")
    columns = min(PLOT_COLUMNS, len(comparisons))
    rows = -(-len(comparisons) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.5 * columns, 3.4 * rows), squeeze=False, sharey=True
    )
    panels = [axis for row in axes for axis in row]
    styles = (
        (STORE.label, {"linewidth": 3.0, "alpha": 0.7, "color": "tab:blue", "zorder": 2}),
        (
            SEEDS_ONLY.label,
            {
                "linewidth": 1.5,
                "linestyle": "--",
                "marker": "o",
                "markersize": 3,
                "markevery": 0.1,
                "color": "tab:orange",
                "zorder": 3,
            },
        ),
    )
    for axis, comparison in zip(panels, comparisons, strict=False):
        for metrics, (label, style) in zip(
            (comparison.store, comparison.seeds_only), styles, strict=True
        ):
            axis.plot(metrics.series_t, metrics.series_connected, label=label, **style)
        axis.set_title(comparison.scenario.name)
        axis.set_xlabel("time (s)")
        axis.set_ylim(0, 1.05)
        axis.grid(alpha=0.3)
    for axis in panels[len(comparisons) :]:
        axis.set_visible(False)
    for row in axes:
        row[0].set_ylabel("nodes connected")
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(
        handles, labels, loc="lower right" if len(comparisons) % columns else "upper right"
    )
    figure.tight_layout()
    return figure


def require_matplotlib() -> None:
    """Check that matplotlib, the plotting extra, is installed, and make it draw to files.

    :raises HostsimError: it is not installed; the message says how to install it.
    """
    try:
        # An optional extra: imported only when a plot is asked for.
        mpl = importlib.import_module("matplotlib")
    except ImportError:
        raise HostsimError(
            "--plot needs matplotlib, which is not installed"
            " (pip install 'thenodes-peerstore[plot]')"
        ) from None
    mpl.use("Agg")


def _plans(summary: dict[str, Any]) -> str:
    return (
        f"{summary['plan_entries']}"
        f" ({summary['plan_attacker_entries']}/{summary['plan_fake_entries']})"
    )
