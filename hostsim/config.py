"""The host config file, in TheNodes' layout (``src/config.rs`` and ``config/example.toml`` in
TheNodesDev/TheNodes): every file TheNodes accepts, hostsim accepts, with the same meaning
where both define a key.

What hostsim reads (every key optional; a bad value is an error naming the key and the value):

- ``port`` (default 50000), ``bootstrap_nodes`` (``"ip:port"`` or ``"name:port"``; a name is
  resolved when the node dials; an address listed twice is kept once);
- ``[realm]`` ``name`` (required in the table; default realm ``"default"``), ``version``
  (default ``"1.0"``), ``code`` (default: derived from the name as TheNodes derives it, see
  :mod:`thenodes_naming`); two nodes are in one realm when code and version match;
- ``[node]`` ``id``, ``state_dir`` (default ``"data"``, relative to the working directory),
  ``id_file`` (default ``"node_id"``), ``allow_ephemeral`` (default true), ``node_type``
  (default ``"daemon"``): see :mod:`hostsim.identity`;
- ``[discovery]`` ``enabled`` (default true), ``request_interval_secs`` (90),
  ``request_want`` (16): the peer requests a node sends;
- ``[network.connection_policy]``: how a host retries dials (:class:`ConnectionPolicy`);
- keys only hostsim has: ``[node] listen_addrs`` (the addresses the node advertises, default
  ``127.0.0.1:{port}``), ``[plugins] enabled`` (which installed plugins to load), and for a
  live node ``[network] bind_addr`` (the IP address it listens on, default ``127.0.0.1``) and
  ``[network] max_inbound`` (inbound connections it accepts at once, default 64).

Every integer key has bounds, in its type (:class:`~hostsim.convert.IntRange`), so a huge value
is an error naming the key and the value like any other: ``port`` and ``request_want`` 1..65535
(``u16`` in TheNodes), a duration at most :data:`MAX_DURATION_MS` milliseconds (about 24.8
days; ``request_interval_secs`` the same in seconds), ``reconnect_max_attempts`` at most
:data:`MAX_ATTEMPTS` (a ``u32`` in TheNodes), ``max_inbound`` at most :data:`MAX_INBOUND`.

``[network.persistence]`` belongs to the plugin that keeps the peers (TheNodes' core keeps them
itself): hostsim passes it on untouched and the plugin checks it. The keys TheNodes defines that
hostsim does not use (``app_name``, Noise and the CRL folders of ``[encryption]``,
``[logging]``, ``[realm_access]``, the other ``[network.*]`` tables...) are accepted and logged
at debug; ``[encryption]``'s TLS keys are read by a live node (:mod:`hostsim.live.tlsconfig`).
A key nobody defines is a warning naming it and the closest known key: TheNodes ignores it
silently, and a typo should neither pass unnoticed nor stop a node.

The whole document is also kept, read-only, in :attr:`HostConfig.data`: plugins receive it as
``host.config``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import attrs

from hostsim.addresses import canonical_ip_port, canonical_seed
from hostsim.convert import (
    NOT_NEGATIVE,
    OPAQUE,
    POSITIVE_INT,
    BadValue,
    IntRange,
    NonEmptyStr,
    Port,
    PositiveFloat,
    Ratio,
    converter,
    find_keys,
    freeze,
    key_tree,
    merge_trees,
    read_toml,
    register_rule,
    show,
    structure,
)
from hostsim.errors import HostConfigError
from hostsim.wire import MAX_WANT
from thenodes_naming import node_id_problem, realm_code, realm_code_problem

__all__ = [
    "DEFAULT_BIND_ADDR",
    "DEFAULT_MAX_INBOUND",
    "DEFAULT_PORT",
    "MAX_ATTEMPTS",
    "MAX_DURATION_MS",
    "MAX_DURATION_SECS",
    "MAX_INBOUND",
    "THENODES_UNUSED_KEYS",
    "ConnectionPolicy",
    "Discovery",
    "HostConfig",
    "HostConfigError",
    "HostFile",
    "RealmInfo",
]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 50000
"""TheNodes' port when the config does not set ``port``."""
DEFAULT_BIND_ADDR = "127.0.0.1"
"""Where a live node listens unless ``[network] bind_addr`` says otherwise: nothing public."""
DEFAULT_MAX_INBOUND = 64
"""Inbound connections a live node accepts at once unless ``[network] max_inbound`` says."""

