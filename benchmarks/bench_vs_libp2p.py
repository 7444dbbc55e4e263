"""The peer store against py-libp2p's SQLite peerstore and a bare ``tomllib``: prints figures.

    pip install '.[bench]'        # py-libp2p, for the libp2p columns
    python -m benchmarks.bench_vs_libp2p [--reps 5] [--quick] [--only NAME]

Every timing runs in a fresh subprocess, so no module-level cache (address caches, lazily built
tables) survives from one repetition to the next; the sides of a comparison alternate in order
from one repetition to the next, and each figure is the median of the repetitions, with the
ratio of the medians. Only the work named is timed: imports, address and peer-id generation and
opening an empty store are not. Each row prints ours, its baseline and the ratio; the
measurements (``--only`` takes their names):

- ``ingest``: 10,000 new gossip addresses as peer lists of 16, each from its own public sender
  (one /16 per sender), through the plugin's ``on_peer_list`` as a host calls it, then
  ``on_shutdown`` (which writes the file); against py-libp2p's ``SyncPersistentPeerStore`` on
  SQLite doing one ``add_addr`` per address, each to its own peer id, then ``close``. py-libp2p
  is timed both ways: ``parsing`` makes each ``Multiaddr`` from its ``/ip4/.../tcp/...`` text
  inside the timer, as the store parses ``ip:port``; ``parsed`` makes them before it, so that
  only storing is timed (the stricter comparison).
- ``reopen``: open those 10,000 again and list every entry; against libp2p reopening its database,
  ``peers_with_addrs()`` and ``addrs(p)`` for each peer.
- ``open``: open a 65,536-entry file the store wrote (Connected with node ids, Bootstrap, Gossip);
  against ``tomllib.loads`` of the same bytes (already read and decoded), in the same process.
- ``plan``: a node's start on that file, from the plugin's ``on_startup`` to the plan it returns
  (the rest of the file is read at the first use after), against the same ``tomllib.loads``.
- ``memory``: bytes traced by ``tracemalloc`` (started after the imports) per entry with that file
  open and saved once, everything the package holds included (its caches too).
- ``writes``: file writes while 1,000 new gossip addresses (peer lists of 16, no sender) arrive
  every second for ten save intervals of 60 s, on a virtual clock, into a store of the largest
  cap. The count does not depend on the machine, so it runs once.

Where one side's time goes: ``--one NAME --dir DIR --profile`` runs a single measurement
(``ingest-ours``, ``ingest-libp2p``; ``open-both`` or ``plan-both`` after ``make-big`` into
the same DIR) and prints cProfile's top 10 by cumulative and by own time to stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import importlib.util
import io
import json
import logging
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import tracemalloc
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from thenodes_peerstore import PeerEntry, PersistenceConfig, PersistentPeerStore
from thenodes_peerstore.config import MAX_ENTRIES_LIMIT
from thenodes_peerstore.plugin import PeerStorePlugin

START = 1_763_700_000
"""The virtual clock's start (November 2025), for every file written here."""
REALM = "bench"
OWN = "198.51.100.5:7447"
"""The node's own listen address."""
MESSAGE = 16
"""Addresses per PEER_LIST message."""
# First octets left out: private, shared, loopback, link-local and the benchmarking range
# (10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16, 198.18/15), whole /8 at a time.
_NOT_PUBLIC = frozenset({10, 100, 127, 169, 172, 192, 198})
_PUBLIC_FIRST = tuple(a for a in range(1, 224) if a not in _NOT_PUBLIC)


class Sizes:
    """How big each measurement is; ``--quick`` shrinks them for a smoke run."""

    def __init__(self, quick: bool) -> None:
        self.ingest = 1_000 if quick else 10_000
        self.ingest_cap = 2_048 if quick else 16_384
        self.big = 4_096 if quick else 65_536
        self.rate = 100 if quick else 1_000
        self.seconds = 600
        self.save_interval = 60


# -- inputs ----------------------------------------------------------------------------------


