"""Loading plugins the way a host does: specs, entry points, the manifest check, the enable list.

A plugin is installed under the ``thenodes`` entry point group and ships a manifest,
``plugin.toml``, in its distribution's metadata (``extra_metadata/plugin.toml``). The host reads
and checks the manifest *before* importing any plugin code, then loads the entry point (a class),
makes one instance per plugin manager (that is, per node), and checks that the hooks the instance
implements are exactly the ones its manifest declares.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import logging
import tomllib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs
import pluggy

from hostsim import hookspecs
from hostsim.config import HostConfig
from hostsim.convert import freeze, show
from hostsim.errors import PluginError

logger = logging.getLogger(__name__)

__all__ = [
    "ENTRY_POINT_GROUP",
    "MANIFEST_PATH",
    "DistributionLike",
    "EntryPointLike",
    "PluginError",
    "PluginManifest",
    "get_plugin_manager",
    "implemented_hooks",
    "installed_entry_points",
    "loaded_once",
    "plugins_turned_on",
    "read_manifest",
    "spec_hook_names",
]

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
"""The entry point group plugins are installed under."""

MANIFEST_PATH = "extra_metadata/plugin.toml"
"""Where a plugin's manifest lives inside its distribution's metadata directory."""

_NO_WRAPPERS = "hook wrappers are not supported; hooks are called plugin by plugin"
_PLUGIN_KEYS = ("name", "version", "summary", "entry_point", "hooks")
_CONFIG_KEYS = ("section", "defaults")


class DistributionLike(Protocol):
    """The part of :class:`importlib.metadata.Distribution` the loader uses."""

    @property
    def version(self) -> str:
        """The distribution's version."""

    def read_text(self, filename: str) -> str | None:
        """A metadata file's text, or None when the distribution has no such file."""


class EntryPointLike(Protocol):
    """The part of :class:`importlib.metadata.EntryPoint` the loader uses."""

    @property
    def name(self) -> str:
        """The entry point's name: the plugin's name."""

    @property
    def value(self) -> str:
        """The object reference, ``"module:attr"``."""

    @property
    def group(self) -> str:
        """The entry point group."""

    @property
    def dist(self) -> DistributionLike | None:
        """The distribution that provides the entry point."""

    def load(self) -> Any:
        """Import and return the referenced object."""


@attrs.frozen
class PluginManifest:
    """A plugin's ``plugin.toml``: what a host knows about a plugin before importing it."""

    name: str
    version: str
    summary: str
    entry_point: str
    hooks: tuple[str, ...]
    config_section: str | None = None
    config_defaults: Mapping[str, Any] = attrs.field(factory=lambda: freeze({}), hash=False)

    @classmethod
    def from_toml(cls, text: str, *, source: str) -> PluginManifest:
        """Parse and check a manifest; ``source`` names it in error messages.

        :raises PluginError: the text is not valid TOML or a key or value is wrong.
        """
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PluginError(f"{source}: invalid TOML: {exc}") from None
        return _ManifestParser(source).parse(data)


@functools.cache
def spec_hook_names() -> frozenset[str]:
    """The names of every hook in :mod:`hostsim.hookspecs`."""
    probe = pluggy.PluginManager(ENTRY_POINT_GROUP)
    return frozenset(
        name
        for name, _ in inspect.getmembers(hookspecs)
        if probe.parse_hookspec_opts(hookspecs, name) is not None
    )


