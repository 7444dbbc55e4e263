"""Test doubles for driving a host without installed plugins.

- :class:`RecordingPlugin` implements every hook and records each call's keyword arguments.
- :class:`FakeDistribution` and :class:`FakeEntryPoint` stand in for installed distributions and
  their entry points, so the manifest checks of :func:`hostsim.plugins.get_plugin_manager` can be
  exercised; :func:`fake_entry_point` builds one whose manifest matches the plugin class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import pluggy
import tomli_w

from hostsim.hookspecs import PROJECT_NAME, HostView, PeerView
from hostsim.plugins import ENTRY_POINT_GROUP, MANIFEST_PATH, implemented_hooks

__all__ = [
    "FakeDistribution",
    "FakeEntryPoint",
    "HookCall",
    "RecordingPlugin",
    "fake_entry_point",
    "hookimpl",
    "manifest_text",
]

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""The marker plugins use for their hook implementations."""


@attrs.frozen
class HookCall:
    """One hook call a :class:`RecordingPlugin` received."""

    plugin: str
    hook: str
    kwargs: Mapping[str, Any]


class RecordingPlugin:
    """A plugin that implements every hook and appends each call to ``journal``.

    :param label: Names this instance in the journal.
    :param journal: Where calls go; share one list between instances to follow restarts.
    :param dial_first: What ``on_startup`` returns.
    :param raise_in: Hooks that raise ``RuntimeError`` after recording the call.
    """

    def __init__(
        self,
        label: str = "recorder",
        *,
        journal: list[HookCall] | None = None,
        dial_first: Sequence[str] = (),
        raise_in: Iterable[str] = (),
    ) -> None:
        self.label = label
        self.journal: list[HookCall] = [] if journal is None else journal
        self.dial_first = list(dial_first)
        self.raise_in = frozenset(raise_in)

    def hooks(self, hook: str) -> list[HookCall]:
        """The recorded calls of one hook."""
        return [call for call in self.journal if call.hook == hook]

    def _record(self, hook: str, **kwargs: Any) -> None:
        self.journal.append(HookCall(self.label, hook, kwargs))
        if hook in self.raise_in:
            raise RuntimeError(f"{self.label}: {hook} failed on purpose")

    @hookimpl
    def on_startup(self, host: HostView) -> list[str]:
        """Record the call; return :attr:`dial_first`."""
        self._record("on_startup", host=host)
        return list(self.dial_first)

    @hookimpl
    def on_bootstrap(self, host: HostView, seeds: list[str]) -> None:
        """Record the call."""
        self._record("on_bootstrap", host=host, seeds=seeds)

    @hookimpl
    def on_connect(self, host: HostView, peer: PeerView) -> None:
        """Record the call."""
        self._record("on_connect", host=host, peer=peer)

    @hookimpl
    def on_disconnect(self, host: HostView, peer: PeerView, reason: str) -> None:
        """Record the call."""
        self._record("on_disconnect", host=host, peer=peer, reason=reason)

    @hookimpl
    def on_peer_list(self, host: HostView, sender: PeerView, peers: list[str]) -> None:
        """Record the call."""
        self._record("on_peer_list", host=host, sender=sender, peers=peers)

    @hookimpl
    def on_dial_failed(self, host: HostView, addr: str, error: str) -> None:
        """Record the call."""
        self._record("on_dial_failed", host=host, addr=addr, error=error)

    @hookimpl
    def on_tick(self, host: HostView) -> None:
        """Record the call."""
        self._record("on_tick", host=host)

    @hookimpl
    def on_shutdown(self, host: HostView) -> None:
        """Record the call."""
        self._record("on_shutdown", host=host)


@attrs.frozen
class FakeDistribution:
    """An installed distribution: a version and some metadata files."""

    version: str
    files: Mapping[str, str] = attrs.field(factory=dict)

    def read_text(self, filename: str) -> str | None:
        """A metadata file's text, or None."""
        return self.files.get(filename)


@attrs.frozen
class FakeEntryPoint:
    """An entry point whose :meth:`load` returns ``target``."""

    name: str
    value: str
    dist: FakeDistribution | None
    target: object = attrs.field(repr=False)
    group: str = ENTRY_POINT_GROUP

    def load(self) -> Any:
        """Return ``target``, as importing ``value`` would."""
        return self.target


def manifest_text(
    name: str,
    version: str,
    entry_point: str,
    hooks: Iterable[str],
    *,
    summary: str = "A test plugin.",
    config_section: str | None = None,
    config_defaults: Mapping[str, Any] | None = None,
) -> str:
    """A ``plugin.toml`` with the given values."""
    document: dict[str, Any] = {
        "plugin": {
            "name": name,
            "version": version,
            "summary": summary,
            "entry_point": entry_point,
            "hooks": list(hooks),
        }
    }
    if config_section is not None or config_defaults is not None:
        config: dict[str, Any] = {}
        if config_section is not None:
            config["section"] = config_section
        if config_defaults is not None:
            config["defaults"] = dict(config_defaults)
        document["config"] = config
    return tomli_w.dumps(document)


def fake_entry_point(
    name: str,
    plugin_class: type,
    *,
    version: str = "1.0.0",
    manifest: str | None = None,
) -> FakeEntryPoint:
    """An entry point for ``plugin_class``, with a manifest that matches it unless given."""
    value = f"{plugin_class.__module__}:{plugin_class.__qualname__}"
    if manifest is None:
        hooks = implemented_hooks(pluggy.PluginManager(PROJECT_NAME), plugin_class)
        manifest = manifest_text(name, version, value, sorted(hooks))
    dist = FakeDistribution(version, {MANIFEST_PATH: manifest})
    return FakeEntryPoint(name=name, value=value, dist=dist, target=plugin_class)