def public_addrs(count: int, seed: int) -> list[tuple[str, int]]:
    """``count`` distinct public IPv4 ``(ip, port)`` pairs, the same for the same seed."""
    rng = random.Random(seed)
    seen: set[tuple[str, int]] = set()
    out: list[tuple[str, int]] = []
    while len(out) < count:
        ip = (
            f"{rng.choice(_PUBLIC_FIRST)}.{rng.randrange(256)}."
            f"{rng.randrange(256)}.{rng.randrange(1, 255)}"
        )
        port = 7447 if rng.random() < 0.5 else rng.randrange(1024, 65536)
        if (ip, port) not in seen:
            seen.add((ip, port))
            out.append((ip, port))
    return out


def store_addrs(pairs: Sequence[tuple[str, int]]) -> list[str]:
    return [f"{ip}:{port}" for ip, port in pairs]


def senders(count: int) -> list[str]:
    """``count`` public senders, each in a /16 of its own."""
    return [
        f"{_PUBLIC_FIRST[i // 256 % len(_PUBLIC_FIRST)]}.{i % 256}.0.1:7447" for i in range(count)
    ]


def peer_ids(count: int) -> list[bytes]:
    """Peer ids as libp2p writes them (a sha2-256 multihash), without generating keys."""
    return [b"\x12\x20" + hashlib.sha256(n.to_bytes(8, "big")).digest() for n in range(count)]


def config(max_entries: int, save_interval: int = 60) -> PersistenceConfig:
    return PersistenceConfig(
        enabled=True, max_entries=max_entries, save_interval_secs=save_interval
    )


class Realm:
    """``host.realm``, as a host gives it to every hook."""

    def __init__(self, code: str) -> None:
        self.name = self.code = code
        self.version = "1.0"


class Node:
    """``host``: the view of its node a host gives every hook, here on a fixed clock."""

    def __init__(self, state_dir: Path, max_entries: int, now: float) -> None:
        self.realm = Realm(REALM)
        self.node_id = "node-bench"
        self.listen_addrs = (OWN,)
        self.state_dir = state_dir
        self.config = {"network": {"persistence": {"enabled": True, "max_entries": max_entries}}}
        self.log = logging.getLogger("bench")
        self._now = now

    def now(self) -> float:
        return self._now


class Sender:
    """``sender``: the peer a PEER_LIST came from, an inbound connection."""

    def __init__(self, addr: str) -> None:
        self.node_id = f"node-{addr}"
        self.addr = addr
        self.listen_addr: str | None = None
        self.direction = "inbound"
        self.capabilities: tuple[str, ...] = ()


def big_file(work_dir: Path) -> Path:
    """Where ``make-big`` writes its file: the plugin's default path under ``work_dir``."""
    return work_dir / "plugins" / "peerstore" / f"{REALM}.toml"


def timed(profile: bool, work: Callable[[], object]) -> float:
    """Seconds ``work`` takes; with ``profile``, print where it goes to stderr."""
    if profile:
        profiler = cProfile.Profile()
        began = time.perf_counter()
        profiler.runcall(work)
        elapsed = time.perf_counter() - began
        for order in ("cumulative", "tottime"):
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(10)
            print(f"--- top 10 by {order} ---\n{text.getvalue()}", file=sys.stderr)
        return elapsed
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


# -- one measurement, in its own process -----------------------------------------------------


def ingest_ours(work_dir: Path, sizes: Sizes, profile: bool) -> dict[str, float]:
    addrs = store_addrs(public_addrs(sizes.ingest, seed=1))
    messages = [addrs[i : i + MESSAGE] for i in range(0, len(addrs), MESSAGE)]
    batch = [
        (message, Sender(sender))
        for message, sender in zip(messages, senders(len(messages)), strict=True)
    ]
    host = Node(work_dir / "ours", sizes.ingest_cap, START)
    plugin = PeerStorePlugin()
    plugin.on_startup(host=host)
    book = plugin.book
    assert book is not None

    def work() -> None:
        for message, sender in batch:
            plugin.on_peer_list(host=host, sender=sender, peers=message)
        stored = len(book.store)
        plugin.on_shutdown(host=host)
        if stored != len(addrs):
            raise SystemExit(f"the store kept {stored} of {len(addrs)} addresses")

    return {"secs": timed(profile, work)}


