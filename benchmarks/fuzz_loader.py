"""Fuzz the peer file loader with a hundred thousand damaged files and count the outcomes.

    python -m benchmarks.fuzz_loader [--examples 100000] [--seed N] [--load-every 10]

The damage and the properties are those of ``tests/peerstore/test_fuzz.py``, from
``tests/support/peerfile_fuzzing.py``: valid files with bytes flipped, inserted and deleted, lines
repeated and removed, values swapped or of another type, integers beyond 64 bits or negative,
bytes that are not UTF-8, strings of 300,000 characters, values nested 10,000 deep, ``peers``
that is not an array of tables, damaged trailers; files built from shuffled lines; and arbitrary
bytes; four in ten of the damaged files resealed with a matching trailer. Every example is
decoded and checked: ``decode`` raises nothing but NewerSchemaError or RealmMismatchError,
what it returns validates, and it is what the reader of any file returns (the one-pass reader
of files as written stands in for it). Every ``--load-every``-th example is also written as a
peer file and loaded through the file layer: ``load`` raises nothing but StoreFileError, and a
salvaged file is set aside whole.

Example i of seed s is ``random_case(random.Random(s * 2**32 + i))``, so a failure printed here
is reproduced from those two numbers. Exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tests.support.peerfile_fuzzing import (
    SAVED_AT,
    check_as_written,
    check_decode,
    check_load,
    peer_file_at,
    random_case,
)


def case(seed: int, index: int) -> bytes:
    """Example ``index`` of ``seed``."""
    return random_case(random.Random(seed * 2**32 + index))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--load-every", type=int, default=10, help="0: decode only")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop early")
    args = parser.parse_args(argv)

    decoded: collections.Counter[str] = collections.Counter()
    loaded: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    sizes = 0
    quick = 0
    """Examples the one-pass reader took."""
    began = time.monotonic()
    run = 0
    with tempfile.TemporaryDirectory(prefix="fuzz-loader-") as tmp, peer_file_at(Path(tmp)) as pf:
        for index in range(args.examples):
            if args.max_seconds is not None and time.monotonic() - began > args.max_seconds:
                break
            data = case(args.seed, index)
            sizes += len(data)
            run += 1
            try:
                decoded[check_decode(data)] += 1
                quick += check_as_written(data)
                if args.load_every and index % args.load_every == 0:
                    loaded[check_load(data, pf, now=SAVED_AT)] += 1
            except Exception as exc:  # every failure is counted and shown, none stops the run
                failures.append(f"seed {args.seed} example {index}: {type(exc).__name__}: {exc}")
                if len(failures) <= 3:
                    traceback.print_exc()
            if (index + 1) % 10_000 == 0:
                print(f"  {index + 1} examples, {time.monotonic() - began:.0f}s", file=sys.stderr)
    elapsed = time.monotonic() - began

    print(f"fuzz loader: seed {args.seed}, {run} examples in {elapsed:.1f}s")
    print(f"  rate: {run / elapsed:.0f} examples/s, mean size {sizes / max(run, 1):.0f} bytes")
    print(
        f"  decode: {decoded['intact']} intact, {decoded['salvaged']} salvaged, "
        f"{decoded['refused']} refused (newer schema or other realm); {quick} read in one pass"
    )
    if args.load_every:
        print(
            f"  load (1 example in {args.load_every}, {sum(loaded.values())} files): "
            f"{loaded['intact']} intact, {loaded['salvaged']} salvaged and set aside, "
            f"{loaded['refused']} refused"
        )
    print(f"  failures: {len(failures)}")
    for failure in failures[:20]:
        print(f"  FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
