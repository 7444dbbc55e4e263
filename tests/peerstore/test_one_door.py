"""One reader and one writer for a peer file: the node and the ``peerstore`` command go through
``thenodes_peerstore.door``, which reads a file once and decodes it once, and writes it with
one encoding; no other module of the package decodes, encodes, seals or opens a file, and the
package's modules import one another without a cycle."""

from __future__ import annotations

import ast
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clocks import FakeClock
from tests.support.command import Node, Run, write_node
from tests.support.paths import ROOT
from thenodes_peerstore import codec, files, peerfile
from thenodes_peerstore.errors import KeyUnusableError
from thenodes_peerstore.model import PeerEntry, Source
from thenodes_peerstore.persistent import PersistentPeerStore
from thenodes_peerstore.sealing import Key, Sealing, key_from_bytes

PACKAGE = ROOT / "thenodes_peerstore"
NOW = 1_796_000_000
CODEC_CALLS = {"decode", "encode"}
SEALING_CALLS = {"seal", "seal_chunks", "unseal", "open_sealed", "is_sealed", "realm_of", "parse"}
"""What reads or writes a peer file's text or its envelope: the one door's to call."""


# -- one module reads and writes a peer file -----------------------------------------------------


def _calls(path: Path) -> Iterator[str]:
    """``module.name`` for every use of the codec's or the envelope's reading and writing in
    ``path``, and every import of one of them by name."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module, name = node.value.id, node.attr
            if (module, name in CODEC_CALLS) == ("codec", True) or (
                module == "sealing" and name in SEALING_CALLS
            ):
                yield f"{module}.{name}"
        if isinstance(node, ast.ImportFrom) and node.module in (
            "thenodes_peerstore.codec",
            "thenodes_peerstore.sealing",
        ):
            wanted = CODEC_CALLS if node.module.endswith("codec") else SEALING_CALLS
            yield from (f"{node.module}.{a.name}" for a in node.names if a.name in wanted)


def test_only_the_door_decodes_encodes_seals_or_opens_a_peer_file() -> None:
    found = {
        path.name: sorted(set(_calls(path)))
        for path in sorted(PACKAGE.glob("*.py"))
        if path.name not in {"codec.py", "sealing.py"}  # where they are defined
    }
    assert {name: calls for name, calls in found.items() if calls} == {
        "door.py": [
            "codec.decode",
            "codec.encode",
            "sealing.is_sealed",
            "sealing.open_sealed",
            "sealing.realm_of",
            "sealing.seal_chunks",
            "sealing.unseal",
        ]
    }


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules ``path`` imports, wherever the import stands (a function, or a
    block only a type checker reads)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "thenodes_peerstore":
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "thenodes_peerstore."
        ):
            found.add((node.module or "").split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {
                a.name.split(".")[1] for a in node.names if a.name.startswith("thenodes_peerstore.")
            }
    return found - {path.stem}


def test_the_package_imports_its_modules_without_a_cycle() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    graph = {m: _imports(PACKAGE / f"{m}.py", modules) for m in modules}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, "import cycle: " + " -> ".join((*path, module))
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())
    assert "sealing" in graph["door"]  # the walk sees what it looks for
    assert "config" in graph["sealing"]


# -- one read decodes once, one write encodes once -----------------------------------------------


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times the file is read from disk, decoded and encoded."""
    counts: Counter[str] = Counter()

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(codec, "decode", counting("decode", codec.decode))
    monkeypatch.setattr(codec, "encode", counting("encode", codec.encode))
    read = counting("read", files.read_peer_file)
    monkeypatch.setattr(files, "read_peer_file", read)
    monkeypatch.setattr(peerfile, "read_peer_file", read)
    monkeypatch.setattr(time, "time", lambda: float(NOW))
    return counts


def _file(node: Node) -> None:
    node.peers.parent.mkdir(parents=True, mode=0o700)
    entries = [
        PeerEntry.new("192.0.2.10:7447", Source.CONNECTED, NOW - 60),
        PeerEntry.new("203.0.113.1:7447", Source.BOOTSTRAP, NOW - 60),
        PeerEntry.new("198.51.100.5:7447", Source.GOSSIP, NOW - 60),  # the node's own: dropped
        PeerEntry.new("192.0.2.10:7447", Source.GOSSIP, NOW - 90),  # a second entry: dropped
        PeerEntry.new("192.0.2.20:7447", Source.CONNECTED, NOW - 60).replace(
            cert_fingerprint="a" * 64, cert_changed_to="b" * 64
        ),  # a dial met another certificate: for accept-cert
    ]
    node.peers.write_bytes(codec.encode("example", NOW - 60, entries, version="1.0"))


