"""What a ``peerstore`` command costs against one decode of its file: prints, asserts nothing.

    python -m benchmarks.bench_command [--entries 65536] [--reps 5]

The baseline is one ``codec.decode`` of the same file, measured in the same run. Each command
runs in this process on a fresh copy of a file of ``--entries`` entries (a third of them
proven, every one with a node id), the best of ``--reps`` runs, its decodes and encodes
counted. Every command reads and decodes its file once (``thenodes_peerstore.door``), so a read
costs about one decode and its own output, and a write one decode, the store's load and one
encode. Before the one door every read decoded twice and ``remove --file`` three times; the
extra decodes stopped at the header's realm check, after hashing the body and splitting it
into its tables, so they cost a fraction of a full decode: the counts are the figure to read,
the times move by less than a shared machine's noise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from thenodes_peerstore import codec
from thenodes_peerstore.cli import main as peerstore
from thenodes_peerstore.model import PeerEntry, Source

NOW = 1_796_000_000
COMMANDS = (
    ("list", "-c"),
    ("list", "--file"),
    ("stats", "-c"),
    ("verify", "-c"),
    ("export", "--format", "json", "-c"),
    ("add", "203.0.113.77:7447", "-c"),
    ("remove", "11.0.0.5:7447", "-c"),
    ("remove", "11.0.0.5:7447", "--file"),
    ("prune", "-c"),
)
"""Each with the node's config (``-c``: ``max_entries`` the file's size), or with the file
itself (``--file``: the realm read from the file's header; default settings, so a write keeps
at most 1,024 entries, as the node's next start would)."""


def peer_file(entries: int) -> bytes:
    proven = [
        PeerEntry(
            addr=f"11.{n // 65536}.{n // 256 % 256}.{n % 256}:7447",
            source=Source.CONNECTED if n % 3 == 0 else Source.GOSSIP,
            first_seen=NOW - 100,
            last_seen=NOW - 50,
            last_connected=NOW - 50 if n % 3 == 0 else None,
            node_id=f"node-{n}",
        )
        for n in range(entries)
    ]
    return codec.encode("example", NOW - 10, proven, version="1.0")


def best(run: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=65_536)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    data = peer_file(args.entries)
    counts: Counter[str] = Counter()
    decode, encode = codec.decode, codec.encode

    def counted_decode(*a: Any, **k: Any) -> Any:
        counts["decode"] += 1
        return decode(*a, **k)

    def counted_encode(*a: Any, **k: Any) -> Any:
        counts["encode"] += 1
        return encode(*a, **k)

    baseline = best(lambda: decode(data, realm="example"), args.reps)
    print(f"file: {args.entries} entries, {len(data)} bytes")
    print(f"baseline, one decode of it: {baseline:.3f} s")
    print(f"{'command':<40}{'decodes':>8}{'encodes':>8}{'best s':>9}{'x decode':>10}")
    codec.decode, codec.encode = counted_decode, counted_encode  # type: ignore[assignment]
    clock = time.time
    time.time = lambda: float(NOW)  # type: ignore[assignment]  # the command's "now"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            original = Path(tmp) / "original.toml"
            original.write_bytes(data)
            path = Path(tmp) / "state" / "plugins" / "peerstore" / "example.toml"
            path.parent.mkdir(parents=True)
            config = Path(tmp) / "node.toml"
            config.write_text(
                f'[realm]\ncode = "example"\n[node]\nid = "node-a"\nstate_dir = "{tmp}/state"\n'
                f"[network.persistence]\nenabled = true\nmax_entries = {args.entries}\n"
            )
            for command in COMMANDS:
                named = str(config) if command[-1] == "-c" else str(path)
                argv = [*command, named]

                def run(argv: list[str] = argv) -> None:
                    shutil.copy(original, path)
                    with (
                        contextlib.redirect_stdout(io.StringIO()),
                        contextlib.redirect_stderr(io.StringIO()),
                    ):
                        peerstore(argv)

                counts.clear()
                run()
                once = dict(counts)
                seconds = best(run, args.reps)
                print(
                    f"{' '.join(command):<40}{once.get('decode', 0):>8}"
                    f"{once.get('encode', 0):>8}{seconds:>9.3f}{seconds / baseline:>10.2f}"
                )
    finally:
        codec.decode, codec.encode = decode, encode  # type: ignore[assignment]
        time.time = clock  # type: ignore[assignment]


if __name__ == "__main__":
    main()
