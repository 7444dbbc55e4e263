"""TheNodes' own ``[network.persistence] path``: a ``.json`` path is TheNodes' peer store.

TheNodes' example config carries ``path = "data/example-app/peers.json"``, TheNodes' own JSON
store, which TheNodes reads and writes relative to its working directory. With that line the
plugin keeps its TOML file at its default, writes nothing at that path (nor under a doubled
directory), and at a first start with no TOML file imports the ``peers.json`` once, with the
proof mapping. The ``peers.json`` files under ``fixtures/`` were written by the real TheNodes
0.2.0 and 0.4.0 binaries (``tests/support/thenodes_interop_driver.py``, scenario ``peers``):
``thenodes-*-peers.json`` by a node that connected to its seed, ``thenodes-*-reloaded-peers.json``
by a node that loaded an exported file and saved it again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import tomli_w

from hostsim.clock import VirtualClock
from hostsim.host import PluginHost
from tests.support.command import Run, write_node
from tests.support.hosts import host_config
from thenodes_peerstore.config import PersistenceConfig, locate

FIXTURES = Path(__file__).parent / "fixtures"
T = TypeVar("T")
VERSIONS = ("0.2.0", "0.4.0")
STATE_DIR = "data/example-app"
THENODES_PATH = "data/example-app/peers.json"  # as TheNodes' config/example.toml has it


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory, as TheNodes runs in it: its relative paths start here."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def example_node(where: Path, **persistence: Any) -> Path:
    """A node of TheNodes' example layout, whose ``path`` names TheNodes' own store."""
    config = host_config(path=THENODES_PATH, **persistence)
    config["node"]["state_dir"] = STATE_DIR
    path = where / "node.toml"
    path.write_text(tomli_w.dumps(config))
    return path


def thenodes_written(version: str, name: str = "peers") -> dict[str, Any]:
    (record,) = json.loads((FIXTURES / f"thenodes-{version}-{name}.json").read_text())
    assert isinstance(record, dict)
    return record


def host_at(config: Path, t: int) -> PluginHost:
    return PluginHost.from_file(config, clock=VirtualClock(t))


def plan_of(host: PluginHost) -> list[str]:
    return [d.addr for d in host.start() if d.origin == "peerstore"]


def imports(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "TheNodes' peer store" in r.getMessage()]


def test_a_json_path_writes_nothing_there_nor_under_a_doubled_directory(
    in_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host = host_at(example_node(in_tmp), 1_796_000_000)
    with caplog.at_level(logging.INFO):
        host.start()
        host.connect("192.0.2.10:7447", node_id="node-b")
        host.advance(120)
        host.shutdown()
        host.start()
        host.shutdown()

    assert not (in_tmp / THENODES_PATH).exists()
    assert not (in_tmp / STATE_DIR / "data").exists()
    assert not list(in_tmp.rglob("*.json"))
    toml = in_tmp / STATE_DIR / "plugins" / "peerstore" / "example.toml"
    assert '"192.0.2.10:7447"' in toml.read_text()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    said = [w for w in warnings if "names TheNodes' own peer store" in w]
    assert len(said) == 1  # once, however many starts
    assert str(toml) in said[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_first_start_imports_the_peers_json_thenodes_wrote_and_plans_its_proven_peers(
    in_tmp: Path, caplog: pytest.LogCaptureFixture, version: str
) -> None:
    record = thenodes_written(version)
    given = in_tmp / THENODES_PATH
    given.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / f"thenodes-{version}-peers.json", given)
    before = given.read_bytes(), given.stat().st_mtime_ns
    host = host_at(example_node(in_tmp), record["last_success_epoch"] + 3600)

    with caplog.at_level(logging.INFO):
        first = plan_of(host)
    host.shutdown()

    assert first == [record["addr"]]  # TheNodes connected to it: proven
    (said,) = imports(caplog)
    assert f"imported 1 of 1 records from TheNodes' peer store {given}, 1 of them proven" in said
    caplog.clear()

    with caplog.at_level(logging.INFO):
        second = plan_of(host)
    host.shutdown()

    assert second == [record["addr"]]  # from the plugin's own file now
    assert imports(caplog) == []
    assert (given.read_bytes(), given.stat().st_mtime_ns) == before


@pytest.mark.parametrize("version", VERSIONS)
def test_a_peers_json_thenodes_reloaded_imports_unproven_peers_and_says_why(
    in_tmp: Path, caplog: pytest.LogCaptureFixture, version: str
) -> None:
    """TheNodes loads a record's address and source only: the file it saves next holds every
    reloaded record with ``last_success_epoch`` null and no ``node_id``. Its proof is lost."""
    record = thenodes_written(version, "reloaded-peers")
    assert (record["source"], record["last_success_epoch"]) == ("Handshake", None)
    assert "node_id" not in record
    given = in_tmp / THENODES_PATH
    given.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / f"thenodes-{version}-reloaded-peers.json", given)
    host = host_at(example_node(in_tmp), 1_796_000_000)

    with caplog.at_level(logging.INFO):
        assert plan_of(host) == []
    host.shutdown()

    (said, why) = imports(caplog)[:1] + [
        r.getMessage() for r in caplog.records if "drops the proof" in r.getMessage()
    ]
    assert "imported 1 of 1 records" in said
    assert "0 of them proven" in said
    assert "TheNodes drops the proof of every record it reloads" in why


def test_the_command_finds_the_file_as_the_plugin_does_and_points_to_the_import(
    in_tmp: Path, peerstore: Run
) -> None:
    config = example_node(in_tmp)
    given = in_tmp / THENODES_PATH
    given.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "thenodes-0.4.0-peers.json", given)
    toml = in_tmp / STATE_DIR / "plugins" / "peerstore" / "example.toml"

    ran = peerstore("list", "-c", config)

    assert ran.status == 2
    assert f"no peer file at {toml} (--config {config})" in ran.err
    assert f"`peerstore import --thenodes {given} --config {config}` brings its peers in" in ran.err
    host = host_at(config, thenodes_written("0.4.0")["last_success_epoch"] + 60)
    host.start()
    host.shutdown()
    listed = json.loads(peerstore("list", "--json", "-c", config).out)
    assert [p["addr"] for p in listed if p["proven"]] == [thenodes_written("0.4.0")["addr"]]


def test_list_of_a_thenodes_data_dir_with_its_peers_json_points_to_the_import(
    tmp_path: Path, peerstore: Run
) -> None:
    """TheNodes keeps ``{state_dir}/peers.json`` when ``path`` is not set: a node of that
    directory with no peer file yet is told how to bring those peers in."""
    config = host_config()
    config["node"]["state_dir"] = str(tmp_path / "state")
    (tmp_path / "node.toml").write_text(tomli_w.dumps(config))
    (tmp_path / "state").mkdir()
    without = peerstore("list", "-c", tmp_path / "node.toml")
    shutil.copy(FIXTURES / "thenodes-0.4.0-peers.json", tmp_path / "state" / "peers.json")

    ran = peerstore("list", "-c", tmp_path / "node.toml")

    assert "import --thenodes" not in without.err
    assert ran.status == 2
    assert ran.err.startswith("peerstore: error: no peer file at")
    given = tmp_path / "state" / "peers.json"
    assert f"TheNodes' own peer store is {given}: `peerstore import --thenodes {given}" in ran.err


STATE = Path("/srv/node/state")


@pytest.mark.parametrize(
    ("path", "ours", "legacy", "thenodes"),
    [
        (None, "plugins/peerstore/example.toml", "peers/example.toml", None),
        ("peers.toml", "peers.example.toml", None, None),
        ("/var/lib/{realm}.toml", "/var/lib/example.toml", None, None),
        (THENODES_PATH, "plugins/peerstore/example.toml", "peers/example.toml", THENODES_PATH),
        (
            "/var/lib/peers.json",
            "plugins/peerstore/example.toml",
            "peers/example.toml",
            "/var/lib/peers.json",
        ),
        ("PEERS.JSON", "plugins/peerstore/example.toml", "peers/example.toml", "PEERS.JSON"),
    ],
)
def test_a_json_path_is_read_where_thenodes_reads_it_and_any_other_is_ours_under_state_dir(
    in_tmp: Path, path: str | None, ours: str, legacy: str | None, thenodes: str | None
) -> None:
    config = PersistenceConfig(enabled=True) if path is None else PersistenceConfig(path=path)

    where = locate(config, STATE, "example", path_set=path is not None)

    assert where.path == STATE / ours
    assert where.legacy == (None if legacy is None else STATE / legacy)
    assert where.thenodes == (None if thenodes is None else in_tmp / thenodes)  # / keeps absolute


def finished_within(seconds: float, work: Callable[[], T]) -> T:
    """``work()``'s result; fail, not hang, when it has not returned within ``seconds`` (a
    daemon thread left blocked does not keep the test process from exiting)."""
    results: list[T] = []
    thread = threading.Thread(target=lambda: results.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert results, f"still running after {seconds} s"
    return results[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_at_thenodes_path_is_refused_and_the_node_starts_from_its_seeds(
    in_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    given = in_tmp / THENODES_PATH
    given.parent.mkdir(parents=True)
    os.mkfifo(given)  # no writer: an open that blocks would never return
    host = host_at(example_node(in_tmp), 1_796_000_000)

    with caplog.at_level(logging.INFO):
        plan = finished_within(30, lambda: plan_of(host))
    host.shutdown()

    assert plan == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"TheNodes peer file {given}: not a regular file; nothing imported from it" in warnings


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize(
    ("option", "named"), [("--thenodes", "TheNodes peer file"), ("--json", "export")]
)
def test_import_of_a_fifo_says_it_is_not_a_regular_file(
    tmp_path: Path, peerstore: Run, option: str, named: str
) -> None:
    node = write_node(tmp_path / "node")
    given = tmp_path / "given.json"
    os.mkfifo(given)

    ran = finished_within(30, lambda: peerstore("import", option, given, *node.args))

    assert ran.status != 0
    assert f"{named} {given}: not a regular file" in ran.err
    assert not node.peers.exists()
