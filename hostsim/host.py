"""PluginHost: a node's plugins and their hooks in either world, every hook called by keyword.

The host loads a node's plugins at each start and calls the hook of each step of the node's
lifecycle; which steps come when (the dial order, retries, peer lists) is the host core's,
described once in :mod:`hostsim.core`.

Hooks are called as pluggy's own ``pm.hook.<name>(...)``, through :class:`NodeHooks`
(``self.hook.on_tick(host=view)``), but plugin by plugin, in pluggy's call order, so the host
knows which plugin returned which dial list and one misbehaving plugin cannot keep a hook from
the others. A plugin that raises in ``on_startup`` stops the node's start; an exception from
any other hook is logged and the node carries on, as a host must.
"""

from __future__ import annotations

import gc
import logging
import os
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, Literal, NoReturn, TypeVar

import attrs
import pluggy

from hostsim.addresses import Resolver, resolve_seeds, system_resolver
from hostsim.clock import Clock, VirtualClock
from hostsim.config import HostConfig, RealmInfo
from hostsim.errors import HostStartupError, HostStateError
from hostsim.identity import resolve_node_id
from hostsim.plugins import EntryPointLike, get_plugin_manager

__all__ = [
    "Dial",
    "HostStartupError",
    "HostStateError",
    "NodeHooks",
    "NodeView",
    "Peer",
    "PluginCall",
    "PluginHost",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Direction = Literal["outbound", "inbound"]
SEED_ORIGIN = "seed"
"""The origin of a dial that comes from the config's ``bootstrap_nodes``."""


@attrs.frozen
class NodeView:
    """The read-only view of a node that every hook receives as ``host``."""

    realm: RealmInfo
    node_id: str
    listen_addrs: tuple[str, ...]
    state_dir: Path
    config: Mapping[str, Any] = attrs.field(repr=False, hash=False)
    log: logging.Logger = attrs.field(repr=False, hash=False)
    _clock: Clock = attrs.field(repr=False, eq=False, hash=False, alias="clock")

    @classmethod
    def of(cls, config: HostConfig, clock: Clock, *, node_id: str) -> NodeView:
        """The view of the node ``node_id`` that ``config`` describes, telling time by ``clock``."""
        return cls(
            realm=config.realm,
            node_id=node_id,
            listen_addrs=config.listen_addrs,
            state_dir=config.state_dir,
            config=config.data,
            log=logging.getLogger(f"hostsim.node.{node_id}"),
            clock=clock,
        )

    def now(self) -> float:
        """The host clock, in seconds since the epoch."""
        return self._clock.now()


def _check_direction(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in ("outbound", "inbound"):
        raise ValueError(f"direction must be 'outbound' or 'inbound', got {value!r}")


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen
class Peer:
    """A remote node on an established connection, as hooks receive it (``peer``, ``sender``)."""

    node_id: str
    addr: str
    direction: Direction = attrs.field(validator=_check_direction)
    listen_addr: str | None = None
    capabilities: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    cert_fingerprint: str | None = None
    """The SPKI SHA-256 (hex lowercase) of the TLS certificate the peer proved it holds, or
    None: no TLS, or a peer that dialled in to a listener without mTLS."""


@attrs.frozen
class Dial:
    """One address in a start's dial order, and who asked for it (a plugin's name or ``"seed"``)."""

    addr: str
    origin: str


def dial_order(
    plugin_lists: Iterable[tuple[str, Sequence[str]]], seeds: Iterable[str]
) -> list[Dial]:
    """Every plugin-provided address first, in order and without repeats, then the other seeds."""
    dials: dict[str, Dial] = {}
    for origin, addrs in plugin_lists:
        for addr in addrs:
            dials.setdefault(addr, Dial(addr, origin))
    for addr in seeds:
        dials.setdefault(addr, Dial(addr, SEED_ORIGIN))
    return list(dials.values())


HookFailed = Callable[[str, str, Exception], None]
"""What a host does when a plugin raises in a hook: called with the plugin's name, the hook's
name and the exception, inside the ``except`` block. It may raise to stop the call."""


class PluginCall(Generic[T]):
    """One hook, called like pluggy's ``pm.hook.<name>(**kwargs)`` but one plugin at a time.

    Each implementation runs in pluggy's call order (LIFO, ``tryfirst``/``trylast`` honoured)
    with the keyword arguments it declares. An exception from one plugin goes to ``failed``
    with that plugin's name, and the others are still called unless ``failed`` raises. A
    ``firstresult`` hook stops at the first result that is not None, as pluggy does.

    :param caller: pluggy's caller of the hook.
    :param failed: What to do when a plugin raises.
    :param result: Checks and converts one plugin's return value; raising counts as the
        plugin's failure.
    """

    def __init__(
        self,
        caller: pluggy.HookCaller,
        failed: HookFailed,
        result: Callable[[object], T],
    ) -> None:
        self.name = caller.name
        self._caller = caller
        self._failed = failed
        self._result = result
        self._firstresult = bool(caller.spec and caller.spec.opts.get("firstresult"))

    def __repr__(self) -> str:
        return f"<PluginCall {self.name}>"

    def __call__(self, **kwargs: object) -> list[tuple[str, T]]:
        """Call every plugin's implementation; return (plugin name, result) of those that did
        not fail, in the order they were called."""
        results: list[tuple[str, T]] = []
        for impl in reversed(self._caller.get_hookimpls()):
            try:
                value = impl.function(**{name: kwargs[name] for name in impl.argnames})
                results.append((impl.plugin_name, self._result(value)))
            except Exception as exc:
                self._failed(impl.plugin_name, self.name, exc)
                continue
            if self._firstresult and value is not None:
                break
        return results


def _ignore(value: object) -> None:
    return None


class NodeHooks:
    """The hooks of one node's plugin manager, as ``hook.on_tick(host=view)`` calls them.

    Every hook is a :class:`PluginCall`: the host learns which plugin returned what, and which
    one raised. A plugin that raises in ``on_startup`` goes to ``startup_failed`` (which stops
    the start by raising); one that raises in any other hook goes to ``failed``.
    """

    def __init__(
        self, pm: pluggy.PluginManager, *, startup_failed: HookFailed, failed: HookFailed
    ) -> None:
        hook = pm.hook
        self.on_startup = PluginCall(hook.on_startup, startup_failed, _address_list)
        self.on_bootstrap = PluginCall(hook.on_bootstrap, failed, _ignore)
        self.on_connect = PluginCall(hook.on_connect, failed, _ignore)
        self.on_disconnect = PluginCall(hook.on_disconnect, failed, _ignore)
        self.on_peer_list = PluginCall(hook.on_peer_list, failed, _ignore)
        self.on_dial_failed = PluginCall(hook.on_dial_failed, failed, _ignore)
        self.on_tick = PluginCall(hook.on_tick, failed, _ignore)
        self.on_shutdown = PluginCall(hook.on_shutdown, failed, _ignore)


class PluginHost:
    """One node's plugins and connections on a clock, and the hooks of its lifecycle.

    The clock is a :class:`VirtualClock` in simulation (then :meth:`advance` moves it) or the
    real clock in a live node. Each :meth:`start` is a new process: it builds a new plugin
    manager with new plugin instances. :meth:`shutdown` is a graceful stop; :meth:`crash` is
    the process dying.
    """

    def __init__(
        self,
        config: HostConfig,
        *,
        clock: Clock,
        extra_plugins_factory: Callable[[], Mapping[str, object]] | None = None,
        entry_points: Iterable[EntryPointLike] | None = None,
        resolver: Resolver = system_resolver,
        plugin_manager: Callable[[str], pluggy.PluginManager] = pluggy.PluginManager,
    ) -> None:
        """Set up a stopped node, with its id (see :mod:`hostsim.identity`).

        :param config: The node's host config.
        :param clock: The clock the node tells time by; :meth:`advance` moves it.
        :param extra_plugins_factory: Called at every start for more plugins (name -> instance),
            registered after the enabled ones, without a manifest.
        :param entry_points: The entry points to look enabled plugins up in (default: the
            installed ones).
        :param resolver: Resolves the host names in ``bootstrap_nodes`` at every start.
        :param plugin_manager: Makes each start's empty plugin manager (see
            :func:`~hostsim.plugins.get_plugin_manager`'s ``manager``).
        :raises NodeIdentityError: the node has no ``[node] id`` and its id file holds none
            or cannot be made.
        """
        self._config = config
        self._clock = clock
        self._extra_plugins_factory = extra_plugins_factory
        self._entry_points = None if entry_points is None else tuple(entry_points)
        self._resolver = resolver
        self._plugin_manager = plugin_manager
        node_id = resolve_node_id(
            config.node_id,
            config.state_dir,
            config.id_file,
            allow_ephemeral=config.allow_ephemeral,
        )
        self._view = NodeView.of(config, clock, node_id=node_id)
        self._pm: pluggy.PluginManager | None = None
        self._hook: NodeHooks | None = None
        self._connections: dict[str, Peer] = {}
        self._seeds: tuple[str, ...] = ()

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: VirtualClock,
        state_dir: Path | None = None,
        extra_plugins_factory: Callable[[], Mapping[str, object]] | None = None,
        entry_points: Iterable[EntryPointLike] | None = None,
        resolver: Resolver = system_resolver,
    ) -> PluginHost:
        """A stopped node from a host config file; ``state_dir`` overrides the config's.

        Unlike a real host, which resolves a relative ``[node] state_dir`` against its working
        directory as TheNodes does, a simulated node resolves it against the config file's
        directory, so a test or an example never writes where it happens to be run from.
        """
        config = HostConfig.from_file(path, base_dir=Path(path).parent)
        if state_dir is not None:
            config = attrs.evolve(config, state_dir=Path(os.path.abspath(state_dir)))
        return cls(
            config,
            clock=clock,
            extra_plugins_factory=extra_plugins_factory,
            entry_points=entry_points,
            resolver=resolver,
        )

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PluginHost {self.node_id} {state}, {len(self._connections)} connections>"

    @property
    def config(self) -> HostConfig:
        """The node's host config."""
        return self._config

    @property
    def clock(self) -> Clock:
        """The node's clock."""
        return self._clock

    @property
    def node_id(self) -> str:
        """The node's id."""
        return self._view.node_id

    @property
    def view(self) -> NodeView:
        """What hooks receive as ``host``."""
        return self._view

    @property
    def running(self) -> bool:
        """Whether the node is started."""
        return self._pm is not None

    @property
    def seeds(self) -> tuple[str, ...]:
        """The seed addresses of the latest start, host names resolved."""
        return self._seeds

    @property
    def plugin_manager(self) -> pluggy.PluginManager | None:
        """The running node's plugin manager; None when the node is stopped."""
        return self._pm

    @property
    def hook(self) -> NodeHooks:
        """The running node's hooks, each called plugin by plugin (see :class:`NodeHooks`).

        :raises HostStateError: the node is stopped.
        """
        if self._hook is None:
            raise HostStateError(f"node {self.node_id!r} is not running, it has no hooks")
        return self._hook

    @property
    def connections(self) -> Mapping[str, Peer]:
        """The current connections, by remote address (read-only)."""
        return MappingProxyType(self._connections)

    def start(self) -> list[Dial]:
        """Start: load the plugins, call ``on_startup`` and ``on_bootstrap``; return the dial order.

        :raises HostStateError: the node is already running.
        :raises PluginError: a plugin could not be loaded.
        :raises HostStartupError: a plugin raised in ``on_startup``; the node stays stopped.
        """
        if self.running:
            raise HostStateError(f"node {self.node_id!r} is already running")
        extras = self._extra_plugins_factory() if self._extra_plugins_factory else None
        pm = get_plugin_manager(
            self._config,
            extra_plugins=extras,
            entry_points=self._entry_points,
            manager=self._plugin_manager,
        )
        del extras  # only the plugin manager may keep the plugins alive
        self._hook, lists = self._startup(pm)
        self._pm = pm
        logger.debug("node %s: started with plugins %s", self.node_id, [n for n, _ in lists])
        seeds = resolve_seeds(self._config.bootstrap_nodes, self._resolver)
        self._seeds = tuple(seeds)
        self.hook.on_bootstrap(host=self._view, seeds=list(seeds))
        return dial_order(lists, seeds)

    def connect(
        self,
        addr: str,
        *,
        node_id: str,
        direction: Direction = "outbound",
        listen_addr: str | None = None,
        capabilities: Iterable[str] = (),
        cert_fingerprint: str | None = None,
    ) -> Peer:
        """A handshake with the peer at ``addr`` completed; call ``on_connect``.

        For an outbound connection ``listen_addr`` defaults to ``addr``. ``cert_fingerprint``
        is the peer's TLS certificate's SPKI SHA-256, when it showed one.

        :raises HostStateError: the node is stopped or already connected to ``addr``.
        """
        self._require_running("connect")
        if addr in self._connections:
            raise HostStateError(f"node {self.node_id!r} is already connected to {addr}")
        if direction == "outbound" and listen_addr is None:
            listen_addr = addr
        peer = Peer(
            node_id=node_id,
            addr=addr,
            direction=direction,
            listen_addr=listen_addr,
            capabilities=capabilities,
            cert_fingerprint=cert_fingerprint,
        )
        self._connections[addr] = peer
        logger.debug("node %s: connected to %s (%s, %s)", self.node_id, addr, node_id, direction)
        self.hook.on_connect(host=self._view, peer=peer)
        return peer

    def disconnect(self, addr: str, reason: str = "closed") -> None:
        """The connection to ``addr`` ended; call ``on_disconnect`` with the connected peer.

        :raises HostStateError: the node is stopped or not connected to ``addr``.
        """
        peer = self._connected_peer(addr, "disconnect")
        logger.debug("node %s: disconnected from %s: %s", self.node_id, addr, reason)
        self.hook.on_disconnect(host=self._view, peer=peer, reason=reason)
        del self._connections[addr]

    def peer_list(self, sender_addr: str, peers: Iterable[str]) -> None:
        """A PEER_LIST arrived from the connected peer at ``sender_addr``; call ``on_peer_list``.

        :raises HostStateError: the node is stopped or not connected to ``sender_addr``.
        """
        sender = self._connected_peer(sender_addr, "receive a peer list")
        self.hook.on_peer_list(host=self._view, sender=sender, peers=list(peers))

    def dial_failed(self, addr: str, error: str = "connection refused") -> None:
        """An outbound dial to ``addr`` failed; call ``on_dial_failed``.

        :raises HostStateError: the node is stopped.
        """
        self._require_running("fail a dial")
        logger.debug("node %s: dial to %s failed: %s", self.node_id, addr, error)
        self.hook.on_dial_failed(host=self._view, addr=addr, error=error)

    def advance(self, secs: int) -> None:
        """Let ``secs`` whole seconds of host time pass; call ``on_tick`` once a second if running.

        :raises ValueError: ``secs`` is negative or not a whole number.
        :raises HostStateError: the node's clock is not a :class:`VirtualClock`.
        """
        clock = self._clock
        if not isinstance(clock, VirtualClock):
            raise HostStateError(f"node {self.node_id!r} runs on the real clock, cannot advance")
        if isinstance(secs, bool) or not (
            isinstance(secs, int) or (isinstance(secs, float) and secs.is_integer())
        ):
            raise ValueError(f"secs must be a whole number of seconds, got {secs!r}")
        if secs < 0:
            raise ValueError(f"secs must not be negative, got {secs!r}")
        if not self.running:
            clock.advance(secs)
            return
        for _ in range(int(secs)):
            clock.advance(1)
            self.hook.on_tick(host=self._view)

    def tick(self) -> None:
        """Call ``on_tick`` once, without moving the clock (a network moves its shared clock).

        :raises HostStateError: the node is stopped.
        """
        self._require_running("tick")
        self.hook.on_tick(host=self._view)

    def shutdown(self) -> None:
        """Stop gracefully: call ``on_shutdown``, then drop the plugins and the connections.

        :raises HostStateError: the node is stopped.
        """
        self._require_running("shut down")
        self.hook.on_shutdown(host=self._view)
        self._drop_plugins()
        logger.debug("node %s: shut down", self.node_id)

    def crash(self) -> None:
        """Die without calling any hook, releasing what the process held, as the kernel would.

        Every plugin is unregistered and every reference to it dropped; unless reference
        counting freed every plugin instance, a garbage collection then runs, so finalizers
        close the files and release the locks plugins held.

        :raises HostStateError: the node is stopped.
        """
        self._require_running("crash")
        assert self._pm is not None
        alive = [_weak_or_strong(plugin) for _, plugin in self._pm.list_name_plugin()]
        self._drop_plugins()
        # A full collection costs tens of milliseconds in a large process; it is only needed
        # when reference counting alone did not free every plugin (a plugin in a cycle).
        if any(ref() is not None for ref in alive):
            del alive
            gc.collect()
        logger.debug("node %s: crashed", self.node_id)

    def restart(self) -> list[Dial]:
        """Shut down gracefully, then start again; return the new dial order.

        :raises HostStateError: the node is stopped.
        """
        self.shutdown()
        return self.start()

    def _startup(self, pm: pluggy.PluginManager) -> tuple[NodeHooks, list[tuple[str, list[str]]]]:
        """Call ``on_startup`` on every plugin; return the hooks and each plugin's list, in
        registration order."""
        hook = NodeHooks(pm, startup_failed=self._startup_failed, failed=self._hook_failed)
        try:
            results = dict(hook.on_startup(host=self._view))
        except HostStartupError:
            # The other plugins are dropped without on_shutdown, as a failed process would.
            _unregister_all(pm)
            del hook, pm
            gc.collect()
            raise
        lists = [(name, results[name]) for name, _ in pm.list_name_plugin() if name in results]
        return hook, lists

    def _startup_failed(self, plugin: str, hook_name: str, exc: Exception) -> NoReturn:
        raise HostStartupError(
            f"plugin {plugin!r} failed to start node {self.node_id!r}: {exc}"
        ) from exc

    def _hook_failed(self, plugin: str, hook_name: str, exc: Exception) -> None:
        logger.error(
            "node %s: plugin %r raised in %s; the node carries on",
            self.node_id,
            plugin,
            hook_name,
            exc_info=exc,
        )

    def _require_running(self, action: str) -> None:
        if not self.running:
            raise HostStateError(f"node {self.node_id!r} is not running, cannot {action}")

    def _connected_peer(self, addr: str, action: str) -> Peer:
        self._require_running(action)
        peer = self._connections.get(addr)
        if peer is None:
            raise HostStateError(
                f"node {self.node_id!r} is not connected to {addr}, cannot {action}"
            )
        return peer

    def _drop_plugins(self) -> None:
        pm, self._pm = self._pm, None
        self._hook = None
        if pm is not None:
            _unregister_all(pm)
        self._connections.clear()


def _address_list(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(a, str) for a in value):
        raise TypeError(f"on_startup returned {value!r}; expected a list of {'ip:port'!r} strings")
    return list(value)


def _weak_or_strong(plugin: object) -> Callable[[], object]:
    """A weak reference to ``plugin``, or a strong one when it cannot be weakly referenced."""
    try:
        return weakref.ref(plugin)
    except TypeError:
        return lambda: plugin


def _unregister_all(pm: pluggy.PluginManager) -> None:
    for name, _ in pm.list_name_plugin():
        pm.unregister(name=name)
