"""What a live node reads from its host config beyond what :class:`~hostsim.config.HostConfig`
checks, in one place, with TheNodes' defaults for anything absent.

- ``[discovery]`` ``request_interval_secs`` (90), ``request_want`` (16);
- ``[network.connection_policy]`` ``reconnect_base_delay_ms`` (1000), ``reconnect_multiplier``
  (2.0), ``reconnect_max_delay_ms`` (60000), ``reconnect_max_attempts`` (8),
  ``reconnect_jitter_ratio`` (0.2), ``direct_tcp_timeout_ms`` (3000: the connect and the
  handshake each), ``heartbeat_interval_ms`` (30000), ``heartbeat_timeout_ms`` (90000: a
  connection silent this long is closed);
- hostsim's own ``[network]`` ``bind_addr`` (``"127.0.0.1"``) and ``max_inbound`` (64).

A value of the wrong type is taken as absent here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from hostsim.core import CorePolicy, RetryPolicy

__all__ = ["LOOPBACK", "LiveSettings", "live_settings"]

LOOPBACK = "127.0.0.1"


@attrs.frozen
class LiveSettings:
    """A live node's numbers."""

    policy: CorePolicy = attrs.field(factory=CorePolicy)
    bind: str = LOOPBACK
    max_inbound: int = 64
    connect_timeout_secs: float = 3.0
    handshake_timeout_secs: float = 3.0
    heartbeat_interval_secs: float = 30.0
    idle_timeout_secs: float = 90.0
    tick_interval_secs: float = 1.0


def _table(data: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    for key in keys:
        value = data.get(key)
        data = value if isinstance(value, Mapping) else {}
    return data


def _number(table: Mapping[str, Any], key: str, default: float, scale: float = 1.0) -> float:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return default
    return float(value) * scale


def live_settings(data: Mapping[str, Any], *, bind: str | None = None) -> LiveSettings:
    """The live settings of a host config's raw data; ``bind`` (``--bind``) wins over the file."""
    discovery = _table(data, "discovery")
    network = _table(data, "network")
    conn = _table(data, "network", "connection_policy")
    retry = RetryPolicy()
    core = CorePolicy()
    policy = CorePolicy(
        peer_list_interval_secs=_number(
            discovery, "request_interval_secs", core.peer_list_interval_secs
        ),
        peer_list_want=int(_number(discovery, "request_want", core.peer_list_want)),
        retry=RetryPolicy(
            base_secs=_number(conn, "reconnect_base_delay_ms", retry.base_secs, 0.001),
            multiplier=_number(conn, "reconnect_multiplier", retry.multiplier),
            max_secs=_number(conn, "reconnect_max_delay_ms", retry.max_secs, 0.001),
            max_attempts=int(_number(conn, "reconnect_max_attempts", retry.max_attempts)),
            jitter=min(1.0, _number(conn, "reconnect_jitter_ratio", retry.jitter)),
        ),
    )
    default = LiveSettings()
    configured_bind = network.get("bind_addr")
    timeout = _number(conn, "direct_tcp_timeout_ms", default.connect_timeout_secs, 0.001)
    return LiveSettings(
        policy=policy,
        bind=bind or (configured_bind if isinstance(configured_bind, str) else LOOPBACK),
        max_inbound=int(_number(network, "max_inbound", default.max_inbound)),
        connect_timeout_secs=timeout,
        handshake_timeout_secs=timeout,
        heartbeat_interval_secs=_number(
            conn, "heartbeat_interval_ms", default.heartbeat_interval_secs, 0.001
        ),
        idle_timeout_secs=_number(conn, "heartbeat_timeout_ms", default.idle_timeout_secs, 0.001),
    )
