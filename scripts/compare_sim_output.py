"""Run the simulator's commands under two interpreters and compare their JSON byte for byte: how
a change to the simulator's speed is shown to leave every result of every seed as it was.

    git worktree add /tmp/before <commit> && python3 -m venv /tmp/before/.venv
    /tmp/before/.venv/bin/pip install -e /tmp/before
    .venv/bin/python scripts/compare_sim_output.py /tmp/before/.venv/bin/python .venv/bin/python

The runs: ``hostsim sim`` on the benchmark's network (``benchmarks/bench_sim.toml``, 1,000 nodes
for a simulated hour), ``hostsim demo``, and ``hostsim sim --ab`` on every
``examples/sim-*.toml``, each with ``--seed`` (default 1). ``--quick`` leaves the benchmark's
network out (it takes a minute or two an interpreter). Each run starts in a new empty directory,
so an interpreter imports only the ``hostsim`` it has installed. Prints one line a run (the
digest of each side's JSON, or where they first differ) and exits 1 when any differ.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def runs(quick: bool, seed: int) -> list[tuple[str, list[str]]]:
    """(label, hostsim arguments before ``--json OUT``) of every run."""
    found: list[tuple[str, list[str]]] = []
    if not quick:
        bench = str(ROOT / "benchmarks" / "bench_sim.toml")
        found.append(("sim benchmarks/bench_sim.toml", ["sim", bench, "--seed", str(seed)]))
    found.append(("demo", ["demo", "--seed", str(seed)]))
    for example in sorted((ROOT / "examples").glob("sim-*.toml")):
        label = f"sim --ab examples/{example.name}"
        found.append((label, ["sim", str(example), "--ab", "--seed", str(seed)]))
    return found


def run(python: str, args: list[str]) -> tuple[bytes, float]:
    """The JSON ``python -m hostsim ARGS --json OUT`` writes, and the seconds it took."""
    with tempfile.TemporaryDirectory(prefix="compare-sim-") as tmp:
        out = Path(tmp) / "out.json"
        began = time.perf_counter()
        done = subprocess.run(  # noqa: S603 - the interpreters named on the command line
            [python, "-m", "hostsim", *args, "--json", str(out)],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        took = time.perf_counter() - began
        if done.returncode != 0:
            raise SystemExit(
                f"{python} -m hostsim {' '.join(args)}: exit {done.returncode}\n{done.stderr}"
            )
        return out.read_bytes(), took


def first_difference(a: bytes, b: bytes) -> str:
    """Where ``a`` and ``b`` first differ, with a little of each around it."""
    pairs = enumerate(zip(a, b, strict=False))
    at = next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))
    return (
        f"first difference at byte {at}: {a[max(0, at - 40) : at + 40]!r}"
        f" vs {b[max(0, at - 40) : at + 40]!r}"
    )


def say(line: str) -> None:
    """One line of the report, shown at once (the runs take minutes)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the interpreter of the code before the change")
    parser.add_argument("after", help="the interpreter of the code after it")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="leave the 1,000-node hour out")
    args = parser.parse_args()
    # Absolute, not resolved: a virtual environment's interpreter is a link to the base one.
    before, after = os.path.abspath(args.before), os.path.abspath(args.after)
    differ = 0
    for label, hostsim_args in runs(args.quick, args.seed):
        old, old_secs = run(before, hostsim_args)
        new, new_secs = run(after, hostsim_args)
        timing = f"({old_secs:.1f} s, {new_secs:.1f} s)"
        if old == new:
            digest = hashlib.sha256(new).hexdigest()[:16]
            say(f"same      {label}: {len(new):,} bytes, sha256 {digest}... {timing}")
        else:
            differ += 1
            say(f"DIFFERENT {label}: {first_difference(old, new)} {timing}")
    say("every run gave the same JSON" if differ == 0 else f"{differ} run(s) differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