READS = [
    ("list",),
    ("show", "192.0.2.10:7447"),
    ("stats",),
    ("stats", "--json"),
    ("verify",),
    ("export", "--format", "thenodes"),
    ("export", "--format", "json"),
]
WRITES = [
    ("add", "192.0.2.50:7447"),
    ("remove", "192.0.2.10:7447"),
    ("prune",),
    ("seal",),
    ("import", "--thenodes", "given.json"),
    ("rekey", "--new-key-file", "new.key"),
    ("accept-cert", "192.0.2.20:7447"),
]


@pytest.mark.parametrize("args", READS, ids=" ".join)
@pytest.mark.parametrize("named", ["--config", "--file"])
def test_every_read_reads_and_decodes_the_file_once(
    tmp_path: Path, peerstore: Run, counted: Counter[str], args: tuple[str, ...], named: str
) -> None:
    node = write_node(tmp_path)
    _file(node)
    counted.clear()
    by = node.args if named == "--config" else ("--file", str(node.peers))

    ran = peerstore(*args, *by)

    assert ran.status == 0, ran.err
    assert (counted["read"], counted["decode"], counted["encode"]) == (1, 1, 0)


@pytest.mark.parametrize("args", WRITES, ids=" ".join)
@pytest.mark.parametrize("named", ["--config", "--file"])
def test_every_write_reads_and_decodes_the_file_once_and_encodes_once(
    tmp_path: Path, peerstore: Run, counted: Counter[str], args: tuple[str, ...], named: str
) -> None:
    node = write_node(tmp_path)
    _file(node)
    (tmp_path / "given.json").write_text(
        json.dumps([{"addr": "192.0.2.60:7447", "source": "Gossip", "failures": 0}])
    )
    key = tmp_path / "new.key"
    key.write_bytes(bytes(range(32, 64)))
    key.chmod(0o600)
    if args[0] == "seal":  # a hand edit, for seal to repair
        node.peers.write_bytes(node.peers.read_bytes().replace(b"203.0.113.1", b"203.0.113.2"))
    counted.clear()
    by = node.args if named == "--config" else ("--file", str(node.peers))
    args = tuple(str(tmp_path / a) if a in ("given.json", "new.key") else a for a in args)

    ran = peerstore(*args, *by)

    assert ran.status == 0, ran.err
    assert (counted["read"], counted["decode"], counted["encode"]) == (1, 1, 1)


def test_an_export_as_a_peer_file_decodes_once_and_encodes_once(
    tmp_path: Path, peerstore: Run, counted: Counter[str]
) -> None:
    node = write_node(tmp_path)
    _file(node)
    counted.clear()

    assert peerstore("export", "--format", "toml", *node.args).status == 0
    assert (counted["read"], counted["decode"], counted["encode"]) == (1, 1, 1)


def test_a_node_reads_decodes_once_at_start_and_encodes_once_a_save(
    path: Path, counted: Counter[str]
) -> None:
    clock = FakeClock()
    with PersistentPeerStore.open(path=path, realm="example", clock=clock) as book:
        book.store.record_connected("192.0.2.10:7447")
        assert book.save()
    counted.clear()

    with PersistentPeerStore.open(path=path, realm="example", clock=clock) as book:
        assert (counted["read"], counted["decode"]) == (1, 1)
        book.store.record_connected("192.0.2.11:7447")
        assert book.save()
        assert counted["encode"] == 1


# -- a save never crashes the node ---------------------------------------------------------------


def test_a_save_that_cannot_stretch_its_passphrase_keeps_the_peers_and_tries_again(
    path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """scrypt needs 32 MiB: where it cannot have them, a save fails like a full disk, logged
    once, the file untouched, the peers kept in memory for the next save."""
    clock = FakeClock()
    key = key_from_bytes(b"a passphrase long enough\n", "key_file test.key")
    real_derive = Key.derive

    def out_of_memory(self: Key, kdf: object) -> bytes:
        raise KeyUnusableError(f"{self.source}: scrypt cannot stretch the passphrase here ()")

    book = PersistentPeerStore.open(
        path=path,
        realm="example",
        clock=clock,
        keys=Sealing.with_key(key),
    )
    book.store.record_connected("192.0.2.10:7447")
    monkeypatch.setattr(Key, "derive", out_of_memory)
    with caplog.at_level(logging.ERROR):
        assert not book.save()
        clock.advance(120)
        assert not book.tick()  # the same streak: said once
    assert not path.exists()
    assert not list(path.parent.glob("*.tmp"))
    failures = [r for r in caplog.records if "cannot save peer file" in r.getMessage()]
    assert len(failures) == 1
    assert "scrypt cannot stretch the passphrase here" in failures[0].getMessage()

    monkeypatch.setattr(Key, "derive", real_derive)
    clock.advance(120)
    assert book.tick()
    book.close()
    again = PersistentPeerStore.open(
        path=path, realm="example", clock=clock, keys=Sealing.with_key(key)
    )
    assert [e.addr for e in again.store.entries()] == ["192.0.2.10:7447"]
    again.close()
