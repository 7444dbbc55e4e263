"""Where a simulated network keeps its nodes' files when told nowhere: in memory when it fits."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from hostsim.sim import scratch
from hostsim.sim.scratch import scratch_directory


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