MAX_DURATION_MS = 2**31 - 1
"""The longest duration a host config may set, in milliseconds (about 24.8 days): the longest
``TCP_USER_TIMEOUT`` Linux takes (a C ``int`` of milliseconds), so the most
``heartbeat_timeout_ms`` can mean, and the bound of every duration, in any unit. TheNodes reads
these keys as 64-bit; no node needs a timeout or a delay that long."""
MAX_DURATION_SECS = MAX_DURATION_MS // 1000
""":data:`MAX_DURATION_MS` in whole seconds: the bound of a duration in seconds."""
MAX_INBOUND = 65_535
"""The most ``[network] max_inbound`` may be (hostsim only): far more connections than a process
may hold open by default."""
MAX_ATTEMPTS = 2**32 - 1
"""The most ``reconnect_max_attempts`` may be: TheNodes reads it as a ``u32``. How many a node
actually makes is bounded lower (:data:`hostsim.backoff.MAX_RETRY_ATTEMPTS`)."""

Millis = Annotated[int, IntRange(0, MAX_DURATION_MS, NOT_NEGATIVE.reason)]
"""A duration in milliseconds, 0 included."""
Secs = Annotated[int, IntRange(1, MAX_DURATION_SECS, POSITIVE_INT.reason)]
"""A duration in seconds, at least one."""
Attempts = Annotated[int, IntRange(0, MAX_ATTEMPTS, NOT_NEGATIVE.reason)]
Inbound = Annotated[int, IntRange(1, MAX_INBOUND, POSITIVE_INT.reason)]
RequestWant = Annotated[int, IntRange(1, MAX_WANT)]
"""PEER_REQUEST ``want``, a ``u16`` on the wire."""

NodeId = Annotated[str, "node id"]
RealmCode = Annotated[str, "realm code"]
SeedAddr = Annotated[str, "seed address"]
ListenAddr = Annotated[str, "listen address"]
BindAddr = Annotated[str, "bind address"]
PluginName = Annotated[str, "plugin name"]


def _rule(base: type, problem: Any) -> Any:
    def hook(value: object, _: object = None) -> Any:
        checked: Any = converter.structure(value, base)
        if (reason := problem(checked)) is not None:
            raise BadValue(value, reason)
        return checked

    return hook


def _address_rule(parse: Any) -> Any:
    def hook(value: object, _: object = None) -> str:
        text = converter.structure(value, str)
        try:
            return str(parse(text))
        except ValueError as exc:
            raise BadValue(value, str(exc)) from None

    return hook


register_rule(NodeId, _rule(str, node_id_problem))
register_rule(RealmCode, _rule(str, realm_code_problem))
register_rule(PluginName, _rule(str, lambda v: None if v.strip() else "must not be empty"))
register_rule(SeedAddr, _address_rule(canonical_seed))
register_rule(ListenAddr, _address_rule(canonical_ip_port))


def _bind_addr(value: object, _: object = None) -> str:
    text = converter.structure(value, str)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise BadValue(value, "must be an IP address, such as 127.0.0.1 or ::1") from None


register_rule(BindAddr, _bind_addr)


@attrs.frozen
class RealmInfo:
    """The realm a node belongs to: display name, canonical code, version (as hooks see it)."""

    name: str
    code: str
    version: str = "1.0"

    def matches(self, other: RealmInfo) -> bool:
        """Whether TheNodes puts the two in one realm: same code and same version."""
        return self.code == other.code and self.version == other.version


