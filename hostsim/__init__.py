"""hostsim: a TheNodes-style node host, on a virtual clock and network or on real TCP."""

from hostsim.clock import Clock, VirtualClock
from hostsim.config import HostConfig, RealmInfo
from hostsim.errors import (
    HostConfigError,
    HostsimError,
    HostStartupError,
    HostStateError,
    PluginError,
    ScenarioError,
)
from hostsim.host import Dial, NodeView, Peer, PluginHost
from hostsim.plugins import PluginManifest, get_plugin_manager, read_manifest
from hostsim.script import RunResult, Scenario, TimelineRecord, load_scenario, run_scenario

__all__ = [
    "Clock",
    "Dial",
    "HostConfig",
    "HostConfigError",
    "HostStartupError",
    "HostStateError",
    "HostsimError",
    "NodeView",
    "Peer",
    "PluginError",
    "PluginHost",
    "PluginManifest",
    "RealmInfo",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "TimelineRecord",
    "VirtualClock",
    "get_plugin_manager",
    "load_scenario",
    "read_manifest",
    "run_scenario",
]