def ingest_libp2p(work_dir: Path, sizes: Sizes, profile: bool, parsed: bool) -> dict[str, float]:
    """With ``parsed``, the multiaddrs are made before the timer starts."""
    # py-libp2p is optional: imported only in the processes that measure it.
    from libp2p.peer.id import ID  # noqa: PLC0415
    from libp2p.peer.persistent import create_sync_peerstore  # noqa: PLC0415
    from multiaddr import Multiaddr  # noqa: PLC0415

    texts = [f"/ip4/{ip}/tcp/{port}" for ip, port in public_addrs(sizes.ingest, seed=1)]
    ids = [ID(raw) for raw in peer_ids(len(texts))]
    ready = [Multiaddr(text) for text in texts] if parsed else []
    store = create_sync_peerstore(
        db_path=work_dir / "libp2p" / "peers.db", backend="sqlite", max_records=sizes.ingest_cap
    )

    def work() -> None:
        add = store.add_addr
        if parsed:
            for peer, addr in zip(ids, ready, strict=True):
                add(peer, addr, 604_800)
        else:
            for peer, text in zip(ids, texts, strict=True):
                add(peer, Multiaddr(text), 604_800)
        store.close()

    return {"secs": timed(profile, work)}


def reopen_ours(work_dir: Path, sizes: Sizes, profile: bool) -> dict[str, float]:
    path = big_file(work_dir / "ours")
    opened: list[PersistentPeerStore] = []
    listed: list[PeerEntry] = []

    def work() -> None:
        book = PersistentPeerStore.open(
            path=path, realm=REALM, clock=lambda: START + 3600, config=config(sizes.ingest_cap)
        )
        opened.append(book)
        listed.extend(book.store.entries())

    secs = timed(profile, work)
    opened[0].close()
    if len(listed) != sizes.ingest:
        raise SystemExit(f"listed {len(listed)} of {sizes.ingest} entries")
    return {"secs": secs}


def reopen_libp2p(work_dir: Path, sizes: Sizes, profile: bool) -> dict[str, float]:
    from libp2p.peer.persistent import create_sync_peerstore  # noqa: PLC0415

    path = work_dir / "libp2p" / "peers.db"
    opened: list[Any] = []
    listed: list[Any] = []

    def work() -> None:
        store = create_sync_peerstore(db_path=path, backend="sqlite", max_records=sizes.ingest_cap)
        opened.append(store)
        for peer in store.peers_with_addrs():
            listed.extend(store.addrs(peer))

    secs = timed(profile, work)
    opened[0].close()
    if len(listed) != sizes.ingest:
        raise SystemExit(f"listed {len(listed)} of {sizes.ingest} addresses")
    return {"secs": secs}


def open_big(work_dir: Path, sizes: Sizes, profile: bool, rep: int) -> dict[str, float]:
    """Both sides of ``open`` in one process, in an order that alternates with ``rep``."""
    path = big_file(work_dir)
    text = path.read_bytes().decode()
    figures: dict[str, float] = {}

    def ours() -> None:
        book = PersistentPeerStore.open(
            path=path, realm=REALM, clock=lambda: START + 3600, config=config(sizes.big)
        )
        stored = len(book.store)
        book.close()
        if stored != sizes.big:
            raise SystemExit(f"opened {stored} of {sizes.big} entries")

    def bare() -> None:
        tomllib.loads(text)

    sides = [("secs", ours), ("base", bare)]
    for name, work in sides if rep % 2 == 0 else sides[::-1]:
        figures[name] = timed(profile and name == "secs", work)
    return figures


