"""The errors hostsim raises. Each message names the thing that was wrong."""

from __future__ import annotations


class HostsimError(Exception):
    """Base class of every error hostsim raises on purpose."""


class HostConfigError(HostsimError, ValueError):
    """The host config file is unreadable TOML or holds a bad key or value."""


class PluginError(HostsimError):
    """A plugin could not be found, checked against its manifest, loaded or registered."""


class HostStateError(HostsimError, RuntimeError):
    """A lifecycle method was called in the wrong state (not running, not connected...)."""


class HostStartupError(HostsimError):
    """A plugin raised in ``on_startup``: the node did not start."""


class ScenarioError(HostsimError, ValueError):
    """A scenario file is invalid, or one of its events could not be played."""


class NodeIdentityError(HostsimError):
    """The node's id file holds no valid id, cannot be read, or a new id cannot be kept."""