def installed_entry_points() -> tuple[EntryPointLike, ...]:
    """The entry points installed in the ``thenodes`` group."""
    return tuple(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def loaded_once(entry_points: Iterable[EntryPointLike]) -> tuple[EntryPointLike, ...]:
    """``entry_points`` with their metadata read once and their objects imported once.

    A process that starts many nodes (a simulated network, a test suite) pays for reading the
    manifests, the versions and the imports at the first start only; every start still gets
    new plugin instances, checked against their manifests. A read or an import that fails is
    tried again at the next start.
    """
    return tuple(_LoadedOnce(ep) for ep in entry_points)


class _DistributionOnce:
    """A distribution whose version and metadata files are read at most once."""

    def __init__(self, dist: DistributionLike) -> None:
        self._dist = dist
        self._texts: dict[str, str | None] = {}

    @functools.cached_property
    def version(self) -> str:
        return self._dist.version

    def read_text(self, filename: str) -> str | None:
        if filename not in self._texts:
            self._texts[filename] = self._dist.read_text(filename)
        return self._texts[filename]


class _LoadedOnce:
    """An entry point that imports its object at most once."""

    def __init__(self, ep: EntryPointLike) -> None:
        self._ep = ep
        self.name = ep.name
        self.value = ep.value
        self.group = ep.group
        self.dist = None if ep.dist is None else _DistributionOnce(ep.dist)
        self._loaded: tuple[Any] | None = None

    def load(self) -> Any:
        if self._loaded is None:
            self._loaded = (self._ep.load(),)
        return self._loaded[0]


def read_manifest(ep: EntryPointLike) -> PluginManifest:
    """Read and parse the manifest of the distribution that provides ``ep``, without loading ``ep``.

    :raises PluginError: the manifest is missing, unreadable or invalid.
    """
    source = f"plugin {ep.name!r}: {MANIFEST_PATH}"
    if ep.dist is None:
        raise PluginError(f"{source}: the entry point has no distribution to read it from")
    try:
        text = ep.dist.read_text(MANIFEST_PATH)
    except (OSError, UnicodeDecodeError) as exc:
        raise PluginError(f"{source}: cannot read it: {exc}") from exc
    if text is None:
        raise PluginError(f"{source}: missing from the installed distribution")
    return _parsed_manifest(text, source)


@functools.lru_cache(maxsize=64)
def _parsed_manifest(text: str, source: str) -> PluginManifest:
    # A manifest is immutable: a process starting many nodes parses each text once.
    return PluginManifest.from_toml(text, source=source)


def implemented_hooks(pm: pluggy.PluginManager, plugin: object) -> dict[str, str]:
    """The hooks ``plugin`` implements, as hook name -> attribute name, the way ``pm`` finds them.

    :raises PluginError: the plugin declares a hook wrapper, which this host does not support.
    """
    hooks: dict[str, str] = {}
    for attr in dir(plugin):
        opts = pm.parse_hookimpl_opts(plugin, attr)
        if opts is None:
            continue
        if opts.get("wrapper") or opts.get("hookwrapper"):
            raise PluginError(f"{type(plugin).__name__}.{attr}: {_NO_WRAPPERS}")
        hooks[opts.get("specname") or attr] = attr
    return hooks


def get_plugin_manager(
    config: HostConfig,
    *,
    extra_plugins: Mapping[str, object] | None = None,
    entry_points: Iterable[EntryPointLike] | None = None,
    manager: Callable[[str], pluggy.PluginManager] = pluggy.PluginManager,
) -> pluggy.PluginManager:
    """A new plugin manager for one node, with the hook specs and the node's plugins registered.

    Plugins named in ``config.enabled_plugins`` are looked up among ``entry_points`` (default: the
    installed ``thenodes`` entry points), checked against their manifests, loaded, instantiated
    and registered under their entry point names, in the order the config lists them. Then
    ``extra_plugins`` (name -> ready-made instance, no manifest) are registered as given.
    ``manager`` makes the empty plugin manager from the project name (default: pluggy's own
    class; a process that starts many nodes may pass a subclass that reads each plugin class's
    hooks once).

    :raises PluginError: a plugin is not installed, its manifest is missing or does not match
        the plugin, or it cannot be loaded, instantiated or registered.
    """
    pm = manager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    extras = dict(extra_plugins or {})
    available = _index_entry_points(
        installed_entry_points() if entry_points is None else entry_points
    )
    claimed: set[str | None] = set()
    for name in config.enabled_plugins:
        if name in extras:
            raise PluginError(f"plugin {name!r} is both enabled in the config and given as extra")
        if name not in available:
            installed = ", ".join(sorted(available)) or "none"
            raise PluginError(
                f"plugin {name!r} is enabled in [plugins] enabled but not installed"
                f" (installed {ENTRY_POINT_GROUP!r} plugins: {installed})"
            )
        claimed.add(_instantiate(pm, available[name]).config_section)
    if not extras:
        _warn_of_unread_sections(config, claimed, available)
    for name, plugin in extras.items():
        _register(pm, name, plugin)
        _registered_hooks(pm, name, plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {pm.get_name(exc.plugin)!r}: {_one_line(exc)}") from exc
    return pm


def _index_entry_points(entry_points: Iterable[EntryPointLike]) -> dict[str, EntryPointLike]:
    index: dict[str, EntryPointLike] = {}
    for ep in entry_points:
        if ep.group != ENTRY_POINT_GROUP:
            continue
        if ep.name in index and index[ep.name].value != ep.value:
            raise PluginError(
                f"plugin {ep.name!r} is installed twice: {index[ep.name].value}"
                f" and {ep.value}; uninstall one"
            )
        index[ep.name] = ep
    return index


def _check_manifest(ep: EntryPointLike, manifest: PluginManifest) -> None:
    assert ep.dist is not None  # read_manifest() checked it
    source = f"plugin {ep.name!r}: {MANIFEST_PATH}"
    expected = {
        "name": (manifest.name, ep.name, "the entry point name"),
        "version": (manifest.version, ep.dist.version, "the installed version"),
        "entry_point": (manifest.entry_point, ep.value, "the entry point"),
    }
    for key, (declared, actual, what) in expected.items():
        if declared != actual:
            raise PluginError(
                f"{source}: [plugin] {key} = {show(declared)} does not match {what} {show(actual)}"
            )
    unknown = [hook for hook in manifest.hooks if hook not in spec_hook_names()]
    if unknown:
        raise PluginError(
            f"{source}: [plugin] hooks names hooks this host does not have: {', '.join(unknown)}"
            f" (known hooks: {', '.join(sorted(spec_hook_names()))})"
        )


_warned: set[tuple[str, tuple[str, ...]]] = set()
"""Sections already warned about in this process (a simulated network starts many nodes)."""


_sections: dict[tuple[str, str, str], str | None] = {}
"""Each installed plugin's config section, read once a process: a simulated network starts
many nodes from one set of plugins."""


def _section_of(ep: EntryPointLike) -> str | None:
    key = (ep.name, ep.value, "" if ep.dist is None else str(ep.dist.version))
    if key not in _sections:
        try:
            _sections[key] = read_manifest(ep).config_section
        except PluginError:
            _sections[key] = None  # a broken manifest of a plugin nobody asked for
    return _sections[key]


def _warn_of_unread_sections(
    config: HostConfig, claimed: set[str | None], available: Mapping[str, EntryPointLike]
) -> None:
    """Warn, once a process, of a table the config turns on (``enabled = true``) that an
    installed plugin reads but no loaded one does: leaving ``[plugins]`` out would otherwise
    turn that plugin off without a word."""
    readers: dict[str, list[str]] = {}
    for name, ep in available.items():
        if name in config.enabled_plugins:
            continue
        section = _section_of(ep)
        if section is not None and section not in claimed:
            readers.setdefault(section, []).append(name)
    for section, names in sorted(readers.items()):
        if not _turned_on(config.data, section):
            continue
        said = (section, tuple(sorted(names)))
        if said in _warned:
            continue
        _warned.add(said)
        logger.warning(
            "[%s] enabled = true, but no loaded plugin reads it, so it does nothing: installed"
            " plugin(s) %s read it; list them in [plugins] enabled",
            section,
            ", ".join(repr(n) for n in sorted(names)),
        )


def _turned_on(data: Mapping[str, Any], section: str) -> bool:
    """Whether the table ``section`` (``"network.persistence"``) of ``data`` has
    ``enabled = true``."""
    table: Any = data
    for key in section.split("."):
        table = table.get(key) if isinstance(table, Mapping) else None
    return isinstance(table, Mapping) and table.get("enabled") is True


def plugins_turned_on(
    data: Mapping[str, Any], entry_points: Iterable[EntryPointLike] | None = None
) -> tuple[str, ...]:
    """The plugins among ``entry_points`` (default: the installed ones) whose config table
    ``data``, a host config, turns on (``enabled = true``), by name: the ``[plugins] enabled``
    of a host config that hostsim writes for a node and that leaves it out."""
    available = _index_entry_points(
        installed_entry_points() if entry_points is None else entry_points
    )
    return tuple(
        name
        for name, ep in sorted(available.items())
        if (section := _section_of(ep)) is not None and _turned_on(data, section)
    )


def _instantiate(pm: pluggy.PluginManager, ep: EntryPointLike) -> PluginManifest:
    """Load, create and register the plugin of ``ep``, checked against its manifest; return
    the manifest."""
    manifest = read_manifest(ep)
    _check_manifest(ep, manifest)
    try:
        factory = ep.load()
    except Exception as exc:
        raise PluginError(
            f"plugin {ep.name!r}: cannot load {ep.value}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(factory, type):
        raise PluginError(
            f"plugin {ep.name!r}: {ep.value} is not a class (got {type(factory).__name__})"
        )
    try:
        plugin: object = factory()
    except Exception as exc:
        raise PluginError(
            f"plugin {ep.name!r}: cannot create {ep.value}(): {type(exc).__name__}: {exc}"
        ) from exc
    _register(pm, ep.name, plugin)
    implemented = _registered_hooks(pm, ep.name, plugin)
    declared = set(manifest.hooks)
    if implemented != declared:
        pm.unregister(plugin)
        raise PluginError(
            f"plugin {ep.name!r}: {MANIFEST_PATH} [plugin] hooks does not match {ep.value}: "
            + "; ".join(_difference(implemented, declared))
        )
    return manifest


def _registered_hooks(pm: pluggy.PluginManager, name: str, plugin: object) -> set[str]:
    """The hooks ``plugin`` was registered for, read off the registration rather than by
    inspecting the plugin a second time.

    :raises PluginError: the plugin declares a hook wrapper; it is unregistered again.
    """
    hooks = set()
    for caller in pm.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and (impl.wrapper or impl.hookwrapper):
                pm.unregister(plugin)
                raise PluginError(
                    f"plugin {name!r}: {type(plugin).__name__}.{impl.function.__name__}:"
                    f" {_NO_WRAPPERS}"
                )
        hooks.add(caller.name)
    return hooks


def _difference(implemented: set[str], declared: set[str]) -> list[str]:
    parts = []
    if missing := sorted(implemented - declared):
        parts.append(f"implemented but not declared: {', '.join(missing)}")
    if extra := sorted(declared - implemented):
        parts.append(f"declared but not implemented: {', '.join(extra)}")
    return parts


def _register(pm: pluggy.PluginManager, name: str, plugin: object) -> None:
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"plugin {name!r}: cannot register it: {_one_line(exc)}") from exc


def _one_line(exc: Exception) -> str:
    """pluggy's multi-line messages, on one line."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


@attrs.frozen
class _ManifestParser:
    source: str

    def parse(self, data: Mapping[str, Any]) -> PluginManifest:
        plugin = self._table(data, "plugin", _PLUGIN_KEYS, required=True)
        config = self._table(data, "config", _CONFIG_KEYS, required=False)
        defaults = config.get("defaults", {})
        if not isinstance(defaults, Mapping):
            raise self.error("[config] defaults", f"expected a table, got {show(defaults)}")
        section = self._string(config, "config", "section") if "section" in config else None
        return PluginManifest(
            name=self._string(plugin, "plugin", "name"),
            version=self._string(plugin, "plugin", "version"),
            summary=self._string(plugin, "plugin", "summary") if "summary" in plugin else "",
            entry_point=self._string(plugin, "plugin", "entry_point"),
            hooks=self._hooks(plugin),
            config_section=section,
            config_defaults=freeze(defaults),
        )

    def error(self, label: str, message: str) -> PluginError:
        return PluginError(f"{self.source}: {label}: {message}")

    def _table(
        self, data: Mapping[str, Any], key: str, known: tuple[str, ...], *, required: bool
    ) -> Mapping[str, Any]:
        return checked_table(data, key, known, required=required, fail=self.error)

    def _string(self, table: Mapping[str, Any], where: str, key: str) -> str:
        if key not in table:
            raise self.error(f"[{where}] {key}", "missing (required)")
        value = table[key]
        if not isinstance(value, str):
            raise self.error(f"[{where}] {key}", f"expected a string, got {show(value)}")
        return value

    def _hooks(self, plugin: Mapping[str, Any]) -> tuple[str, ...]:
        if "hooks" not in plugin:
            raise self.error("[plugin] hooks", "missing (required)")
        hooks = plugin["hooks"]
        if not isinstance(hooks, list) or not all(isinstance(hook, str) for hook in hooks):
            raise self.error("[plugin] hooks", f"expected an array of strings, got {show(hooks)}")
        for index, hook in enumerate(hooks):
            if hooks.index(hook) != index:
                raise self.error("[plugin] hooks", f"{show(hook)} is listed twice")
        return tuple(hooks)


def checked_table(
    data: Mapping[str, Any],
    key: str,
    known: tuple[str, ...],
    *,
    required: bool,
    fail: Callable[[str, str], Exception],
) -> Mapping[str, Any]:
    """The table ``data[key]``, holding only ``known`` keys; an absent optional table is empty.

    ``fail(label, message)`` makes the error to raise.
    """
    if key not in data:
        if required:
            raise fail(f"[{key}]", "missing table (required)")
        return {}
    table = data[key]
    if not isinstance(table, Mapping):
        raise fail(f"[{key}]", f"expected a table, got {show(table)}")
    for name in table:
        if name not in known:
            raise fail(f"[{key}]", f"unknown key {show(name)} (known keys: {', '.join(known)})")
    return table