def plan_big(work_dir: Path, sizes: Sizes, profile: bool, rep: int) -> dict[str, float]:
    """Both sides of ``plan`` in one process, in an order that alternates with ``rep``; the plan
    is then checked against the one a whole read of the file gives."""
    text = big_file(work_dir).read_bytes().decode()
    host = Node(work_dir, sizes.big, START + 3600)
    plugin = PeerStorePlugin()
    plans: list[list[str]] = []
    figures: dict[str, float] = {}

    def ours() -> None:
        plans.append(plugin.on_startup(host=host))

    def bare() -> None:
        tomllib.loads(text)

    sides = [("secs", ours), ("base", bare)]
    for name, work in sides if rep % 2 == 0 else sides[::-1]:
        figures[name] = timed(profile and name == "secs", work)
    plugin.on_shutdown(host=host)
    whole = PersistentPeerStore.open(
        path=big_file(work_dir),
        realm=REALM,
        clock=lambda: START + 3600,
        config=config(sizes.big),
        own_addrs=host.listen_addrs,
        own_node_id=host.node_id,
        version=host.realm.version,
    )
    expected = whole.store.reconnect_plan()
    whole.close()
    if not plans[0] or plans[0] != expected:
        raise SystemExit(f"the start planned {plans[0]}, a whole read plans {expected}")
    return figures


def memory_ours(work_dir: Path, sizes: Sizes) -> dict[str, float]:
    gc.collect()
    tracemalloc.start()
    book = PersistentPeerStore.open(
        path=big_file(work_dir),
        realm=REALM,
        clock=lambda: START + 3600,
        config=config(sizes.big),
    )
    if not book.save():
        raise SystemExit("the save failed")
    gc.collect()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stored = len(book.store)
    book.close()
    return {"secs": held / stored}


def writes(work_dir: Path, sizes: Sizes) -> dict[str, float]:
    addrs = store_addrs(public_addrs(sizes.rate * sizes.seconds, seed=5))
    now = [float(START)]
    book = PersistentPeerStore.open(
        path=work_dir / f"{REALM}.toml",
        realm=REALM,
        clock=lambda: now[0],
        config=config(min(len(addrs) + 1, MAX_ENTRIES_LIMIT), sizes.save_interval),
    )
    began = time.perf_counter()
    for second in range(sizes.seconds):
        now[0] += 1.0
        batch = addrs[second * sizes.rate : (second + 1) * sizes.rate]
        for i in range(0, len(batch), MESSAGE):
            book.store.record_gossip(batch[i : i + MESSAGE])
        book.tick()
    elapsed = time.perf_counter() - began
    saves = book.saves
    stored = len(book.store)
    book.close()
    if stored != min(len(addrs), MAX_ENTRIES_LIMIT):
        raise SystemExit(f"the store kept {stored} of {len(addrs)} addresses")
    return {"secs": float(saves), "wall": elapsed}


def run_one(name: str, work_dir: Path, sizes: Sizes, profile: bool, rep: int) -> None:
    steps: dict[str, Callable[[], dict[str, float]]] = {
        "ingest-ours": lambda: ingest_ours(work_dir, sizes, profile),
        "ingest-libp2p": lambda: ingest_libp2p(work_dir, sizes, profile, parsed=False),
        "ingest-parsed": lambda: ingest_libp2p(work_dir, sizes, profile, parsed=True),
        "reopen-ours": lambda: reopen_ours(work_dir, sizes, profile),
        "reopen-libp2p": lambda: reopen_libp2p(work_dir, sizes, profile),
        "open-both": lambda: open_big(work_dir, sizes, profile, rep),
        "plan-both": lambda: plan_big(work_dir, sizes, profile, rep),
        "memory-ours": lambda: memory_ours(work_dir, sizes),
        "writes-ours": lambda: writes(work_dir, sizes),
        "make-big": lambda: make_big(work_dir, sizes),
    }
    print(json.dumps(steps[name]()))


