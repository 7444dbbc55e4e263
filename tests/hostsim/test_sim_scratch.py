"""Where a simulated network keeps its nodes' files when told nowhere: in memory when it fits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hostsim.sim import scratch
from hostsim.sim.scratch import scratch_directory
from tests.support.paths import ROOT


@pytest.fixture
def memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory standing in for the memory-backed file system."""
    where = tmp_path / "shm"
    where.mkdir()
    monkeypatch.setattr(scratch, "MEMORY_DIR", where)
    return where


def test_the_files_go_to_memory_when_there_is_room_and_are_removed_after(memory: Path) -> None:
    with scratch_directory("hostsim-sim-", 10, environ={}) as tmp:
        assert Path(tmp).parent == memory
        assert Path(tmp).name.startswith("hostsim-sim-")
        (Path(tmp) / "node-0001").mkdir()
    assert list(memory.iterdir()) == []


def test_a_network_too_large_for_the_memory_file_system_goes_to_the_temporary_directory(
    memory: Path,
) -> None:
    with scratch_directory("hostsim-sim-", 10**15, environ={}) as tmp:
        assert Path(tmp).parent == Path(tempfile.gettempdir())


def test_tmpdir_set_says_where_the_files_go(memory: Path) -> None:
    with scratch_directory("hostsim-sim-", 10, environ={"TMPDIR": "/somewhere"}) as tmp:
        assert Path(tmp).parent == Path(tempfile.gettempdir())


def test_without_a_memory_file_system_the_files_go_to_the_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scratch, "MEMORY_DIR", tmp_path / "none")
    with scratch_directory("hostsim-sim-", 10, environ={}) as tmp:
        assert Path(tmp).parent == Path(tempfile.gettempdir())


def test_a_run_ended_by_sigterm_removes_its_nodes_files_first(tmp_path: Path) -> None:
    """Files on a memory-backed file system would hold memory until the machine restarts."""
    env = dict(os.environ, TMPDIR=str(tmp_path))  # the run's files where the test can see them
    scenario = ROOT / "benchmarks" / "bench_sim.toml"  # 1,008 nodes for an hour: long enough
    with subprocess.Popen(
        [sys.executable, "-m", "hostsim", "sim", str(scenario), "--seed", "1"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as run:
        try:
            deadline = time.monotonic() + 60
            while not list(tmp_path.glob("hostsim-sim-*/*")):
                assert run.poll() is None, run.communicate(timeout=30)[1]
                assert time.monotonic() < deadline, "the run wrote no node's directory in 60 s"
                time.sleep(0.05)
            run.send_signal(signal.SIGTERM)
            assert run.wait(timeout=60) == 128 + signal.SIGTERM
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(timeout=30)
    assert list(tmp_path.glob("hostsim-sim-*")) == []
