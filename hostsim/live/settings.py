"""A live node's numbers, from its checked host config (:class:`~hostsim.config.HostConfig`).

- The core's policy: ``[discovery]`` and the retries of ``[network.connection_policy]``
  (:meth:`~hostsim.core.CorePolicy.of`);
- from ``[network.connection_policy]`` also ``direct_tcp_timeout_ms`` (the connect and the
  handshake each), ``heartbeat_interval_ms`` (how often peers are probed) and
  ``heartbeat_timeout_ms`` (a probed peer silent this long is closed); 0 means never for both;
- hostsim's own ``[network] bind_addr`` and ``max_inbound``;
- the bound on dials from the address book (:data:`BOOK_DIALS_PER_SEC`, after a burst of
  ``target_outbound``), so no peer list makes the node a traffic source for someone else.

- ``[encryption]``, read as TheNodes 0.2.0 and 0.4.0 read it: TLS when either version would
  speak TLS (:attr:`LiveSettings.tls`, :mod:`hostsim.live.tlsconfig`); Noise, or a backend
  TheNodes does not know, is refused (:func:`encryption_refusal`).

Every default is TheNodes' (or hostsim's, for its own keys), applied by the config reader.
"""

from __future__ import annotations

import ipaddress
from typing import Final

import attrs

from hostsim.config import DEFAULT_BIND_ADDR, DEFAULT_MAX_INBOUND, HostConfig
from hostsim.core import CorePolicy
from hostsim.errors import HostConfigError
from hostsim.live.tlsconfig import TlsSettings, encryption_refusal, require_tls_extra, tls_settings

__all__ = [
    "BOOK_DIALS_PER_SEC",
    "LOOPBACK",
    "LiveSettings",
    "encryption_refusal",
    "live_settings",
]

LOOPBACK = DEFAULT_BIND_ADDR
BOOK_DIALS_PER_SEC: Final = 1.0


@attrs.frozen
class LiveSettings:
    """A live node's numbers."""

    policy: CorePolicy = attrs.field(
        factory=lambda: CorePolicy(book_dials_per_sec=BOOK_DIALS_PER_SEC)
    )
    bind: str = LOOPBACK
    max_inbound: int = DEFAULT_MAX_INBOUND
    connect_timeout_secs: float = 3.0
    handshake_timeout_secs: float = 3.0
    heartbeat_interval_secs: float | None = 30.0
    """How often each peer is sent a liveness probe; None: never."""
    idle_timeout_secs: float | None = 90.0
    """How long a peer may stay silent (or leave a write unacknowledged); None: for ever."""
    tick_interval_secs: float = 1.0
    tls: TlsSettings | None = None
    """TLS, from ``[encryption]``; None: plaintext."""


def _secs(millis: int, default: float) -> float:
    """Milliseconds as seconds; 0 (which TheNodes reads as "no limit") keeps the default."""
    return millis / 1000 if millis > 0 else default


def _secs_or_never(millis: int) -> float | None:
    """Milliseconds as seconds; 0 is never, as a user reads it."""
    return millis / 1000 if millis > 0 else None


def live_settings(config: HostConfig, *, bind: str | None = None) -> LiveSettings:
    """A live node's settings from its host config; ``bind`` (``--bind``) wins over the file.

    :raises HostConfigError: ``bind`` is not an IP address, the file asks for Noise
        (:func:`encryption_refusal`) or has a bad ``[encryption]`` key, or asks for TLS and
        the ``tls`` extra is not installed.
    """
    tls = tls_settings(config.data)
    if tls is not None:
        require_tls_extra()
    if bind is not None:
        try:
            bind = str(ipaddress.ip_address(bind))
        except ValueError:
            raise HostConfigError(
                f"--bind {bind!r}: must be an IP address, such as 127.0.0.1 or ::1"
            ) from None
    conn = config.connection_policy
    default = LiveSettings()
    timeout = _secs(conn.direct_tcp_timeout_ms, default.connect_timeout_secs)
    return LiveSettings(
        policy=CorePolicy.of(config, book_dials_per_sec=BOOK_DIALS_PER_SEC),
        bind=bind or config.bind_addr,
        max_inbound=config.max_inbound,
        connect_timeout_secs=timeout,
        handshake_timeout_secs=timeout,
        heartbeat_interval_secs=_secs_or_never(conn.heartbeat_interval_ms),
        idle_timeout_secs=_secs_or_never(conn.heartbeat_timeout_ms),
        tls=tls,
    )
