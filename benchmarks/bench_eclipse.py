"""Scale of the restart-eclipse experiment (`hostsim eclipse`): one seeded run, both arms.

    python -m benchmarks.bench_eclipse                          # the largest: 65,536 addresses
                                                                # in 256 /16s, 1,000 honest nodes,
                                                                # an attack of one simulated day
    python -m benchmarks.bench_eclipse --honest 200 --attack 3600   # a quicker look
    python -m benchmarks.bench_eclipse --arm store --profile        # where the time goes

Prints, per arm, the wall time, the events run and the events per second, the attacker's
personas (addresses somebody connected to), and the process's peak memory; then the table and
the targets of `hostsim eclipse`.
The nodes' state directories go to /dev/shm when it exists.
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
from typing import Any

from hostsim.experiment.eclipse import (
    EclipseResult,
    EclipseSpec,
    check_eclipse_targets,
    format_eclipse,
    run_once,
)
from hostsim.sim import rare_cycle_collection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=65_536)
    parser.add_argument("--groups", type=int, default=256)
    parser.add_argument("--honest", type=int, default=1000)
    parser.add_argument("--victims", type=int, default=5, help="per cut-off share")
    parser.add_argument("--attack", type=float, default=86_400.0, help="seconds")
    parser.add_argument("--after", type=float, default=4 * 3600.0, help="seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--arm", choices=("both", "store", "seeds_only"), default="both")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    spec = EclipseSpec(
        addresses=args.addresses,
        groups=args.groups,
        honest=args.honest,
        victims=args.victims,
        attack_secs=args.attack,
        after_secs=args.after,
    )
    print(
        f"{spec.addresses:,} attacker addresses in {spec.groups} /16s; {spec.honest} honest"
        f" nodes + {spec.seeds} seeds; {spec.victims} victims per cut-off share; attack"
        f" {spec.attack_secs:,.0f} s, watched {spec.after_secs:,.0f} s after the restart"
    )
    arms = {"both": (True, False), "store": (True,), "seeds_only": (False,)}[args.arm]
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    runs: list[dict[str, Any]] = []
    total = 0.0
    profiler = cProfile.Profile() if args.profile else None
    for store in arms:
        with tempfile.TemporaryDirectory(prefix="bench-eclipse-", dir=base) as tmp:
            began = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            with rare_cycle_collection():  # as `hostsim eclipse` runs
                run = run_once(spec, store=store, seed=args.seed, state_dir=Path(tmp))
            if profiler is not None:
                profiler.disable()
            wall = time.perf_counter() - began
        total += wall
        runs.append(run)
        print(
            f"{run['arm']}: {wall:.1f} s wall, {run['events_run']:,} events,"
            f" {run['events_run'] / wall:,.0f} events/s, {run['attacker_personas']:,} attacker"
            " addresses connected"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total: {total:.1f} s wall; peak memory {peak:.0f} MiB")
    if len(runs) == 2:
        result = EclipseResult(spec, (args.seed,), tuple(runs))
        print("\n".join(format_eclipse(result)))
        for target in check_eclipse_targets([result]):
            verdict = ("holds" if target.holds else "FAILS") if target.gate else "reported"
            print(f"  [{verdict}] {target.name}: {target.detail}")
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