def make_big(work_dir: Path, sizes: Sizes) -> dict[str, float]:
    """Write the store's own file of ``sizes.big`` entries: Connected, Bootstrap and Gossip."""
    addrs = store_addrs(public_addrs(sizes.big, seed=3))
    connected, bootstrap = sizes.big // 4, sizes.big // 64
    now = [float(START)]
    book = PersistentPeerStore.open(
        path=big_file(work_dir),
        realm=REALM,
        clock=lambda: now[0],
        config=config(sizes.big),
    )
    gossip = addrs[connected + bootstrap :]
    for i in range(0, len(gossip), MESSAGE):
        book.store.record_gossip(gossip[i : i + MESSAGE])
        now[0] += 0.05
    book.store.record_bootstrap(addrs[connected : connected + bootstrap])
    for n, addr in enumerate(addrs[:connected]):
        book.store.record_connected(addr, node_id=f"node-{n:05d}")
        book.store.record_disconnected(addr)
        now[0] += 0.05
    book.save()
    stored = len(book.store)
    book.close()
    if stored != sizes.big:
        raise SystemExit(f"the store kept {stored} of {sizes.big} addresses")
    return {"secs": float(stored)}


# -- the driver ------------------------------------------------------------------------------


def spawn(name: str, work_dir: Path, quick: bool, rep: int = 0) -> dict[str, float]:
    command = [sys.executable, __file__, "--one", name, "--dir", str(work_dir), "--rep", str(rep)]
    if quick:
        command.append("--quick")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def fresh_copy(source: Path, target: Path) -> Path:
    """A copy of ``source`` (a directory or a file) at ``target``, replacing what was there."""
    shutil.rmtree(target, ignore_errors=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        target.mkdir(parents=True)
        shutil.copy2(source, target / source.name)
    return target


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], scale: float, fmt: str) -> str:
    return f"{format(median(values) * scale, fmt)} ({format(min(values) * scale, fmt)}-" + (
        f"{format(max(values) * scale, fmt)})"
    )


MEASUREMENTS = ("ingest", "reopen", "open", "plan", "memory", "writes")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions per figure (default 5)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", choices=MEASUREMENTS, action="append", help="run only these")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rep", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile", action="store_true", help="with --one: print cProfile's top 10 to stderr"
    )
    args = parser.parse_args(argv)
    sizes = Sizes(args.quick)
    if args.one:
        run_one(args.one, args.dir, sizes, args.profile, args.rep)
        return

    chosen = args.only or list(MEASUREMENTS)
    has_libp2p = importlib.util.find_spec("libp2p") is not None
    if not has_libp2p:
        print("py-libp2p is not installed: libp2p columns skipped (pip install '.[bench]')")
    began = time.perf_counter()
    results: dict[str, list[dict[str, float]]] = {}

    def add(key: str, figures: dict[str, float]) -> None:
        results.setdefault(key, []).append(figures)

    with tempfile.TemporaryDirectory(prefix="bench-vs-libp2p-") as tmp:
        root = Path(tmp)
        if "reopen" in chosen:
            spawn("ingest-ours", root / "reopen-src", args.quick)
            if has_libp2p:
                spawn("ingest-libp2p", root / "reopen-src", args.quick)
        if {"open", "plan", "memory"} & set(chosen):
            spawn("make-big", root / "big", args.quick)
        for rep in range(args.reps):
            run = root / f"rep{rep}"
            for name in chosen:
                if name == "writes":
                    continue
                sides = ["ours", "libp2p"] if has_libp2p else ["ours"]
                if name == "ingest" and has_libp2p:
                    sides.append("parsed")
                if name == "memory":
                    sides = ["ours"]
                if name in ("open", "plan"):
                    sides = ["both"]
                for side in sides if rep % 2 == 0 else sides[::-1]:
                    work = run / f"{name}-{side}"
                    if name == "reopen":
                        fresh_copy(root / "reopen-src" / side, work / side)
                    elif name in ("open", "plan", "memory"):
                        fresh_copy(root / "big", work)
                    add(f"{name}-{side}", spawn(f"{name}-{side}", work, args.quick, rep))
                    shutil.rmtree(work, ignore_errors=True)
        if "writes" in chosen:
            add("writes-ours", spawn("writes-ours", root / "writes", args.quick))
    report(results, sizes, args.reps, has_libp2p)
    print(f"run took {time.perf_counter() - began:.1f} s")