@attrs.frozen
class Discovery:
    """``[discovery]``: the peer requests (PEER_REQUEST, answered by a PEER_LIST) a node sends."""

    enabled: bool = True
    request_interval_secs: Secs = 90
    """Seconds between two peer requests."""
    request_want: RequestWant = 16
    """Addresses asked for in each request."""


@attrs.frozen
class ConnectionPolicy:
    """``[network.connection_policy]`` (TheNodes 0.4): which paths a dial tries, how long it waits,
    and how a host retries a peer it could not reach, with TheNodes' defaults.

    A retry waits ``reconnect_base_delay_ms``, times ``reconnect_multiplier`` after each failure,
    at most ``reconnect_max_delay_ms``, spread by +/- ``reconnect_jitter_ratio``; retries stop after
    ``reconnect_max_attempts`` failures in a row. How a host bounds what this makes it do to one
    address is :class:`~hostsim.backoff.RetryPolicy`'s. Every duration is at most
    :data:`MAX_DURATION_MS`.
    """

    strategy: NonEmptyStr = "direct_then_relay"
    direct_tcp_timeout_ms: Millis = 3000
    direct_udp_timeout_ms: Millis = 1000
    punch_timeout_ms: Millis = 5000
    heartbeat_interval_ms: Millis = 30_000
    heartbeat_timeout_ms: Millis = 90_000
    reconnect_base_delay_ms: Millis = 1000
    reconnect_multiplier: PositiveFloat = 2.0
    reconnect_max_delay_ms: Millis = 60_000
    reconnect_max_attempts: Attempts = 8
    reconnect_jitter_ratio: Ratio = 0.2


# -- the file, as TheNodes lays it out ----------------------------------------------------------


@attrs.frozen
class _RealmTable:
    name: str
    version: NonEmptyStr = "1.0"
    code: RealmCode | None = None


@attrs.frozen
class _NodeTable:
    id: NodeId | None = None
    state_dir: NonEmptyStr = "data"
    id_file: NonEmptyStr = "node_id"
    allow_ephemeral: bool = True
    node_type: NonEmptyStr = "daemon"
    listen_addrs: tuple[ListenAddr, ...] | None = None  # hostsim only


@attrs.frozen
class _NetworkTable:
    persistence: Mapping[str, Any] = attrs.field(
        factory=lambda: freeze({}), metadata={OPAQUE: True}
    )
    connection_policy: ConnectionPolicy = attrs.field(factory=ConnectionPolicy)
    bind_addr: BindAddr = DEFAULT_BIND_ADDR  # hostsim only
    max_inbound: Inbound = DEFAULT_MAX_INBOUND  # hostsim only


@attrs.frozen
class _PluginsTable:  # hostsim only
    enabled: tuple[PluginName, ...] = ()


@attrs.frozen
class HostFile:
    """The host config file as TheNodes lays it out: its tables and keys, each typed with its
    rule (an integer key with its :class:`~hostsim.convert.IntRange`). :class:`HostConfig` is
    what a node reads from it."""

    port: Port = DEFAULT_PORT
    bootstrap_nodes: tuple[SeedAddr, ...] = ()
    realm: _RealmTable = attrs.field(factory=lambda: _RealmTable(name="default"))
    node: _NodeTable = attrs.field(factory=_NodeTable)
    discovery: Discovery = attrs.field(factory=Discovery)
    network: _NetworkTable = attrs.field(factory=_NetworkTable)
    plugins: _PluginsTable = attrs.field(factory=_PluginsTable)


