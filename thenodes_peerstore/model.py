"""The peer store's data: sources, entries, and the canonical form of an address."""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
from typing import Any

import attrs

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_ADDR_CHARS = 64
"""Longest address string worth parsing; "[full IPv6]:65535" is 47 characters."""

NODE_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
CAPABILITY_RE = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
MAX_CAPABILITIES = 32


class Source(enum.Enum):
    """Where an entry came from, in increasing order of trust."""

    GOSSIP = "Gossip"
    BOOTSTRAP = "Bootstrap"
    CONNECTED = "Connected"

    # Members are singletons, equal only to themselves: hashing by identity gives the same
    # dictionaries as hashing by name, with the lookup in C (a store looks tiers up per entry).
    __hash__ = object.__hash__

    @property
    def rank(self) -> int:
        """0 for Gossip, 1 for Bootstrap, 2 for Connected: trust only goes up."""
        return _RANK[self]


_RANK = {Source.GOSSIP: 0, Source.BOOTSTRAP: 1, Source.CONNECTED: 2}


class Reason(enum.Enum):
    """Why an address was not recorded: the kinds a store counts."""

    __hash__ = object.__hash__  # as for Source: one lookup per address of every peer list

    MALFORMED = "malformed"
    """Not ``ip:port`` or ``[ipv6]:port``: a non-string, a bad port, brackets, a zone id."""
    HOSTNAME = "hostname"
    """A name, not an IP literal: names are resolved by the host, never stored."""
    BAD_PORT = "bad port"
    """Port 0 or above 65535."""
    UNSPECIFIED = "unspecified"
    """``0.0.0.0`` or ``::``."""
    MULTICAST = "multicast"
    RESERVED = "reserved"
    """Ranges no peer can listen on: 0/8, 240/4, 198.18/15, and IPv6 outside the assigned blocks."""
    OWN = "own address"
    """One of the node's own addresses."""
    SCOPE = "narrower scope than the sender"
    """A public sender's private, link-local or loopback address; a private sender's loopback."""
    MESSAGE_CAP = "over the per-message cap"
    """Beyond the addresses taken from one peer list."""
    SENDER_CAP = "over the sender's hourly cap"
    """Beyond the new entries one sender may add per hour."""
    FULL = "store full of more trusted peers"
    """The store is at its cap and every entry outranks a new one."""
    NO_LISTEN_ADDR = "no dialable address"
    """An inbound connection with no (or an unproven) listen address."""


class AddressError(ValueError):
    """An address that cannot be stored; the message says why, ``kind`` says which rule."""

    def __init__(self, addr: object, reason: str, kind: Reason = Reason.MALFORMED) -> None:
        super().__init__(f"{addr!r}: {reason}")
        self.addr = addr
        self.reason = reason
        self.kind = kind


class Scope(enum.IntEnum):
    """How far an address reaches, narrowest first."""

    LOOPBACK = 0
    LINK = 1
    PRIVATE = 2
    GLOBAL = 3