def report(
    results: dict[str, list[dict[str, float]]], sizes: Sizes, reps: int, has_libp2p: bool
) -> None:
    def column(key: str, field: str = "secs") -> list[float]:
        return [figures[field] for figures in results.get(key, [])]

    rows: list[tuple[str, str, str, str, str, str]] = []
    missing = "not run" if not has_libp2p else "-"

    def speed_row(
        label: str, ours: list[float], theirs: list[float], named: str, *, target: float
    ) -> tuple[float, float] | None:
        """A row of ours against theirs, times for ``sizes.ingest`` addresses; (ratio, us/addr)."""
        if not ours:
            return None
        per = median(ours) / sizes.ingest * 1e6
        mine = f"{spread(ours, 1e3, '.0f')} ms = {per:.2f} us/addr"
        if not theirs:
            rows.append((label, mine, missing, "", f">= {target:g}x faster", "?"))
            return None
        ratio = median(theirs) / median(ours)
        rows.append(
            (
                label,
                mine,
                f"{named} {spread(theirs, 1e3, '.0f')} ms",
                f"{ratio:.2f}x faster",
                f">= {target:g}x faster" if target else "",
                ("yes" if ratio >= target else "NO") if target else "",
            )
        )
        return ratio, per

    ours = column("ingest-ours")
    label = f"1 ingest {sizes.ingest:,} gossip + close"
    figures = speed_row(label, ours, column("ingest-parsed"), "parsed", target=10)
    if figures is not None:
        ratio, per = figures
        label, mine, theirs, ratio_text, _, _ = rows.pop()
        holds = "yes" if ratio >= 10 and per <= 2 else "NO"
        rows.append((label, mine, theirs, ratio_text, ">= 10x faster, <= 2 us/addr", holds))
    speed_row("  (libp2p parsing in its time)", ours, column("ingest-libp2p"), "parsing", target=0)
    speed_row(
        f"2 reopen + list {sizes.ingest:,}",
        column("reopen-ours"),
        column("reopen-libp2p"),
        "reopen",
        target=5,
    )
    for key, label, target in (
        ("open-both", f"3 open {sizes.big:,}-entry file", 0.35),
        ("plan-both", f"4 on_startup to plan, {sizes.big:,}", 0.025),
    ):
        mine_, bare = column(key), column(key, "base")
        if not mine_:
            continue
        ratio = median(mine_) / median(bare)
        rows.append(
            (
                label,
                f"{spread(mine_, 1e3, '.1f')} ms",
                f"tomllib {spread(bare, 1e3, '.0f')} ms",
                f"{ratio:.3f}x tomllib",
                f"<= {target:g}x tomllib",
                "yes" if ratio <= target else "NO",
            )
        )
    held = column("memory-ours")
    if held:
        rows.append(
            (
                f"5 memory, {sizes.big:,} open, saved",
                f"{spread(held, 1, '.0f')} B/entry",
                "",
                "",
                "<= 300 B/entry",
                "yes" if median(held) <= 300 else "NO",
            )
        )
    saves, wall = column("writes-ours"), column("writes-ours", "wall")
    if saves:
        rows.append(
            (
                f"6 writes, {sizes.rate:,} new/s for {sizes.seconds} s",
                f"{saves[0]:.0f} writes ({wall[0]:.1f} s wall)",
                "",
                "",
                "<= 11",
                "yes" if saves[0] <= 11 else "NO",
            )
        )
    header = ("measurement", "thenodes-peerstore", "baseline", "ratio", "target", "holds")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    against = f"py-libp2p {version('libp2p')} SQLite peerstore" if has_libp2p else "-"
    print(
        f"median of {reps} repetitions (min-max), each in a fresh process; baseline = {against}"
        " (parsed: its multiaddrs made before its timer; parsing: inside it) unless named"
    )
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
