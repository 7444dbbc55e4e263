"""The experiment's two arms, each a host-config overlay merged into every node's config.

- :data:`STORE`: the ``peerstore`` plugin loaded, ``[network.persistence] enabled = true``;
- :data:`SEEDS_ONLY`: no plugin, ``[network.persistence] enabled = false``: a restarted node
  knows its seeds and nothing else.

Also what the experiment reads of the plugin from outside: the origin of its dials, and where
it keeps a node's peer file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from hostsim.convert import freeze
from hostsim.sim.scenario import SimScenario

__all__ = [
    "ARMS",
    "PLUGIN",
    "SEEDS_ONLY",
    "STORE",
    "STORED_ORIGIN",
    "Arm",
    "arm_of",
    "peer_files",
]

PLUGIN = "peerstore"
"""The plugin under test, by its entry point name."""
STORED_ORIGIN = PLUGIN
"""The origin of the dials the plugin plans (the host names a plugin's dials after it)."""


@attrs.frozen
class Arm:
    """One arm of the experiment: its name (files, JSON), its label (tables, progress) and
    the host-config overlay that makes a node run it."""

    name: str
    label: str
    overlay: Mapping[str, Any] = attrs.field(converter=freeze, hash=False)
    keeps_peers: bool

    def on(self, scenario: SimScenario) -> SimScenario:
        """``scenario`` with this arm's overlay merged into its nodes' host config."""
        return scenario.with_host_config(self.overlay)


STORE = Arm(
    "store",
    "peer store",
    {"plugins": {"enabled": [PLUGIN]}, "network": {"persistence": {"enabled": True}}},
    keeps_peers=True,
)
SEEDS_ONLY = Arm(
    "seeds-only",
    "seeds only",
    {"plugins": {"enabled": []}, "network": {"persistence": {"enabled": False}}},
    keeps_peers=False,
)
ARMS = (STORE, SEEDS_ONLY)


def arm_of(scenario: SimScenario) -> Arm:
    """The arm a scenario's own host config runs (its ``[network.persistence] enabled``)."""
    return STORE if scenario.persistence_enabled else SEEDS_ONLY


def peer_files(state_dir: Path) -> list[Path]:
    """The peer files the plugin keeps in a node's state directory (by its default path)."""
    return sorted((state_dir / "plugins" / PLUGIN).glob("*.toml"))