def _nets(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


_RESERVED_V4 = _nets("0.0.0.0/8", "240.0.0.0/4", "198.18.0.0/15")
_ASSIGNED_V6 = _nets(
    "2000::/3", "fc00::/7", "fe80::/10", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48"
)
_LINK = _nets("169.254.0.0/16", "fe80::/10")
_PRIVATE = _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")


def _within(ip: IPAddress, nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in nets)


@attrs.frozen
class Address:
    """A dialable IP literal and port; ``str()`` gives the canonical ``"ip:port"`` key."""

    ip: IPAddress
    port: int

    @classmethod
    def parse(cls, text: object) -> Address:
        """Parse ``"ip:port"`` or ``"[ipv6]:port"``; raise :class:`AddressError` with a reason."""
        if not isinstance(text, str):
            raise AddressError(text, f"expected a string, got {type(text).__name__}")
        if not text or len(text) > MAX_ADDR_CHARS:
            raise AddressError(text, f"must be 1 to {MAX_ADDR_CHARS} characters")
        if text.startswith("["):
            host, sep, port_text = text[1:].partition("]:")
            if not sep:
                raise AddressError(text, 'an IPv6 address must be written "[ip]:port"')
        else:
            host, sep, port_text = text.rpartition(":")
            if not sep:
                raise AddressError(text, "missing port")
            if ":" in host:
                raise AddressError(text, 'an IPv6 address must be written "[ip]:port"')
        if "%" in host:
            raise AddressError(text, "zone ids are not dialable from other hosts")
        if not port_text.isascii() or not port_text.isdigit():
            raise AddressError(text, f"port {port_text!r} is not a number")
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise AddressError(text, f"port {port} is outside 1..65535", Reason.BAD_PORT)
        try:
            ip: IPAddress = ipaddress.ip_address(host)
        except ValueError:
            raise AddressError(
                text, f"{host!r} is not an IP literal (hostnames are not stored)", Reason.HOSTNAME
            ) from None
        if isinstance(ip, ipaddress.IPv4Address) != (not text.startswith("[")):
            raise AddressError(text, "an IPv4 address must not be bracketed")
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_unspecified:
            raise AddressError(text, "the unspecified address is not dialable", Reason.UNSPECIFIED)
        if ip.is_multicast:
            raise AddressError(text, "a multicast address is not dialable", Reason.MULTICAST)
        if _within(ip, _RESERVED_V4) or (ip.version == 6 and not _within(ip, _ASSIGNED_V6)):
            raise AddressError(text, "a reserved address is not dialable", Reason.RESERVED)
        return cls(ip, port)

    @property
    def group(self) -> str:
        """The network group for diversity: the /16 of an IPv4 address, the /32 of an IPv6 one."""
        prefix = 16 if self.ip.version == 4 else 32
        return str(ipaddress.ip_network(f"{self.ip}/{prefix}", strict=False))

    @property
    def scope(self) -> Scope:
        """Loopback, link-local, private (RFC 1918, CGNAT, ULA) or global."""
        return _scope(self.ip)

    def __str__(self) -> str:
        if self.ip.version == 6:
            return f"[{self.ip}]:{self.port}"
        return f"{self.ip}:{self.port}"


def parse_address(text: object) -> Address:
    """:meth:`Address.parse`, remembering recent strings: a peer's address repeats."""
    if isinstance(text, str):
        return _parse_str(text)
    return Address.parse(text)


def canonical_addr(text: object) -> str:
    """The canonical key of an address; raise :class:`AddressError` with a reason."""
    if isinstance(text, str):
        return _canonical_str(text)
    return str(Address.parse(text))


@functools.lru_cache(maxsize=1 << 16)
def _parse_str(text: str) -> Address:
    return Address.parse(text)


@functools.lru_cache(maxsize=1 << 16)
def _canonical_str(text: str) -> str:
    # Every entry re-validates its address when it changes.
    return str(_parse_str(text))


@functools.lru_cache(maxsize=1 << 16)
def _scope(ip: IPAddress) -> Scope:
    # Every address of every peer list is judged by its scope: remember recent ones.
    if ip.is_loopback:
        return Scope.LOOPBACK
    if _within(ip, _LINK):
        return Scope.LINK
    if _within(ip, _PRIVATE):
        return Scope.PRIVATE
    return Scope.GLOBAL


@functools.lru_cache(maxsize=1 << 16)
def network_group(addr: str) -> str:
    """The network group of a canonical address."""
    return Address.parse(addr).group


def valid_node_id(node_id: object) -> str | None:
    """``node_id`` if it is a well-formed id (at most 128 of ``[A-Za-z0-9._-]``), else None."""
    if isinstance(node_id, str) and NODE_ID_RE.fullmatch(node_id):
        return node_id
    return None


def valid_capabilities(capabilities: object) -> tuple[str, ...]:
    """The well-formed, distinct capabilities, at most :data:`MAX_CAPABILITIES` of them."""
    if isinstance(capabilities, str) or not isinstance(capabilities, list | tuple):
        return ()
    kept = [c for c in capabilities if isinstance(c, str) and CAPABILITY_RE.fullmatch(c)]
    return tuple(dict.fromkeys(kept))[:MAX_CAPABILITIES]


def _non_negative(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


def _optional_non_negative(
    instance: object, attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


def _canonical(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    canonical = canonical_addr(value)
    if canonical != value:
        raise ValueError(f"addr {value!r} is not in canonical form ({canonical!r})")


def _node_id(instance: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and valid_node_id(value) is None:
        raise ValueError(f"node_id {value!r} must be 1 to 128 of [A-Za-z0-9._-]")


def _capabilities(
    instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    if value and valid_capabilities(value) != value:
        raise ValueError(
            f"capabilities {list(value)!r} must be at most {MAX_CAPABILITIES} distinct, "
            "short names of [A-Za-z0-9._:/-]"
        )


@attrs.frozen
class PeerEntry:
    """One known peer. Times are integer Unix seconds."""

    addr: str = attrs.field(validator=_canonical)
    source: Source
    first_seen: int = attrs.field(validator=_non_negative)
    last_seen: int = attrs.field(validator=_non_negative)
    last_connected: int | None = attrs.field(default=None, validator=_optional_non_negative)
    last_attempt: int | None = attrs.field(default=None, validator=_optional_non_negative)
    failures: int = attrs.field(default=0, validator=_non_negative)
    node_id: str | None = attrs.field(default=None, validator=_node_id)
    capabilities: tuple[str, ...] = attrs.field(default=(), validator=_capabilities)

    @classmethod
    def new(cls, addr: str, source: Source, now: int) -> PeerEntry:
        """A peer first seen now."""
        return cls(addr=addr, source=source, first_seen=now, last_seen=now)

    def replace(self, **changes: Any) -> PeerEntry:
        """This entry with ``changes``: :func:`attrs.evolve`, validating the changed fields only.

        The other fields were validated when this entry was made. Entries change on every peer
        list and every save, so this is on a node's hot path.
        """
        for name, value in changes.items():
            field = _FIELDS.get(name)
            if field is None:
                raise TypeError(f"PeerEntry has no field {name!r}")
            if field.validator is not None:
                field.validator(self, field, value)
        entry = object.__new__(PeerEntry)
        for name in _FIELDS:
            _set(entry, name, changes[name] if name in changes else getattr(self, name))
        return entry

    def clamped(self, now: int) -> PeerEntry:
        """This entry with no time later than ``now`` and ``first_seen`` not after ``last_seen``."""
        if (
            self.last_seen <= now
            and self.first_seen <= self.last_seen
            and (self.last_connected is None or self.last_connected <= now)
            and (self.last_attempt is None or self.last_attempt <= now)
        ):
            return self

        def clamp(t: int | None) -> int | None:
            return None if t is None else min(t, now)

        last_seen = min(self.last_seen, now)
        return self.replace(
            first_seen=min(self.first_seen, last_seen),
            last_seen=last_seen,
            last_connected=clamp(self.last_connected),
            last_attempt=clamp(self.last_attempt),
        )


_FIELDS = {field.name: field for field in attrs.fields(PeerEntry)}
_set = object.__setattr__  # how attrs sets the fields of a frozen instance