THENODES_UNUSED_KEYS: Mapping[str, Any] = freeze(
    {
        "app_name": "unused",
        # hostsim.live.tlsconfig reads the TLS keys ("tls"), for a live node.
        "encryption": {
            **dict.fromkeys(("enabled", "backend", "mtls", "accept_self_signed"), "tls"),
            "paths": {
                **dict.fromkeys(("own_certificate", "own_private_key", "trusted_cert_dir"), "tls"),
                **dict.fromkeys(
                    ("trusted_crl_dir", "rejected_dir", "issuer_cert_dir", "issuer_crl_dir"),
                    "unused",
                ),
            },
            "noise": {
                **dict.fromkeys(
                    ("pattern", "curve", "cipher", "hash", "static_key_path"), "unused"
                ),
                "trust_policy": {
                    **dict.fromkeys(
                        ("mode", "store_new", "allowlist_fingerprints", "pin_fingerprints"),
                        "unused",
                    ),
                    "paths": dict.fromkeys(("allowlist_dir", "observed_dir"), "unused"),
                },
            },
            "trust_policy": {
                **dict.fromkeys(
                    (
                        "mode",
                        "accept_self_signed",
                        "store_new_certs",
                        "reject_expired",
                        "reject_before_valid",
                        "enforce_ca_chain",
                        "pin_subjects",
                        "pin_fingerprints",
                        "pin_fp_algo",
                        "realm_subject_binding",
                    ),
                    "tls",
                ),
                "paths": {"observed_dir": "tls"},
            },
        },
        "logging": dict.fromkeys(
            ("json_path", "json_max_bytes", "json_rotate", "disable_console"), "unused"
        ),
        "realm_access": {"allowed_node_types": "unused"},
        "network": {
            "relay": dict.fromkeys(
                (
                    "enabled",
                    "store_forward",
                    "queue_max_per_target",
                    "queue_max_global",
                    "selection",
                ),
                "unused",
            ),
            "udp": dict.fromkeys(
                ("enabled", "listen_port", "max_datagram_bytes", "max_app_payload_bytes"), "unused"
            ),
            "nat_traversal": dict.fromkeys(
                (
                    "enabled",
                    "serve",
                    "refresh_secs",
                    "cookie_ttl_secs",
                    "probe_count",
                    "probe_interval_ms",
                ),
                "unused",
            ),
            "nat": dict.fromkeys(("enabled", "lease_duration_secs"), "unused"),
            "delivery": dict.fromkeys(
                (
                    "fire_and_forget_timeout_ms",
                    "reliable_timeout_ms",
                    "ordered_reliable_timeout_ms",
                    "reliable_retry_budget",
                    "ordered_reliable_retry_budget",
                    "dedup_window_secs",
                    "ordered_max_buffered_messages",
                    "retry_interval_ms",
                ),
                "unused",
            ),
        },
    }
)
"""The keys TheNodes defines that hostsim does not use: accepted, and logged at debug."""

_KEYS = merge_trees(key_tree(HostFile), THENODES_UNUSED_KEYS)


