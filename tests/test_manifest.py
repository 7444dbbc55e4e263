"""plugin.toml, pyproject.toml, the installed distribution and the code say the same thing."""

from __future__ import annotations

import tomllib
from importlib.metadata import distribution

import attrs
import pluggy

import thenodes_peerstore
from hostsim import hookspecs
from hostsim.plugins import PluginManifest, implemented_hooks, installed_entry_points
from tests.support.paths import ROOT
from thenodes_peerstore.config import SECTION, PersistenceConfig
from thenodes_peerstore.plugin import PeerStorePlugin

MANIFEST_TEXT = (ROOT / "plugin.toml").read_text()
MANIFEST = PluginManifest.from_toml(MANIFEST_TEXT, source="plugin.toml")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_manifest_matches_pyproject() -> None:
    project = PYPROJECT["project"]
    assert MANIFEST.version == project["version"]
    assert project["entry-points"]["thenodes"] == {MANIFEST.name: MANIFEST.entry_point}


def test_manifest_hooks_are_exactly_the_hooks_the_plugin_implements() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    assert set(implemented_hooks(pm, PeerStorePlugin())) == set(MANIFEST.hooks)


def test_manifest_config_section_and_defaults_match_the_code() -> None:
    assert MANIFEST.config_section == SECTION
    assert dict(MANIFEST.config_defaults) == attrs.asdict(PersistenceConfig())


def test_installed_distribution_ships_this_manifest_and_version() -> None:
    dist = distribution("thenodes-peerstore")
    assert dist.version == MANIFEST.version == thenodes_peerstore.__version__
    installed = dist.read_text("extra_metadata/plugin.toml")
    assert installed is not None, "reinstall the project: its manifest is not in .dist-info"
    assert tomllib.loads(installed) == tomllib.loads(MANIFEST_TEXT)


def test_plugin_is_found_through_the_installed_entry_point() -> None:
    (ep,) = [ep for ep in installed_entry_points() if ep.name == MANIFEST.name]
    assert ep.value == MANIFEST.entry_point
    assert ep.load() is PeerStorePlugin
