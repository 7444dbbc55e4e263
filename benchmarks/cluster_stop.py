"""How long `hostsim cluster` takes to start N nodes, and what is left after a signal at each
phase: prints figures, asserts nothing.

    python -m benchmarks.cluster_stop [--nodes 300] [--phases starting,forming,seeds-up,seeds-down]

For each phase, one `hostsim cluster --nodes N --seeds 2` process is started in a temporary
directory and, once its progress (stderr) says the phase has begun, sent SIGINT twice: alone,
as `kill -INT` does, and then, for the baseline, to its whole process group, as a terminal's
Ctrl-C does (each in a run of its own). For each run it prints the time until the phase, the
processes of the run alive when the signal came, the time the command took to exit after it,
its exit status, and the processes left after it: any process whose command line names the
run's directory (zombies aside). Every wait is bounded; whatever is left is killed by its pid.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.processes import running_under

BIN = Path(sys.executable).parent
PHASE_WAIT = 1800.0
"""Seconds a phase may take to begin (300 nodes start in minutes on two cores)."""


def one_run(root: Path, nodes: int, phase: str, group: bool) -> dict[str, object]:
    run = root / f"{phase}-{'group' if group else 'pid'}"
    begun = time.monotonic()
    proc = subprocess.Popen(
        [
            *(str(BIN / "hostsim"), "cluster", "--nodes", str(nodes), "--seeds", "2"),
            *("--state-dir", str(run)),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a group of its own, as a shell gives a foreground job
    )
    try:
        assert proc.stderr is not None
        last = ""
        while True:
            line = proc.stderr.readline()
            if not line:
                status = proc.wait(60)
                return {"phase": phase, "error": f"ended before {phase} ({status}: {last})"}
            if not line.startswith("cluster "):
                last = line.strip()
            # "starting" once node processes start (the seeds' start is over in a second).
            begins = "node processes started" if phase == "starting" else f", {phase}:"
            if line.startswith("cluster ") and begins in line:
                break
            if time.monotonic() - begun > PHASE_WAIT:
                return {"phase": phase, "error": f"no {phase} within {PHASE_WAIT:.0f} s"}
        reached = time.monotonic() - begun
        alive = len(running_under(run))
        signalled = time.monotonic()
        if group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        said = proc.stderr.read().splitlines()
        status = proc.wait(120)
        took = time.monotonic() - signalled
        time.sleep(1.0)
        left = running_under(run)
        return {
            "phase": phase,
            "to": "process group" if group else "pid",
            "phase_at_s": round(reached, 1),
            "alive": alive,
            "exit_s": round(took, 2),
            "status": status,
            "left": len(left),
            "said": [s for s in said if not s.startswith(("cluster ", "WARNING"))][-1:],
        }
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(60)
        for pid in running_under(run):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--phases", default="starting,forming,seeds-up,seeds-down")
    args = parser.parse_args()
    print(f"hostsim cluster --nodes {args.nodes} --seeds 2; SIGINT once the phase has begun")
    print(
        f"{'phase':<12}{'sent to':<15}{'phase at':>10}{'alive':>7}{'exit in':>9}"
        f"{'status':>8}{'left':>6}  said"
    )
    with tempfile.TemporaryDirectory(prefix="cluster-stop-") as tmp:
        for phase in args.phases.split(","):
            for group in (False, True):
                r = one_run(Path(tmp), args.nodes, phase, group)
                if "error" in r:
                    print(f"{phase:<12}{r['error']}")
                    continue
                print(
                    f"{phase:<12}{r['to']!s:<15}{r['phase_at_s']!s:>9}s{r['alive']!s:>7}"
                    f"{r['exit_s']!s:>8}s{r['status']!s:>8}{r['left']!s:>6}  {' '.join(r['said'])}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
