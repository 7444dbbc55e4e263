"""Cost of the peer store's operations: prints per-operation times, asserts nothing.

    python -m benchmarks.bench_store

Shows that a mutation costs the same whatever the store's size (O(1) amortised), and what a
save and a load of a full file cost.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from thenodes_peerstore import PersistenceConfig, PersistentPeerStore
from thenodes_peerstore.store import PeerStore

START = 1_763_700_000


def addr(n: int) -> str:
    return f"{11 + n // 65536 % 200}.{n // 256 % 256}.{n % 256}.1:7447"


def gossip_flood(count: int, max_entries: int) -> float:
    """Seconds per address for ``count`` gossip addresses into a full store of proven peers."""
    store = PeerStore(clock=lambda: START, max_entries=max_entries)
    for n in range(max_entries // 2):
        store.record_connected(addr(10_000_000 + n), node_id=f"n{n}")
    batch = [addr(n) for n in range(count)]
    began = time.perf_counter()
    for i in range(0, count, 1000):
        store.record_gossip(batch[i : i + 1000])
    elapsed = time.perf_counter() - began
    assert len(store) <= max_entries
    return elapsed / count


def attack_flood(count: int, senders: int = 5, max_entries: int = 1024) -> tuple[float, int, int]:
    """An attacker's ``count`` addresses from a few senders, as peer lists of 1,000.

    The store is full (Connected, Bootstrap, Gossip). Return seconds per address, how many
    Connected entries survived of how many, and how many attacker addresses reached the plan.
    """
    clock = [float(START)]
    store = PeerStore(clock=lambda: clock[0], max_entries=max_entries)
    proven = [addr(10_000_000 + n) for n in range(max_entries // 4)]
    for a in proven:
        store.record_connected(a, node_id="peer")
        store.record_disconnected(a)
    store.record_bootstrap([addr(11_000_000 + n) for n in range(16)])
    store.record_gossip([addr(12_000_000 + n) for n in range(max_entries)])
    attack = [addr(n) for n in range(count)]
    began = time.perf_counter()
    for i in range(0, count, 1000):
        sender = f"185.{i // 1000 % senders}.0.1:7447"
        store.record_gossip(attack[i : i + 1000], sender=sender)
        clock[0] += 10
        assert len(store) <= max_entries
    elapsed = time.perf_counter() - began
    survived = sum(1 for a in proven if a in store)
    in_plan = len(set(store.reconnect_plan()) & set(attack))
    return elapsed / count, survived, in_plan


def connects(count: int) -> float:
    """Seconds per connect + disconnect pair."""
    store = PeerStore(clock=lambda: START, max_entries=1024)
    addrs = [addr(n) for n in range(count)]
    began = time.perf_counter()
    for a in addrs:
        store.record_connected(a, node_id="peer")
        store.record_disconnected(a)
    return (time.perf_counter() - began) / count


def save_and_load(entries: int) -> tuple[float, float, int]:
    """Seconds for one save and one load of a file of ``entries`` entries, and its size."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "peers" / "bench.toml"
        config = PersistenceConfig(enabled=True, max_entries=entries)
        with PersistentPeerStore.open(
            path=path, realm="bench", clock=lambda: START, config=config
        ) as book:
            for n in range(entries):
                book.store.record_connected(addr(n), node_id=f"node-{n}", capabilities=["relay"])
            began = time.perf_counter()
            book.save()
            saved = time.perf_counter() - began
        began = time.perf_counter()
        with PersistentPeerStore.open(path=path, realm="bench", clock=lambda: START, config=config):
            loaded = time.perf_counter() - began
        return saved, loaded, path.stat().st_size


def main() -> None:
    print("gossip flood into a full store (half Connected), per address:")
    for count in (10_000, 100_000, 400_000):
        for cap in (1024, 16_384):
            us = gossip_flood(count, cap) * 1e6
            print(f"  {count:>7,} addresses, max_entries {cap:>6,}: {us:6.2f} us")
    print("attack: peer lists of 1,000 from 5 senders into a full store of 1,024, per address:")
    for count in (10_000, 100_000, 1_000_000):
        secs, survived, in_plan = attack_flood(count)
        us = secs * 1e6
        print(
            f"  {count:>9,} addresses: {us:6.2f} us;"
            f" Connected kept {survived}/{1024 // 4}; attacker addresses in the plan: {in_plan}"
        )
    print("connect + disconnect, per pair:")
    for count in (1_000, 10_000, 100_000):
        print(f"  {count:>7,} pairs: {connects(count) * 1e6:6.2f} us")
    print("save and load of a full file:")
    for entries in (1024, 16_384):
        saved, loaded, size = save_and_load(entries)
        print(
            f"  {entries:>6,} entries, {size / 1024:7.1f} KiB:"
            f" save {saved * 1e3:7.1f} ms, load {loaded * 1e3:7.1f} ms"
        )


if __name__ == "__main__":
    main()
