"""Fixtures shared by the tests; the tools they share are in ``tests/support/``."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from hypothesis import settings

from hostsim.clock import VirtualClock
from tests.support.clocks import START, FakeClock
from tests.support.command import Node, Run, run_peerstore, write_node

# CI runs every property on the same examples, so a red run is reproducible by anyone:
# `HYPOTHESIS_PROFILE=ci python -m pytest`. Locally the default profile explores new examples
# on each run (and `HYPOTHESIS_PROFILE=explore` many more), which is how a rare failure is found.
# No deadline in CI: a shared machine's pauses are not the code's; speed is for benchmarks/.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock, to inject wherever the code under test reads the time."""
    return FakeClock()


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """hostsim's clock, at the tests' start, for a host and the plugins it runs."""
    return VirtualClock(START)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where a store keeps a realm's file, in a state directory of its own."""
    return tmp_path / "state" / "peers" / "example.toml"


@pytest.fixture
def peerstore(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run the ``peerstore`` command in this process; its exit status and what it printed."""
    return functools.partial(run_peerstore, capsys)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    """A node's config, its state directory not made yet."""
    return write_node(tmp_path)
