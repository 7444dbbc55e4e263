"""The quick paths of a node at the default cap, each against the general path it stands in for.

    python -m benchmarks.bench_paths [--reps 7]

One node, ``max_entries`` at its default (1,024), in one process. Each row times a quick path
and the path it stands in for on the same work, alternating, and prints the medians of
``--reps`` repetitions of each, in CPU time (the machine may be shared); the quick paths'
comments in the code name these figures.

- ``gossip``: 10,000 new addresses as peer lists of 16 from public senders, recorded by a full
  store of 1,024 (so every one evicts the oldest gossip): canonical, as peers send them (the
  pattern takes each as it is), against the same addresses with a port of a leading zero (each
  parsed, as every address was before).
- ``evict``: 20,000 new gossip addresses as peer lists of 16 (no sender) into a store full of
  gossip, each evicting the oldest, at the largest cap (65,536) against the default cap: what
  one costs must not grow with the store (the tiers are ordered dicts for this).
- ``parse``: 10,000 IPv4 addresses parsed as written (canonical: the pattern vouches for each),
  against the same with a port of a leading zero (the parser's general path).
- ``entry``: a new entry for a canonical address, made without validators (``seen_first``)
  against ``PeerEntry.new`` with a string (attrs' ``__init__`` and every validator).
- ``replace``: an entry with its ``last_seen`` changed (what every connection and every save
  does to the peers the node is connected to), by ``PeerEntry.replace`` (a copy over the slots'
  setters, the changed field validated), against ``attrs.evolve`` (``__init__`` and every
  validator).
- ``victim``: 1,000 inbound handshakes at a seed whose store of 1,024 is full of peers it is
  connected to (each evicts one, after passing over every connected entry), with the store's
  search for the entry to evict, against the same search as a Python loop.
- ``writer``: the text of 10,000 entries as a save writes them, gossip ones and proven ones
  with a node id and a capability, by the writer generated from the schema, against a loop over
  the schema's fields writing the same text.
- ``read``: a node's full file of 1,024 entries (a quarter proven, with node ids) read in one
  pass as written, against table by table; and the bytes its entries hold either way.
- ``load``: those entries loaded into a store of 1,024, each put without asking, against a
  store capped one entry short (each entry through the cap's check).
- ``start``: ``on_startup`` to its plan on that file, reading the plan from the file's head,
  against reading the whole file first.
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from thenodes_peerstore import PersistenceConfig, PersistentPeerStore, codec
from thenodes_peerstore.model import Address, PeerEntry, Source, seen_first
from thenodes_peerstore.plugin import PeerStorePlugin
from thenodes_peerstore.store import PeerStore

START = 1_763_700_000
REALM = "bench"
CAP = PersistenceConfig().max_entries
"""The default cap."""
MESSAGE = 16


_FIRST = tuple(a for a in range(11, 224) if a not in (100, 127, 169, 172, 192, 198))
"""First octets of global unicast addresses only."""


def public(n: int) -> str:
    """The ``n``-th of many public IPv4 addresses, each of ``len(_FIRST)`` in a row in a /16
    group of its own."""
    width = len(_FIRST)
    return f"{_FIRST[n % width]}.{n // width % 256}.{n // width // 256 % 256}.1:7447"


def cpu(work: Callable[[], object]) -> float:
    """CPU seconds of one call, with no collection during it."""
    gc.collect()
    gc.disable()
    try:
        began = time.process_time()
        work()
        return time.process_time() - began
    finally:
        gc.enable()


def versus(
    reps: int,
    quick: Callable[[], Callable[[], object]],
    general: Callable[[], Callable[[], object]],
) -> tuple[float, float]:
    """Median CPU seconds of ``quick()`` and ``general()``'s work, alternating; each factory
    sets up, untimed, and returns the work."""
    times: tuple[list[float], list[float]] = ([], [])
    for rep in range(reps):
        order = [(0, quick), (1, general)]
        for side, make in order if rep % 2 == 0 else order[::-1]:
            times[side].append(cpu(make()))
    return statistics.median(times[0]), statistics.median(times[1])


def gossip(reps: int) -> tuple[float, float]:
    addrs = [public(100_000 + n) for n in range(10_000)]
    zeroed = [a.replace(":7447", ":07447") for a in addrs]  # not canonical: parsed
    senders = [f"{60 + n // 256}.{n % 256}.0.1:7447" for n in range(len(addrs) // MESSAGE)]

    def recording(spelled: Sequence[str]) -> Callable[[], Callable[[], object]]:
        def make() -> Callable[[], object]:
            store = PeerStore(clock=lambda: START, max_entries=CAP)
            store.record_gossip([public(n) for n in range(CAP)])

            def work() -> None:
                for i, sender in enumerate(senders):
                    store.record_gossip(spelled[i * MESSAGE : (i + 1) * MESSAGE], sender=sender)

            return work

        return make

    quick, general = versus(reps, recording(addrs), recording(zeroed))
    return quick / len(addrs), general / len(addrs)


def evict(reps: int) -> tuple[float, float]:
    def evicting(cap: int) -> Callable[[], Callable[[], object]]:
        def make() -> Callable[[], object]:
            store = PeerStore(clock=lambda: START, max_entries=cap)
            first = [public(n) for n in range(cap)]
            for i in range(0, cap, MESSAGE):
                store.record_gossip(first[i : i + MESSAGE])
            new = [public(cap + n) for n in range(20_000)]

            def work() -> None:
                for i in range(0, len(new), MESSAGE):
                    store.record_gossip(new[i : i + MESSAGE])
                assert len(store) == cap

            return work

        return make

    quick, general = versus(reps, evicting(65_536), evicting(CAP))
    return quick / 20_000, general / 20_000


def entry(reps: int) -> tuple[float, float]:
    addrs = [public(n) for n in range(10_000)]

    def making(make_one: Callable[[str], PeerEntry]) -> Callable[[], Callable[[], object]]:
        return lambda: lambda: [make_one(a) for a in addrs]

    quick, general = versus(
        reps,
        making(lambda a: seen_first(a, Source.GOSSIP, START)),
        making(lambda a: PeerEntry.new(a, Source.GOSSIP, START)),
    )
    return quick / len(addrs), general / len(addrs)


def replace(reps: int) -> tuple[float, float]:
    entries = [
        PeerEntry(
            addr=public(n),
            source=Source.CONNECTED,
            first_seen=START,
            last_seen=START,
            last_connected=START,
            node_id=f"node-{n:05d}",
            capabilities=("relay",),
        )
        for n in range(10_000)
    ]
    later = START + 60
    assert entries[0].replace(last_seen=later) == attrs.evolve(entries[0], last_seen=later)
    quick, general = versus(
        reps,
        lambda: lambda: [e.replace(last_seen=later) for e in entries],
        lambda: lambda: [attrs.evolve(e, last_seen=later) for e in entries],
    )
    return quick / len(entries), general / len(entries)


def parse(reps: int) -> tuple[float, float]:
    addrs = [public(n) for n in range(10_000)]
    zeroed = [a.replace(":7447", ":07447") for a in addrs]

    def parsing(spelled: list[str]) -> Callable[[], Callable[[], object]]:
        return lambda: lambda: [Address.parse(a) for a in spelled]

    quick, general = versus(reps, parsing(addrs), parsing(zeroed))
    return quick / len(addrs), general / len(addrs)


class _LoopedVictim(PeerStore):
    """The store with its search for an entry to evict written as a Python loop."""

    def _victim(self, newcomer: Source) -> str | None:
        tiers = [tier for tier in self._tiers[: newcomer.rank + 1] if tier]
        for tier in tiers:
            for addr in tier:
                if addr not in self._connected:
                    return addr
        return next(iter(tiers[0])) if tiers else None


def victim(reps: int) -> tuple[float, float]:
    arriving = [public(CAP + n) for n in range(1_000)]

    def seed(kind: type[PeerStore]) -> Callable[[], Callable[[], object]]:
        def make() -> Callable[[], object]:
            store = kind(clock=lambda: START, max_entries=CAP)
            for n in range(CAP):
                store.record_connected(
                    f"{public(n)[:-5]}:50000", listen_addr=public(n), direction="inbound"
                )

            def work() -> None:
                for addr in arriving:
                    store.record_connected(
                        f"{addr[:-5]}:50000", listen_addr=addr, direction="inbound"
                    )

            return work

        return make

    quick, general = versus(reps, seed(PeerStore), seed(_LoopedVictim))
    return quick / len(arriving), general / len(arriving)


def looped_write(entry: PeerEntry) -> str:
    """An entry's table as the generated writer writes it, by a loop over the schema's fields."""
    out = ["\n[[peers]]\n"]
    for field in codec.ENTRY.fields:
        value = getattr(entry, field.name)
        if field.optional and value == field.default:
            continue
        if field.kind is int:
            out.append(f"{field.name} = {value:d}\n")
        elif field.kind is Source:
            out.append(f'{field.name} = "{value.label}"\n')
        elif field.kind is tuple:
            items = "".join(f"    {codec.toml_string(item)},\n" for item in value)
            out.append(f"{field.name} = [\n{items}]\n")
        else:
            out.append(f"{field.name} = {codec.toml_string(value)}\n")
    return "".join(out)


def writer(reps: int) -> dict[str, tuple[float, float]]:
    gossip = [seen_first(public(n), Source.GOSSIP, START) for n in range(10_000)]
    proven = [
        PeerEntry(
            addr=public(n),
            source=Source.CONNECTED,
            first_seen=START,
            last_seen=START + n,
            last_connected=START + n,
            node_id=f"node-{n:05d}",
            capabilities=("relay",),
        )
        for n in range(10_000)
    ]
    figures = {}
    for name, entries in (("gossip", gossip), ("proven", proven)):
        assert "".join(map(codec.ENTRY.write, entries)) == "".join(map(looped_write, entries))
        quick, general = versus(
            reps,
            lambda entries=entries: lambda: "".join(map(codec.ENTRY.write, entries)),
            lambda entries=entries: lambda: "".join(map(looped_write, entries)),
        )
        figures[name] = (quick / len(entries), general / len(entries))
    return figures


def node_file(directory: Path) -> Path:
    """A node's full file at the default cap: a quarter proven (with ids), the rest gossip."""
    path = directory / "plugins" / "peerstore" / f"{REALM}.toml"
    now = [float(START)]
    book = PersistentPeerStore.open(
        path=path, realm=REALM, clock=lambda: now[0], config=PersistenceConfig(enabled=True)
    )
    for n in range(CAP // 4):
        book.store.record_connected(public(n), node_id=f"node-{n:05d}")
        now[0] += 1
    gossip = [public(CAP + n) for n in range(CAP - CAP // 4)]
    for i in range(0, len(gossip), MESSAGE):
        book.store.record_gossip(gossip[i : i + MESSAGE])
    book.close()
    return path


def read(path: Path, reps: int) -> tuple[float, float, float, float]:
    data = path.read_bytes()
    quick, general = versus(
        reps,
        lambda: lambda: codec.decode(data, realm=REALM),
        lambda: lambda: codec._decode_any(data, realm=REALM),
    )
    held = []
    for decode in (codec.decode, codec._decode_any):
        gc.collect()
        tracemalloc.start()
        decoded = decode(data, realm=REALM)
        held.append(tracemalloc.get_traced_memory()[0] / len(decoded.entries))
        tracemalloc.stop()
        del decoded
    return quick / CAP, general / CAP, held[0], held[1]


def load(path: Path, reps: int) -> tuple[float, float]:
    entries = codec.decode(path.read_bytes(), realm=REALM).entries

    def loading(cap: int) -> Callable[[], Callable[[], object]]:
        def make() -> Callable[[], object]:
            store = PeerStore(clock=lambda: START + 60, max_entries=cap)
            return lambda: store.load(entries)

        return make

    quick, general = versus(reps, loading(CAP), loading(CAP - 1))
    return quick / CAP, general / CAP


class _Realm:
    name = code = REALM
    version = "1.0"


class _Node:
    """``host`` as a host gives it to ``on_startup``."""

    def __init__(self, state_dir: Path) -> None:
        self.realm = _Realm()
        self.node_id = "node-bench"
        self.listen_addrs = ("198.51.100.5:7447",)
        self.state_dir = state_dir
        self.config = {"network": {"persistence": {"enabled": True}}}
        self.log = logging.getLogger("bench")

    def now(self) -> float:
        return float(START + 3600)


def start(path: Path, reps: int) -> tuple[float, float]:
    host = _Node(path.parents[2])
    times: tuple[list[float], list[float]] = ([], [])
    for rep in range(reps):
        for side in (0, 1) if rep % 2 == 0 else (1, 0):
            plugin = PeerStorePlugin()
            if side == 0:
                times[0].append(cpu(lambda plugin=plugin: plugin.on_startup(host=host)))
                plugin.on_shutdown(host=host)
                continue
            opened: list[PersistentPeerStore] = []

            def whole(opened: list[PersistentPeerStore] = opened) -> None:
                book = PersistentPeerStore.open(
                    path=path,
                    realm=REALM,
                    clock=host.now,
                    own_addrs=host.listen_addrs,
                    own_node_id=host.node_id,
                    version=host.realm.version,
                )
                opened.append(book)
                book.store.reconnect_plan()

            times[1].append(cpu(whole))
            opened[0].close()
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    reps = args.reps
    print(f"default cap {CAP:,} entries; medians of {reps} repetitions, CPU time")
    quick, general = gossip(reps)
    print(
        f"gossip, per address: {quick * 1e6:.2f} us taken as it is, {general * 1e6:.2f} us parsed"
    )
    quick, general = evict(reps)
    print(
        f"evict, per new gossip address at a full store: {quick * 1e6:.2f} us at 65,536,"
        f" {general * 1e6:.2f} us at the default cap"
    )
    quick, general = parse(reps)
    print(f"parse: {quick * 1e6:.2f} us as written, {general * 1e6:.2f} us spelled otherwise")
    quick, general = entry(reps)
    print(
        f"entry: {quick * 1e6:.2f} us without validators, {general * 1e6:.2f} us through __init__"
    )
    quick, general = replace(reps)
    print(
        f"replace, one field: {quick * 1e6:.2f} us copied over the slots,"
        f" {general * 1e6:.2f} us by attrs.evolve"
    )
    quick, general = victim(reps)
    print(
        f"victim, per handshake at a seed connected to all it stores: {quick * 1e6:.1f} us,"
        f" {general * 1e6:.1f} us with a Python loop"
    )
    for kind, (quick, general) in writer(reps).items():
        print(
            f"writer, per {kind} entry: {quick * 1e6:.2f} us generated, {general * 1e6:.2f} us"
            " by a loop over the fields"
        )
    with tempfile.TemporaryDirectory(prefix="bench-paths-") as tmp:
        path = node_file(Path(tmp))
        quick, general, held_quick, held_general = read(path, reps)
        print(
            f"read, per entry: {quick * 1e6:.2f} us in one pass, {general * 1e6:.2f} us table by"
            f" table; {held_quick:.0f} B held against {held_general:.0f} B"
        )
        quick, general = load(path, reps)
        print(
            f"load, per entry: {quick * 1e6:.2f} us put without asking, {general * 1e6:.2f} us"
            " through the cap's check"
        )
        quick, general = start(path, reps)
        print(
            f"start to plan: {quick * 1e3:.2f} ms from the head, {general * 1e3:.2f} ms reading"
            " the whole file"
        )


if __name__ == "__main__":
    main()
