"""Addresses in a host config, and how the host turns a seed's host name into IP addresses.

``bootstrap_nodes`` may name a seed by IP literal (``"203.0.113.1:50000"``,
``"[2001:db8::1]:50000"``) or by host name (``"seed.example.org:50000"``), as in TheNodes. The
host resolves names when it dials, through a :data:`Resolver`: a real host asks the system
resolver (:func:`system_resolver`), the simulator a name table from its scenario
(:class:`NameTable`). Hooks only ever see IP literals, so a plugin records the resolved address
and never a name.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs

__all__ = [
    "NameTable",
    "Resolver",
    "canonical_ip_port",
    "canonical_seed",
    "resolve_seeds",
    "system_resolver",
]

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], Sequence[str]]
"""``resolver(host_name, port)``: the IP addresses (as text) the name stands for.

It raises :class:`OSError` (``socket.gaierror`` in a real host) when the name does not resolve.
"""

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_NAME_MAX = 253


def canonical_ip_port(text: str) -> str:
    """The canonical ``"ip:port"`` form of an IP literal address (IPv6 as ``"[ip]:port"``).

    An IPv4-mapped IPv6 address becomes the IPv4 address it maps.

    :raises ValueError: with the reason the address is not an IP literal with a port.
    """
    host, port = _split(text)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f'{host!r} is not an IP literal (hostnames are not allowed; use "ip:port")'
        ) from None
    return _join(ip, port, bracketed=text.startswith("["))


def canonical_seed(text: str) -> str:
    """The canonical form of a seed address: an IP literal's ``"ip:port"``, or a host name's
    ``"name:port"`` in lowercase without a trailing dot.

    :raises ValueError: with the reason ``text`` is neither.
    """
    host, port = _split(text)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if text.startswith("["):
            raise ValueError(f"{host!r} is not an IPv6 address") from None
        name = host.lower().removesuffix(".")
        if len(name) > _NAME_MAX or not all(_LABEL.fullmatch(p) for p in name.split(".")):
            raise ValueError(f"{host!r} is neither an IP address nor a host name") from None
        return f"{name}:{port}"
    return _join(ip, port, bracketed=text.startswith("["))


def _split(text: str) -> tuple[str, int]:
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ValueError('an IPv6 address must be written "[ip]:port"')
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError('missing port, expected "host:port"')
        if ":" in host:
            raise ValueError('an IPv6 address must be written "[ip]:port"')
    if "%" in host:
        raise ValueError("zone ids are not allowed")
    if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise ValueError(f"port {port_text!r} is not a number in 1..65535")
    return host, int(port_text)


def _join(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int, *, bracketed: bool) -> str:
    if ip.version == 4 and bracketed:
        raise ValueError("an IPv4 address must not be bracketed")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def system_resolver(name: str, port: int) -> list[str]:
    """Resolve ``name`` with the system resolver (``socket.getaddrinfo``), in its order.

    :raises OSError: the name does not resolve.
    """
    infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@attrs.frozen
class NameTable:
    """A resolver that looks names up in a table (name -> IP addresses); any other name fails."""

    names: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)

    def __call__(self, name: str, port: int) -> list[str]:
        """The table's addresses of ``name``.

        :raises OSError: the table does not hold ``name``.
        """
        try:
            return list(self.names[name])
        except KeyError:
            raise OSError(f"unknown host {name!r}") from None


def resolve_seeds(seeds: Iterable[str], resolver: Resolver) -> list[str]:
    """The seeds' IP addresses: literals as they are, names through ``resolver``.

    A name that does not resolve is logged and skipped; an address listed twice (also after
    resolving) is kept once.
    """
    resolved: dict[str, None] = {}
    for seed in seeds:
        host, _, port_text = seed.rpartition(":")
        if host.startswith("[") or _is_ip(host):
            resolved.setdefault(seed, None)
            continue
        try:
            ips = resolver(host, int(port_text))
        except OSError as exc:
            logger.warning("seed %s does not resolve, not dialled: %s", seed, exc)
            continue
        for ip in ips:
            try:
                addr = canonical_ip_port(
                    f"[{ip}]:{port_text}" if ":" in ip else f"{ip}:{port_text}"
                )
            except ValueError as exc:
                logger.warning("seed %s resolved to %r, not dialled: %s", seed, ip, exc)
                continue
            resolved.setdefault(addr, None)
    return list(resolved)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
