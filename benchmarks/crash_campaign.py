"""Kill a saving process with SIGKILL a thousand times and count what was lost.

    python -m benchmarks.crash_campaign [--runs 1000] [--seed N]

Each run starts a writer (``tests/support/crash_writer.py``) that saves a peer file in a loop and
acknowledges every completed save, kills it with SIGKILL, then opens the file again and checks
it. Runs come in series on one file, each writer going on from what the last one left, with a
peer count per series chosen between 30 and 3,000 (files of about 3 KiB to 300 KiB). A run kills
its writer in one of three ways, chosen at random:

- paused: just before the n-th file operation of a save (open, write, fsync, close, rename,
  directory fsync...) or just after it returned;
- at once: right after reading its 1st, 2nd or 3rd acknowledgement, somewhere in the next save;
- later: that, plus a random delay of up to about two saves, anywhere in a save.

Prints the counts: runs, unreadable files (not intact), lost acknowledged saves (the file holds
an older save than the last acknowledged), temporary files left after the next open, and
timings. Exits 1 if any file was unreadable or any acknowledged save lost.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.support.crash_writer import REALM, KillResult, check, kill_once
from thenodes_peerstore.persistent import LoadStatus

SERIES_LENGTH = 10
MIN_ENTRIES, MAX_ENTRIES = 30, 3_000


def one_run(rng: random.Random, path: Path, entries: int, start: int) -> tuple[str, KillResult]:
    mode = rng.choices(["paused", "at once", "later"], weights=[4, 3, 3])[0]
    if mode == "paused":
        return mode, kill_once(path, entries=entries, start=start, pause_at=rng.randrange(10))
    acks = rng.randint(1, 3)
    delay = 0.0 if mode == "at once" else rng.uniform(0, 0.02 + entries * 4e-5)
    return mode, kill_once(path, entries=entries, start=start, acks=acks, delay=delay)


@dataclasses.dataclass
class Tally:
    """What the runs so far found."""

    counts: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    modes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    broken: list[str] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)
    sizes: list[int] = dataclasses.field(default_factory=list)

    def add(self, run: int, mode: str, result: KillResult, acknowledged: int | None) -> None:
        counts = self.counts
        counts["runs"] += 1
        self.modes[mode] += 1
        self.seconds.append(result.seconds)
        if result.size:
            self.sizes.append(result.size)
        if result.status not in {LoadStatus.INTACT, LoadStatus.MISSING, None}:
            counts["unreadable"] += 1
        last = max((g for g in (acknowledged, result.last_ack) if g is not None), default=None)
        if last is not None and (result.generation is None or result.generation < last):
            counts["lost"] += 1
        counts["temporaries after reopen"] += bool(result.temporaries_after_open)
        counts["lock still held"] += result.status is None
        counts["kills that left a temporary file"] += bool(result.temporaries_left)
        acked_here = result.start - 1 if result.last_ack is None else result.last_ack
        counts["kills after which the file held the unacknowledged save in progress"] += (
            result.generation is not None and result.generation > acked_here
        )
        broken = check(result, acknowledged=acknowledged)
        if broken:
            counts["runs breaking any promise"] += 1
            if len(self.broken) < 10:
                self.broken.append(f"run {run} ({mode}): {'; '.join(broken)}")

    def report(self, seed: int, files: int, elapsed: float) -> None:
        counts = self.counts
        print(f"crash campaign: seed {seed}, {files} files, {counts['runs']} runs")
        print(f"  kill modes: {', '.join(f'{m} {n}' for m, n in sorted(self.modes.items()))}")
        for label, key in [
            ("runs", "runs"),
            ("unreadable files (not intact)", "unreadable"),
            ("lost acknowledged saves", "lost"),
            ("leftover temporary files after reopen", "temporaries after reopen"),
            ("lock still held after the kill", "lock still held"),
            ("runs breaking any promise", "runs breaking any promise"),
            ("kills that left a temporary file", "kills that left a temporary file"),
            (
                "kills after which the file held the unacknowledged save in progress",
                "kills after which the file held the unacknowledged save in progress",
            ),
        ]:
            print(f"  {label}: {counts[key]}")
        if self.sizes:
            print(
                f"  file sizes: {min(self.sizes) / 1024:.1f} KiB to "
                f"{max(self.sizes) / 1024:.1f} KiB"
            )
        print(
            f"  time: {elapsed:.1f}s in all; start to kill per run: median "
            f"{statistics.median(self.seconds) * 1000:.0f} ms, "
            f"max {max(self.seconds) * 1000:.0f} ms"
        )
        for example in self.broken:
            print(f"  BROKEN {example}")

    @property
    def failed(self) -> bool:
        counts = self.counts
        return bool(counts["unreadable"] or counts["lost"] or counts["runs breaking any promise"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    tally = Tally()
    began = time.monotonic()
    run = series = 0
    with tempfile.TemporaryDirectory(prefix="crash-campaign-") as tmp:
        while run < args.runs:
            series += 1
            path = Path(tmp) / f"series-{series}" / f"{REALM}.toml"
            entries = round(MIN_ENTRIES * (MAX_ENTRIES / MIN_ENTRIES) ** rng.random())
            acknowledged: int | None = None
            start = 1
            for _ in range(min(SERIES_LENGTH, args.runs - run)):
                run += 1
                mode, result = one_run(rng, path, entries, start)
                tally.add(run, mode, result, acknowledged)
                if result.last_ack is not None:
                    acknowledged = result.last_ack
                start = (result.generation or 0) + 1
                if run % 100 == 0:
                    print(f"  {run} runs, {time.monotonic() - began:.0f}s", file=sys.stderr)
    tally.report(args.seed, series, time.monotonic() - began)
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