@attrs.frozen
class HostConfig:
    """A checked host config. Build it with :meth:`from_file` or :meth:`from_mapping`."""

    port: int
    bootstrap_nodes: tuple[str, ...]
    """Seeds in canonical form: ``"ip:port"`` (IPv6 ``"[ip]:port"``) or ``"name:port"``."""
    realm: RealmInfo
    node_id: str | None
    """``[node] id``; None when the node keeps its id in its id file (see :attr:`id_file`)."""
    state_dir: Path
    """``[node] state_dir``, absolute."""
    listen_addrs: tuple[str, ...]
    enabled_plugins: tuple[str, ...]
    data: Mapping[str, Any] = attrs.field(repr=False, hash=False)
    """The whole parsed document, deeply read-only (tables as mappings, arrays as tuples)."""
    id_file: str = "node_id"
    allow_ephemeral: bool = True
    node_type: str = "daemon"
    discovery: Discovery = attrs.field(factory=Discovery)
    connection_policy: ConnectionPolicy = attrs.field(factory=ConnectionPolicy)
    bind_addr: str = DEFAULT_BIND_ADDR
    """``[network] bind_addr`` (hostsim only): the IP address a live node listens on."""
    max_inbound: int = DEFAULT_MAX_INBOUND
    """``[network] max_inbound`` (hostsim only): inbound connections a live node accepts."""

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, base_dir: Path | None = None) -> HostConfig:
        """Read and check a host config file.

        A relative ``state_dir`` is relative to ``base_dir``, by default the working directory,
        as in TheNodes.

        :raises HostConfigError: the file is not valid TOML or a key or value is wrong.
        :raises OSError: the file cannot be read.
        """
        path = Path(path)
        data = read_toml(path, HostConfigError)
        return cls.from_mapping(data, base_dir=base_dir or Path.cwd(), source=str(path))

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, base_dir: Path, source: str = "<host config>"
    ) -> HostConfig:
        """Check parsed TOML data; a relative ``state_dir`` is relative to ``base_dir``, and
        ``source`` names the data in messages.

        :raises HostConfigError: a key or value is wrong.
        """
        if not isinstance(data, Mapping):
            raise HostConfigError(f"{source}: expected a table, got {show(data)}")
        _report_keys(data, source)
        file = structure(data, HostFile, where=source, error=HostConfigError)
        return cls(
            port=file.port,
            bootstrap_nodes=_seeds(file.bootstrap_nodes, source),
            realm=_realm(file.realm, source),
            node_id=file.node.id,
            state_dir=Path(os.path.abspath(base_dir / file.node.state_dir)),
            listen_addrs=_listen_addrs(file, source),
            enabled_plugins=_plugin_names(file.plugins.enabled, source),
            data=freeze(data),
            id_file=file.node.id_file,
            allow_ephemeral=file.node.allow_ephemeral,
            node_type=file.node.node_type,
            discovery=file.discovery,
            connection_policy=file.network.connection_policy,
            bind_addr=file.network.bind_addr,
            max_inbound=file.network.max_inbound,
        )


def _report_keys(data: Mapping[str, Any], source: str) -> None:
    found = find_keys(data, _KEYS, frozenset({"unknown", "unused"}))
    for key in found:
        if key.tag == "unknown":
            hint = f" (did you mean {key.closest}?)" if key.closest else ""
            logger.warning("%s: unknown key %s, ignored%s", source, key.label, hint)
    unused = [key.label for key in found if key.tag == "unused"]
    if unused:
        logger.debug(
            "%s: keys TheNodes defines and hostsim does not use: %s", source, ", ".join(unused)
        )


def _seeds(seeds: tuple[str, ...], source: str) -> tuple[str, ...]:
    kept = dict.fromkeys(seeds)
    if len(kept) < len(seeds):
        twice = sorted({s for s in seeds if seeds.count(s) > 1})
        logger.debug("%s: bootstrap_nodes lists %s more than once; dialled once", source, twice)
    return tuple(kept)


def _realm(table: _RealmTable, source: str) -> RealmInfo:
    if table.code is not None:
        return RealmInfo(name=table.name, code=table.code, version=table.version)
    code = realm_code(table.name)
    if (reason := realm_code_problem(code)) is not None:
        raise HostConfigError(
            f"{source}: [realm] name = {show(table.name)}: its code {show(code)} {reason};"
            " set [realm] code"
        )
    return RealmInfo(name=table.name, code=code, version=table.version)


def _listen_addrs(file: HostFile, source: str) -> tuple[str, ...]:
    if file.node.listen_addrs is None:
        return (f"127.0.0.1:{file.port}",)
    addrs = file.node.listen_addrs
    for index, addr in enumerate(addrs):
        if addrs.index(addr) != index:
            raise HostConfigError(
                f"{source}: [node] listen_addrs[{index}] = {show(addr)}:"
                f" same address as [node] listen_addrs[{addrs.index(addr)}]"
            )
    return addrs


def _plugin_names(names: tuple[str, ...], source: str) -> tuple[str, ...]:
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise HostConfigError(
                f"{source}: [plugins] enabled[{index}] = {show(name)}: listed twice"
            )
    return names
