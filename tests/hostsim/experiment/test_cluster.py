"""`hostsim cluster` end to end: a tiny cluster of real processes on loopback.

The phases watch the restarted nodes for a few seconds instead of 60, so the test runs in CI
in well under half a minute; every process is stopped by its pid, checked in ``finally``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from hostsim import cli
from hostsim.experiment.cluster import ClusterResult, run_cluster
from hostsim.live.processes import NodeProcess

pytestmark = pytest.mark.slow

WINDOW = 6.0
"""Seconds a phase watches the restarted nodes in the test."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True  # NodeProcess reaps what it stops, so a stopped process is gone


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[NodeProcess]:
    """Every NodeProcess the experiment starts, to check afterwards that all are gone."""
    processes: list[NodeProcess] = []
    original = NodeProcess.__init__

    def tracking(self: NodeProcess, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        processes.append(self)

    monkeypatch.setattr(NodeProcess, "__init__", tracking)
    return processes


def test_a_tiny_cluster_rejoins_from_stored_peers_with_its_seed_down_and_not_without(
    tmp_path: Path,
    started: list[NodeProcess],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    results: list[ClusterResult] = []

    def short(workdir: Path, **kwargs: Any) -> ClusterResult:
        results.append(run_cluster(workdir, **{**kwargs, "phase_secs": WINDOW}))
        return results[-1]

    monkeypatch.setattr(cli, "run_cluster", short)
    out = tmp_path / "cluster.json"
    args = ["cluster", "--nodes", "3", "--seeds", "1", "--json", str(out)]
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            status = cli.main([*args, "--state-dir", str(tmp_path / "run")])
    finally:
        for process in started:
            process.stop()
    # Every process it started was stopped by the command itself.
    assert len(started) == 2 * (1 + 3 + 3 + 3)  # per arm: the seed, the nodes, two restarts
    assert not [p.pid for p in started if _alive(p.pid)]

    text = printed.getvalue()
    assert status == 0, text
    # On a stderr that is no terminal: plain lines naming each phase, no line redrawn in place.
    err = capsys.readouterr().err
    assert "\r" not in err
    assert "\x1b" not in err
    assert all(line.startswith("cluster ") for line in err.splitlines()), err
    assert "seeds-up" in err
    assert "seeds-down" in err
    assert "== seeds-up: every node killed (SIGKILL) and restarted, seeds up" in text
    assert "== seeds-down: seeds stopped, every node killed (SIGKILL) and restarted" in text
    assert text.count("peer store    seeds only") == 2
    assert "[holds] seeds down: >= 95% rejoin within 60 s with the store" in text
    assert "[holds] every node's peer file loaded intact after each SIGKILL: 6 of 6" in text

    [result] = results
    down_store = result.store["seeds-down"]
    down_seeds = result.seeds_only["seeds-down"]
    assert len(down_store.records) == len(down_seeds.records) == 3
    assert all(r.first_connection is not None for r in down_store.records)
    assert all(r.first_connection is None for r in down_seeds.records)
    # The store's plan named the other nodes, and dialling them is what reconnected them.
    assert all(r.plan for r in down_store.records)
    assert sum(r.dials["peerstore"][1] for r in down_store.records) > 0
    # Every SIGKILL left a file that loaded intact, with the other peers in it.
    loaded = [n for phase in result.store.values() for n in phase.loaded]
    assert all(n is not None and n >= 2 for n in loaded)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [p["phase"] for p in data["store"]] == ["seeds-up", "seeds-down"]
    assert [t["holds"] for t in data["targets"]] == [True, True]


def test_a_cluster_that_cannot_start_says_why_and_leaves_no_process(
    tmp_path: Path, started: list[NodeProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "node-00.toml").mkdir()  # the config cannot be written
    status = cli.main(["cluster", "--nodes", "2", "--seeds", "1", "--state-dir", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err
    assert "hostsim: error:" in err
    assert "Traceback" not in err
    assert not [p.pid for p in started if p.proc.poll() is None]
