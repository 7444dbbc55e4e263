"""A live node's numbers, from its checked host config (:class:`~hostsim.config.HostConfig`).

- The core's policy: ``[discovery]`` and the retries of ``[network.connection_policy]``
  (:meth:`~hostsim.core.CorePolicy.of`);
- from ``[network.connection_policy]`` also ``direct_tcp_timeout_ms`` (the connect and the
  handshake each), ``heartbeat_interval_ms`` (how often peers are probed) and
  ``heartbeat_timeout_ms`` (a probed peer silent this long is closed); 0 means never for both;
- hostsim's own ``[network] bind_addr`` and ``max_inbound``;
- the bound on dials from the address book (:data:`BOOK_DIALS_PER_SEC`, after a burst of
  ``target_outbound``), so no peer list makes the node a traffic source for someone else.

hostsim speaks plaintext only. A file whose ``[encryption]`` would make TheNodes speak TLS or
Noise is refused (:func:`plaintext_refusal`): otherwise both sides would see garbage and say
nothing useful. TheNodes' two versions read the table differently (0.2.0: an explicit
``backend`` wins, so ``enabled = false`` with ``backend = "tls"`` is TLS; 0.4.0: ``enabled =
false`` is plaintext whatever the backend), and hostsim cannot know which one the operator
targets, so it refuses whenever either version would encrypt.

Every default is TheNodes' (or hostsim's, for its own keys), applied by the config reader.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Final

import attrs

from hostsim.config import DEFAULT_BIND_ADDR, DEFAULT_MAX_INBOUND, HostConfig
from hostsim.core import CorePolicy
from hostsim.errors import HostConfigError

__all__ = ["BOOK_DIALS_PER_SEC", "LOOPBACK", "LiveSettings", "live_settings", "plaintext_refusal"]

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


def _secs(millis: int, default: float) -> float:
    """Milliseconds as seconds; 0 (which TheNodes reads as "no limit") keeps the default."""
    return millis / 1000 if millis > 0 else default


def _secs_or_never(millis: int) -> float | None:
    """Milliseconds as seconds; 0 is never, as a user reads it."""
    return millis / 1000 if millis > 0 else None


PLAINTEXT_BACKENDS: Final = frozenset({"none", "plaintext"})
"""The ``[encryption] backend`` values with which TheNodes speaks plaintext."""
ENCRYPTED_BACKENDS: Final = frozenset({"tls", "noise"})
_FIX: Final = (
    'set [encryption] enabled = false and backend = "none" (or remove [encryption]) in this'
    " file and in the TheNodes nodes it talks to"
)


def plaintext_refusal(data: Mapping[str, Any]) -> str | None:
    """Why a host config's ``[encryption]`` asks for a transport hostsim does not speak, or None.

    ``data`` is the whole parsed file. Read as TheNodes 0.2.0 and 0.4.0 read it: backend names
    in any case; 0.2.0 encrypts when ``backend`` is ``tls``/``noise`` (whatever ``enabled``
    says) or when ``enabled = true`` names none; 0.4.0 when ``enabled = true`` and the backend
    is not ``none``/``plaintext``.
    """
    table = data.get("encryption")
    if not isinstance(table, Mapping):
        return None
    enabled = table.get("enabled") is True
    backend = table.get("backend")
    name = backend.lower() if isinstance(backend, str) else None
    if backend is not None and name not in PLAINTEXT_BACKENDS | ENCRYPTED_BACKENDS:
        return (
            f"[encryption] backend = {backend!r} is not one TheNodes knows"
            ' ("tls", "noise", "none", "plaintext"); hostsim speaks plaintext only: ' + _FIX
        )
    if name in ENCRYPTED_BACKENDS:
        versions = "TheNodes 0.2.0 (an explicit backend wins)" if not enabled else "TheNodes"
        return (
            f"[encryption] backend = {backend!r} makes {versions} speak {name.upper()}, and"
            f" hostsim speaks plaintext only: {_FIX}"
        )
    if enabled and name is None:
        return (
            "[encryption] enabled = true without a backend makes TheNodes speak TLS, and"
            f" hostsim speaks plaintext only: {_FIX}"
        )
    return None


def live_settings(config: HostConfig, *, bind: str | None = None) -> LiveSettings:
    """A live node's settings from its host config; ``bind`` (``--bind``) wins over the file.

    :raises HostConfigError: ``bind`` is not an IP address, or the file asks for TLS or Noise
        (:func:`plaintext_refusal`).
    """
    refusal = plaintext_refusal(config.data)
    if refusal is not None:
        raise HostConfigError(refusal)
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
    )
