"""Scale of the network simulator: N nodes, an hour of churn, every node saving its real file.

    python -m benchmarks.bench_sim                        # 1,000 nodes, one simulated hour
    python -m benchmarks.bench_sim --nodes 250 --secs 900 # a quicker look
    python -m benchmarks.bench_sim --profile              # where the time goes

Prints the wall time, the events run and the events per second, the nodes' starts and the
process's peak memory.
The nodes' state directories go to /dev/shm when it exists (a memory-backed filesystem; the
peer store still flushes and renames as in production). Nodes tick every ``--tick`` seconds
(default 10): saving is still bounded by ``save_interval_secs`` (60 s), a save can only come
up to one tick later than it would with a tick per second.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

from hostsim.sim import Churn, Distribution, SimNetwork, SimScenario, rare_cycle_collection

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
    """``nodes`` nodes and 8 seeds, churning for ``secs`` seconds."""
    return SimScenario(
        name="scale",
        nodes=nodes,
        seeds=8,
        duration_secs=secs,
        tick_interval_secs=tick,
        sample_interval_secs=60.0,
        churn=Churn(
            session=Distribution("exponential", mean_secs=1800.0),
            downtime=Distribution("weibull", shape=0.5, scale_secs=120.0),
            crash_fraction=0.5,
        ),
    )


def run(nodes: int, secs: float, tick: float, seed: int, profile: bool) -> None:
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="bench-sim-", dir=base) as tmp:
        began = time.perf_counter()
        network = SimNetwork(scenario(nodes, secs, tick), seed=seed, state_dir=Path(tmp))
        built = time.perf_counter() - began
        profiler = cProfile.Profile() if profile else None
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        with rare_cycle_collection():  # as `hostsim sim` and `hostsim demo` run
            metrics = network.run()
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - began
        files = list(Path(tmp).glob("*/plugins/peerstore/*.toml"))
    summary = metrics.summary()["restarts"]
    print(f"nodes: {nodes} + 8 seeds, {secs:.0f} simulated seconds, tick every {tick:g} s")
    print(f"setup: {built:.1f} s")
    print(
        f"run: {wall:.1f} s wall, {metrics.events_run} events,"
        f" {metrics.events_run / wall:,.0f} events/s{' (profiled)' if profile else ''}"
    )
    print(
        f"starts: {len(metrics.starts)} ({summary['count']} restarts),"
        f" peer files on disk at the end: {len(files)}"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if sys.platform == "darwin":
        peak /= 1024  # bytes on macOS
    print(f"peak memory: {peak:,.0f} MiB")
    if profiler is not None:
        _where(profiler, wall)


def _where(profiler: cProfile.Profile, wall: float) -> None:
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
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    run(args.nodes, args.secs, args.tick, args.seed, args.profile)


if __name__ == "__main__":
    main()
