"""The store under the node's own failures: its uplink, its clock, its file, its settings."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.books import open_book, read_file
from thenodes_peerstore import files
from thenodes_peerstore.errors import StorePathError
from thenodes_peerstore.model import Source
from thenodes_peerstore.persistent import PersistentPeerStore
from thenodes_peerstore.plugin import PeerStorePlugin

START = 1_763_700_000
HOUR = 3600
YEAR = 365 * 24 * HOUR
PROVEN = [f"{45 + n}.76.12.34:7447" for n in range(5)]


def run(book: PersistentPeerStore, clock, secs: int, step: int = 1) -> None:
    """Tick the running node once per ``step`` seconds for ``secs`` seconds."""
    for _ in range(secs // step):
        clock.advance(step)
        book.tick()


def in_file(path: Path) -> dict[str, Source]:
    return {e.addr: e.source for e in read_file(path)}


def test_four_hours_without_uplink_then_a_restart_plans_every_proven_peer(
    tmp_path: Path, clock
) -> None:
    path = tmp_path / "peers" / "example.toml"
    book = open_book(path, clock)
    for addr in PROVEN:
        book.store.record_connected(addr)
        book.store.record_disconnected(addr)
    for _ in range(4 * HOUR // 60):  # the uplink is down: every dial fails, none connects
        for addr in PROVEN:
            book.store.record_dial_failed(addr)
        run(book, clock, 60, step=10)
    book.close()

    clock.advance(60)
    restarted = open_book(path, clock)
    assert sorted(restarted.store.reconnect_plan()) == sorted(PROVEN)
    restarted.close()


def test_a_quiet_node_still_ages_its_entries(tmp_path: Path, clock) -> None:
    """70 minutes of ticks and no event: the gossip is 70 minutes of running time old."""
    path = tmp_path / "peers" / "example.toml"
    book = open_book(path, clock, ttl_secs=HOUR)
    book.store.record_gossip(["192.0.2.1:7447"])
    book.store.record_connected(PROVEN[0])
    book.store.record_disconnected(PROVEN[0])
    book.save()
    saves = book.saves
    run(book, clock, 70 * 60)
    assert "192.0.2.1:7447" not in book.store  # expired while running
    assert book.saves - saves <= 70 * 60 // (HOUR // 16) + 1  # not a write every interval
    book.file.close()  # the process dies: nothing more is written

    clock.advance(5)
    again = open_book(path, clock, ttl_secs=HOUR)
    assert "192.0.2.1:7447" not in again.store
    assert PROVEN[0] in again.store  # an anchor
    again.close()


@pytest.mark.parametrize("jump", [YEAR, -YEAR])
def test_a_clock_jump_and_back_erases_nothing_the_node_knows(
    tmp_path: Path, clock, jump: int
) -> None:
    """A year ahead for a minute then back, or a year behind then set right."""
    path = tmp_path / "peers" / "example.toml"
    book = open_book(path, clock)
    for addr in PROVEN:
        book.store.record_connected(addr)
        book.store.record_disconnected(addr)
    book.store.record_bootstrap([f"203.0.113.{n}:7447" for n in range(1, 10)])
    book.store.record_gossip([f"10.{n // 200}.{n % 200}.1:7447" for n in range(200)])
    run(book, clock, 120)
    before = set(in_file(path)) if path.exists() else {e.addr for e in book.store}

    clock.advance(jump)
    learned = [f"198.51.100.{n}:7447" for n in range(40)]
    book.store.record_gossip(learned)
    run(book, clock, 120 if jump < 0 else 60)
    clock.advance(-jump)
    book.store.record_connected(PROVEN[0])  # life goes on: the node has something to save
    book.store.record_disconnected(PROVEN[0])
    run(book, clock, 120)
    book.close()

    clock.advance(60)
    again = open_book(path, clock)
    kept = {e.addr for e in again.store}
    again.close()
    assert before <= kept
    assert set(learned) <= kept


def test_a_failing_clock_is_logged_once_per_streak_whichever_hook_meets_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [float(START)]
    host = SimpleNamespace(
        realm=SimpleNamespace(code="example", version="1.0"),
        node_id="node-a",
        listen_addrs=["198.51.100.5:7447"],
        state_dir=tmp_path,
        config={"network": {"persistence": {"enabled": True}}},
        now=lambda: now[0],
    )
    peer = SimpleNamespace(
        node_id="node-b",
        addr=PROVEN[0],
        listen_addr=None,
        direction="outbound",
        capabilities=(),
    )
    plugin = PeerStorePlugin()
    plugin.on_startup(host=host)
    now[0] = math.nan
    with caplog.at_level(logging.ERROR):
        for _ in range(30):
            plugin.on_tick(host=host)
            plugin.on_connect(host=host, peer=peer)
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    now[0] = START + 100.0
    plugin.on_tick(host=host)
    now[0] = math.inf
    with caplog.at_level(logging.ERROR):
        plugin.on_connect(host=host, peer=peer)
        plugin.on_tick(host=host)
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 2
    now[0] = START + 200.0
    plugin.on_shutdown(host=host)


@pytest.mark.parametrize("encryption", ["none", "aes-256-gcm"])
def test_inbound_claims_of_the_largest_size_leave_a_file_the_loader_reads_whole(
    tmp_path: Path, clock, encryption: str
) -> None:
    """7,000 claims with a 128-character id and 32 capabilities of 64 characters each, in a
    plain file and in an encrypted one (whose envelope the budget leaves room for)."""
    path = tmp_path / "peers" / "example.toml"
    settings: dict[str, object] = {"max_entries": 8192}
    if encryption != "none":
        key = tmp_path / "peers.key"
        key.write_bytes(bytes(range(32)))
        key.chmod(0o600)
        settings |= {"encryption": encryption, "key_file": str(key)}
    book = open_book(path, clock, **settings)
    for addr in PROVEN:
        book.store.record_connected(addr, node_id="p" * 128, capabilities=["relay"])
        book.store.record_disconnected(addr)
    for n in range(7000):
        ip = f"100.{64 + n // 60000}.{n // 250 % 250}.{n % 250 + 1}"
        book.store.record_connected(
            f"{ip}:50000",
            listen_addr=f"{ip}:7447",
            direction="inbound",
            node_id=f"{n:0128d}",
            capabilities=[f"{c:02d}" + "x" * 62 for c in range(32)],
        )
        book.store.record_disconnected(f"{ip}:50000", listen_addr=f"{ip}:7447", direction="inbound")
    assert book.save()
    book.close()
    assert path.stat().st_size <= files.MAX_FILE_BYTES

    clock.advance(60)
    again = open_book(path, clock, **settings)
    assert len(again.store) == 7005
    assert all(again.store.get(a).node_id == "p" * 128 for a in PROVEN)  # type: ignore[union-attr]
    assert sorted(again.store.reconnect_plan()) == sorted(PROVEN)
    again.close()


def test_a_hard_linked_lock_file_is_refused_and_the_other_file_left_whole(
    tmp_path: Path, clock
) -> None:
    path = tmp_path / "peers" / "example.toml"
    path.parent.mkdir(mode=0o700)
    precious = tmp_path / "precious.txt"
    precious.write_text("do not truncate me\n")
    os.link(precious, path.with_name("example.toml.lock"))

    with pytest.raises(StorePathError, match=r"example\.toml\.lock has 2 links"):
        open_book(path, clock)

    assert precious.read_text() == "do not truncate me\n"
