"""Scale of the network simulator: N nodes, an hour of churn, every node saving its real file.

    python -m benchmarks.bench_sim                        # 1,000 nodes, one simulated hour
    python -m benchmarks.bench_sim --nodes 10000          # 10,000, against 1,000 in the same run
    python -m benchmarks.bench_sim --nodes 250 --secs 900 # a quicker look
    python -m benchmarks.bench_sim --profile              # where the time goes

The network is ``benchmarks/bench_sim.toml`` (``hostsim sim`` runs the same file), with
``--nodes``, ``--secs`` and ``--tick`` changed. Each run is a process of its own, so its peak
memory is its own; it prints the wall time, the CPU time (user and system, which a machine
shared with other work disturbs less than the wall time), the events run and the events per
CPU second, and the peak memory. ``--repeat R`` runs each size R times.

With ``--nodes`` other than the baseline's (``--baseline-nodes``, default 1,000; 0 for none),
the baseline network runs first and the last line compares the two: CPU seconds per node and
simulated hour at each size, and their ratio (1.0 where the simulator scales linearly).

The nodes' state directories go where ``hostsim sim`` puts them, on /dev/shm when it has room
(a memory-backed file system; the peer store still writes, fsyncs and renames as in production:
:mod:`hostsim.sim.scratch`). Nodes tick every ``--tick`` seconds
(default 10): saving is still bounded by ``save_interval_secs`` (60 s), a save can only come
up to one tick later than it would with a tick per second.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs

from hostsim.sim import SimNetwork, SimScenario, load_sim_scenario, rare_cycle_collection
from hostsim.sim.scratch import scratch_directory

SCENARIO = Path(__file__).with_name("bench_sim.toml")
"""The benchmark's network: 1,000 nodes and 8 seeds, an hour of churn."""

AREAS = {
    "peer store: on_tick (saving the file when due)": ("plugin.py", "on_tick"),
    "peer store: on_startup (locking, loading the file)": ("plugin.py", "on_startup"),
    "peer store: on_connect": ("plugin.py", "on_connect"),
    "peer store: on_disconnect": ("plugin.py", "on_disconnect"),
    "peer store: on_peer_list": ("plugin.py", "on_peer_list"),
    "peer store: on_shutdown (saving the file)": ("plugin.py", "on_shutdown"),
    "host: loading the plugins at each start": ("plugins.py", "get_plugin_manager"),
}


def scenario(nodes: int, secs: float, tick: float) -> SimScenario:
    """The benchmark's network with ``nodes`` ordinary nodes, churning for ``secs`` seconds."""
    return attrs.evolve(
        load_sim_scenario(SCENARIO), nodes=nodes, duration_secs=secs, tick_interval_secs=tick
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return peak / 1024 if sys.platform == "darwin" else peak  # bytes on macOS


def measure(
    nodes: int, secs: float, tick: float, seed: int, profile: bool, *, stats: Path | None = None
) -> dict[str, Any]:
    """Build and run the network in this process; return its figures."""
    network_scenario = scenario(nodes, secs, tick)
    with scratch_directory("bench-sim-", network_scenario.size) as tmp:
        began = time.perf_counter()
        network = SimNetwork(network_scenario, seed=seed, state_dir=Path(tmp))
        built = time.perf_counter() - began
        profiler = cProfile.Profile() if profile else None
        cpu = _cpu()
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        with rare_cycle_collection():  # as `hostsim sim` and `hostsim demo` run
            metrics = network.run()
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - began
        cpu = _cpu() - cpu
        files = len(list(Path(tmp).glob("*/plugins/peerstore/*.toml")))
    figures = {
        "nodes": nodes,
        "secs": secs,
        "tick": tick,
        "setup": built,
        "wall": wall,
        "cpu": cpu,
        "events": metrics.events_run,
        "starts": len(metrics.starts),
        "restarts": metrics.summary()["restarts"]["count"],
        "files": files,
        "peak_mib": _peak_mib(),
    }
    if profiler is not None:
        _print_run(figures, profiled=True)
        _where(profiler)
        if stats is not None:
            profiler.dump_stats(stats)
    return figures


def _in_child(nodes: int, secs: float, tick: float, seed: int) -> dict[str, Any]:
    """Measure one run in a process of its own (its own peak memory)."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.bench_sim", "--child"),
            *("--nodes", str(nodes), "--secs", str(secs), "--tick", str(tick), "--seed", str(seed)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _print_run(figures: dict[str, Any], *, profiled: bool = False) -> None:
    print(
        f"{figures['nodes']:,} nodes + 8 seeds, {figures['secs']:.0f} simulated seconds:"
        f" {figures['wall']:.1f} s wall, {figures['cpu']:.1f} s CPU"
        f" (setup {figures['setup']:.1f} s), {figures['events']:,} events,"
        f" {figures['events'] / figures['cpu']:,.0f} events per CPU second"
        f"{' (profiled)' if profiled else ''}; {figures['starts']:,} starts"
        f" ({figures['restarts']:,} restarts), {figures['files']:,} peer files;"
        f" peak memory {figures['peak_mib']:,.0f} MiB",
        flush=True,
    )


def _per_node_hour_ms(figures: dict[str, Any]) -> float:
    return 1000 * figures["cpu"] / figures["nodes"] / (figures["secs"] / 3600)


def _where(profiler: cProfile.Profile) -> None:
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in entries.values())
    print(f"where the time goes (cumulative, of {total:.1f} s profiled):")
    for label, (file, function) in AREAS.items():
        cumulative = max(
            (
                ct
                for (path, _, name), (_, _, _, ct, _) in entries.items()
                if path.endswith(file) and name == function
            ),
            default=0.0,
        )
        print(f"  {label:<52} {cumulative:7.1f} s  {100 * cumulative / total:5.1f}%")
    own = sum(tt for (path, _, _), (_, _, tt, _, _) in entries.items() if "hostsim/sim/" in path)
    label = "the simulator itself (hostsim/sim, own time)"
    print(f"  {label:<52} {own:7.1f} s  {100 * own / total:5.1f}%")
    stats.sort_stats("tottime").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--secs", type=float, default=3600.0)
    parser.add_argument("--tick", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each size")
    parser.add_argument(
        "--baseline-nodes",
        type=int,
        default=1000,
        help="the size to compare with, in the same run (0: none)",
    )
    parser.add_argument("--profile", action="store_true", help="one run, in this process")
    parser.add_argument(
        "--stats", type=Path, help="with --profile: also write the profile here (for pstats)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.nodes, args.secs, args.tick, args.seed, profile=False)))
        return
    if args.profile:
        measure(args.nodes, args.secs, args.tick, args.seed, profile=True, stats=args.stats)
        return
    sizes = [args.nodes]
    if args.baseline_nodes and args.baseline_nodes != args.nodes:
        sizes.insert(0, args.baseline_nodes)
    cpu: dict[int, float] = {}
    for nodes in sizes:
        runs = []
        for _ in range(args.repeat):
            figures = _in_child(nodes, args.secs, args.tick, args.seed)
            _print_run(figures)
            runs.append(figures)
        cpu[nodes] = statistics.median(_per_node_hour_ms(f) for f in runs)
    if len(sizes) == 2:
        base, ours = sizes
        print(
            f"CPU per node and simulated hour (median): {cpu[ours]:.1f} ms at {ours:,} nodes,"
            f" {cpu[base]:.1f} ms at {base:,} nodes (baseline): ratio {cpu[ours] / cpu[base]:.2f}"
        )


if __name__ == "__main__":
    main()
