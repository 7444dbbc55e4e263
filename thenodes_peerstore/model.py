"""The peer store's data: sources, entries, and the canonical form of an address.

An address is parsed without a cache: the common case, a dotted IPv4 literal, goes through the
C parser in :mod:`socket` and a few integer tests; :mod:`ipaddress` is used only for IPv6 and
for strings the fast path does not recognise, so both paths give the same answer by
construction (the fast path accepts only what round-trips exactly, and leaves the rest).

Where a whole file or a whole peer list is read, one regular expression says more at once:
:data:`DIALABLE_V4_PATTERN` and :data:`GLOBAL_V4_PATTERN` match exactly the IPv4 addresses
:meth:`Address.parse` returns as they are (of any scope, and of global scope), derived from the
same networks the parser refuses or scopes; anything else they leave to the parser.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import operator
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import attrs

from thenodes_naming import NODE_ID_PATTERN
from thenodes_peerstore.errors import AddressError, Reason

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_ADDR_CHARS = 64
"""Longest address string worth parsing; "[full IPv6]:65535" is 47 characters."""

CAPABILITY_PATTERN = r"[A-Za-z0-9._:/-]{1,64}"
MAX_CAPABILITIES = 32
COUNT_PATTERN = r"(?:0|[1-9][0-9]{0,17})"
"""A non-negative integer of at most 18 digits, so always within 64 bits, as written."""
ADDR_PATTERN = r"(?:[0-9.]{7,15}|\[[0-9a-f:.]{2,45}\]):[1-9][0-9]{0,4}"
"""The shape of a canonical address; :func:`canonical_addr` decides whether it is one."""
FINGERPRINT_PATTERN = r"[0-9a-f]{64}"
"""A certificate fingerprint: the SPKI SHA-256 of a TLS certificate in lowercase hex, the form
of TheNodes' ``pin_fingerprints`` and of ``peer.cert_fingerprint``."""
NO_CERTIFICATE = "none"
"""What :attr:`PeerEntry.cert_changed_to` holds for a dial answered without a certificate
(plaintext) where the entry remembers one."""
CERTIFICATE_SCHEMA = 3
"""The file schema that brought the certificate fields (``cert_fingerprint``,
``cert_changed_to``): a file is written in it only when an entry holds one."""

_NODE_ID_RE = re.compile(NODE_ID_PATTERN)
_CAPABILITY_RE = re.compile(CAPABILITY_PATTERN)
_FINGERPRINT_RE = re.compile(FINGERPRINT_PATTERN)


class Source(enum.IntEnum):
    """How the node knows a peer; the value is its rank, and trust only goes up.

    An :class:`~enum.IntEnum` so that comparing and hashing tiers happen in C.
    """

    GOSSIP = 0
    """Named in a peer list: untrusted."""
    CLAIMED = 1
    """Advertised as its listen address by a peer that connected to the node (inbound), on the
    IP the connection came from: a real peer spoke to the node, but whether that port reaches
    it is a claim. Above gossip (a handshake happened); below bootstrap, which the operator
    chose, since an attacker can connect in as often as it likes."""
    BOOTSTRAP = 2
    """A configured seed."""
    CONNECTED = 3
    """Proven: the node dialled this address itself and the handshake completed."""

    @property
    def label(self) -> str:
        """The name the peer file uses: ``"Gossip"``, ``"Claimed"``, ``"Bootstrap"``,
        ``"Connected"``."""
        return _LABELS[self]

    @property
    def rank(self) -> int:
        """0 for the least trusted tier; trust only goes up."""
        return int(self)

    @classmethod
    def from_label(cls, label: object) -> Source | None:
        """The source a peer file names, or None for anything else."""
        return _BY_LABEL.get(label) if isinstance(label, str) else None


_LABELS = {source: source.name.title() for source in Source}
_BY_LABEL = {label: source for source, label in _LABELS.items()}


class Scope(enum.IntEnum):
    """How far an address reaches, narrowest first."""

    LOOPBACK = 0
    LINK = 1
    PRIVATE = 2
    GLOBAL = 3


def _nets(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


_RESERVED_V4 = _nets("0.0.0.0/8", "240.0.0.0/4", "198.18.0.0/15")
_MULTICAST_V4 = _nets("224.0.0.0/4")
_LOOPBACK_V4 = _nets("127.0.0.0/8")
_ASSIGNED_V6 = _nets(
    "2000::/3", "fc00::/7", "fe80::/10", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48"
)
_LINK = _nets("169.254.0.0/16", "fe80::/10")
_PRIVATE = _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")


def _within(ip: IPAddress, nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in nets)


def _v4_starts(nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> str:
    """A regular expression for how a canonical IPv4 literal in one of the IPv4 ``nets`` (each
    a /16 or wider) begins: its first octet, or its first two, each followed by its dot."""
    starts: list[str] = []
    for net in nets:
        if net.version != 4:
            continue
        if net.prefixlen > 16:
            raise ValueError(f"{net}: only networks of /16 or wider are spelled by octets")
        low, high = net.network_address.packed, net.broadcast_address.packed
        if net.prefixlen <= 8:
            starts += (f"{a}." for a in range(low[0], high[0] + 1))
        else:
            starts += (f"{low[0]}.{b}." for b in range(low[1], high[1] + 1))
    return _trie(starts)


def _trie(words: Iterable[str]) -> str:
    """A regular expression for any of ``words`` (literal text, none a prefix of another),
    branching one character at a time, so that a match tries each character once."""
    children: dict[str, list[str]] = {}
    for word in sorted(set(words)):
        children.setdefault(word[0], []).append(word[1:])
    branches = [
        re.escape(first) + ("" if rests == [""] else _trie(rests))
        for first, rests in sorted(children.items())
    ]
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
"""0 to 255 as ``inet_ntop`` writes it: no leading zero."""
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
"""1 to 65535 without a leading zero."""
_V4_WITH_PORT = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}:{_PORT}"
DIALABLE_V4_PATTERN = rf"(?!{_v4_starts(_RESERVED_V4 + _MULTICAST_V4)}){_V4_WITH_PORT}"
"""Exactly the IPv4 ``"ip:port"`` texts :meth:`Address.parse` returns unchanged: canonical, and
in no network it refuses (reserved, multicast, the unspecified address)."""
GLOBAL_V4_PATTERN = (
    rf"(?!{_v4_starts(_RESERVED_V4 + _MULTICAST_V4 + _LOOPBACK_V4 + _LINK + _PRIVATE)})"
    + _V4_WITH_PORT
)
"""Exactly the texts of :data:`DIALABLE_V4_PATTERN` whose :attr:`Address.scope` is global."""
_dialable_v4 = re.compile(DIALABLE_V4_PATTERN).fullmatch


class Address(NamedTuple):
    """A dialable IP literal and port, parsed; :attr:`text` is the canonical ``"ip:port"`` key.

    ``packed`` is the address in network byte order (4 bytes for IPv4, 16 for IPv6); an
    IPv4-mapped IPv6 address is kept as IPv4. A named tuple: one is made for every address of
    every peer list, and a tuple is the cheapest immutable object to make.
    """

    packed: bytes
    port: int
    text: str

    @classmethod
    def parse(cls, text: object) -> Address:
        """Parse ``"ip:port"`` or ``"[ipv6]:port"``; raise :class:`AddressError` with a reason."""
        # An address as the pattern writes it is canonical and dialable as it is: 1.1 us where
        # the general path takes 2.4 (``python -m benchmarks.bench_paths``, parse).
        if isinstance(text, str) and _dialable_v4(text) is not None:
            dotted, _, digits = text.rpartition(":")
            return cls(socket.inet_pton(socket.AF_INET, dotted), int(digits), text)
        if not isinstance(text, str):
            raise AddressError(text, f"expected a string, got {type(text).__name__}")
        if not text or len(text) > MAX_ADDR_CHARS:
            raise AddressError(text, f"must be 1 to {MAX_ADDR_CHARS} characters")
        bracketed = text[0] == "["
        if bracketed:
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
        packed = _packed_v4(host) if not bracketed else None
        if packed is not None and port_text[0] != "0":
            _check_v4(text, packed)
            return cls(packed, port, text)  # the text is canonical: it read back as itself
        if packed is None:
            packed = _packed_slow(text, host, bracketed)
        if len(packed) == 4:
            _check_v4(text, packed)
            return cls(packed, port, f"{socket.inet_ntop(socket.AF_INET, packed)}:{port}")
        return cls(packed, port, f"[{ipaddress.IPv6Address(packed)}]:{port}")

    @property
    def ip(self) -> IPAddress:
        """The address as an :mod:`ipaddress` object."""
        return ipaddress.ip_address(self.packed)

    @property
    def host(self) -> str:
        """The canonical IP literal, without brackets."""
        if len(self.packed) == 4:
            return socket.inet_ntop(socket.AF_INET, self.packed)
        return str(ipaddress.IPv6Address(self.packed))

    @property
    def group(self) -> str:
        """The network group for diversity: the /16 of an IPv4 address, the /32 of an IPv6 one."""
        if len(self.packed) == 4:
            return f"{self.packed[0]}.{self.packed[1]}.0.0/16"
        return f"{ipaddress.IPv6Address(self.packed[:4] + bytes(12))}/32"

    @property
    def scope(self) -> Scope:
        """Loopback, link-local, private (RFC 1918, CGNAT, ULA) or global.

        An IPv6 address that embeds an IPv4 address (:func:`embedded_ipv4`) reaches no wider
        than what it embeds: its scope is the narrowest of the IPv4 addresses it may stand for,
        and a local-use translation address (RFC 8215) is private at the widest.
        """
        packed = self.packed
        if len(packed) == 4:
            return _v4_scope(packed)
        ip = self.ip
        if ip.is_loopback:
            return Scope.LOOPBACK
        if _within(ip, _LINK):
            return Scope.LINK
        if _within(ip, _PRIVATE):
            return Scope.PRIVATE
        embedded = embedded_ipv4(packed)
        if embedded:
            scope = min(map(_v4_scope, embedded))
            return min(scope, Scope.PRIVATE) if packed[:6] == _LOCAL_USE_NAT64 else scope
        return Scope.GLOBAL

    def __str__(self) -> str:
        return self.text


def _v4_scope(packed: bytes) -> Scope:
    """The scope of an IPv4 address, as four bytes."""
    a, b = packed[0], packed[1]
    if a == 127:
        return Scope.LOOPBACK
    if a == 169 and b == 254:
        return Scope.LINK
    if (
        a == 10
        or (a == 172 and 16 <= b < 32)
        or (a == 192 and b == 168)
        or (a == 100 and 64 <= b < 128)
    ):
        return Scope.PRIVATE
    return Scope.GLOBAL


_WELL_KNOWN_NAT64 = bytes.fromhex("0064ff9b") + bytes(8)
"""64:ff9b::/96, the first 12 bytes."""
_LOCAL_USE_NAT64 = bytes.fromhex("0064ff9b0001")
"""64:ff9b:1::/48, the first 6 bytes."""
_LOCAL_USE_READINGS = ((6, 7, 9, 10), (7, 9, 10, 11), (9, 10, 11, 12))
"""Where RFC 6052 puts the IPv4 bytes behind a /48, /56 or /64 prefix (byte 8, bits 64 to 71,
is always zero there); behind a /96 they are the last four."""
_SIX_TO_FOUR = bytes.fromhex("2002")
_TEREDO = bytes.fromhex("20010000")


def embedded_ipv4(packed: bytes) -> tuple[bytes, ...]:
    """The IPv4 addresses (four bytes each) an IPv6 address (16 bytes) stands for, as the
    standard translation and tunnelling prefixes embed them; none for any other address.

    - ``64:ff9b::/96``, NAT64's well-known prefix (RFC 6052, section 2.1): the last 32 bits.
    - ``64:ff9b:1::/48``, the local-use translation prefix (RFC 8215): a domain may carve out of
      it a prefix of any length RFC 6052 allows (/48, /56, /64, /96), which places the IPv4
      bits differently (RFC 6052, section 2.2), and the address does not say which: every
      reading counts.
    - ``2002::/16``, 6to4 (RFC 3056, section 2): bits 16 to 47, the 6to4 router's IPv4.
    - ``2001::/32``, Teredo (RFC 4380, section 4): the server's IPv4 (bits 32 to 63), and the
      client's mapped IPv4 (the last 32 bits, every bit inverted): a Teredo node reaches the
      peer through both.

    IPv4-mapped addresses (``::ffff:0:0/96``) are IPv4 once parsed (:meth:`Address.parse`), and
    IPv4-compatible ones (``::/96``, deprecated by RFC 4291) are refused as reserved.
    """
    if packed[:12] == _WELL_KNOWN_NAT64:
        return (packed[12:],)
    if packed[:6] == _LOCAL_USE_NAT64:
        readings = [packed[12:]]
        if packed[8] == 0:
            readings += [bytes(packed[i] for i in at) for at in _LOCAL_USE_READINGS]
        return tuple(readings)
    if packed[:2] == _SIX_TO_FOUR:
        return (packed[2:6],)
    if packed[:4] == _TEREDO:
        return (packed[4:8], bytes(b ^ 0xFF for b in packed[12:]))
    return ()


def _packed_v4(host: str) -> bytes | None:
    """The four bytes of a dotted IPv4 literal in canonical form, else None (not decided)."""
    try:
        packed = socket.inet_pton(socket.AF_INET, host)
    except OSError:
        return None
    # Only a literal that reads back as itself is decided here; ipaddress decides the rest.
    return packed if socket.inet_ntop(socket.AF_INET, packed) == host else None


def _packed_slow(text: str, host: str, bracketed: bool) -> bytes:
    try:
        ip: IPAddress = ipaddress.ip_address(host)
    except ValueError:
        raise AddressError(
            text, f"{host!r} is not an IP literal (hostnames are not stored)", Reason.HOSTNAME
        ) from None
    if isinstance(ip, ipaddress.IPv4Address) == bracketed:
        raise AddressError(text, "an IPv4 address must not be bracketed")
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped.packed
        if ip.is_unspecified:
            raise AddressError(text, "the unspecified address is not dialable", Reason.UNSPECIFIED)
        if ip.is_multicast:
            raise AddressError(text, "a multicast address is not dialable", Reason.MULTICAST)
        if not _within(ip, _ASSIGNED_V6):
            raise AddressError(text, "a reserved address is not dialable", Reason.RESERVED)
    return ip.packed


def _check_v4(text: str, packed: bytes) -> None:
    a, b = packed[0], packed[1]
    if packed == b"\0\0\0\0":
        raise AddressError(text, "the unspecified address is not dialable", Reason.UNSPECIFIED)
    if 224 <= a < 240:
        raise AddressError(text, "a multicast address is not dialable", Reason.MULTICAST)
    if a == 0 or a >= 240 or (a == 198 and b in (18, 19)):  # 0/8, 240/4, 198.18/15
        raise AddressError(text, "a reserved address is not dialable", Reason.RESERVED)


def parse_address(text: object) -> Address:
    """:meth:`Address.parse`."""
    return Address.parse(text)


def canonical_addr(text: object) -> str:
    """The canonical key of an address; raise :class:`AddressError` with a reason."""
    return Address.parse(text).text


def network_group(addr: str) -> str:
    """The network group of a canonical address."""
    return Address.parse(addr).group


def valid_node_id(node_id: object) -> str | None:
    """``node_id`` if it is a well-formed id (at most 128 of ``[A-Za-z0-9._-]``), else None."""
    if isinstance(node_id, str) and _NODE_ID_RE.fullmatch(node_id):
        return node_id
    return None


def valid_capabilities(capabilities: object) -> tuple[str, ...]:
    """The well-formed, distinct capabilities, at most :data:`MAX_CAPABILITIES` of them."""
    if isinstance(capabilities, str) or not isinstance(capabilities, list | tuple):
        return ()
    kept = [c for c in capabilities if isinstance(c, str) and _CAPABILITY_RE.fullmatch(c)]
    return tuple(dict.fromkeys(kept))[:MAX_CAPABILITIES]


def certificate_phrase(met: str | None) -> str:
    """How a message names what a dial met: ``certificate <fingerprint>``, or ``no certificate
    (plaintext)`` for :data:`NO_CERTIFICATE` and None."""
    if met is None or met == NO_CERTIFICATE:
        return "no certificate (plaintext)"
    return f"certificate {met}"


def valid_fingerprint(fingerprint: object) -> str | None:
    """``fingerprint`` as the store keeps it (:data:`FINGERPRINT_PATTERN`: lowercase hex) when it
    is a SPKI SHA-256 in hex, of either case, else None."""
    if isinstance(fingerprint, str) and len(fingerprint) == 64:
        lowered = fingerprint.lower()
        if _FINGERPRINT_RE.fullmatch(lowered):
            return lowered
    return None


# -- validators ------------------------------------------------------------------------------


def non_negative(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    """An integer field's validator: an ``int`` (not a ``bool``, a ``float`` or another
    subclass, which the peer file would not hold as its digits) of at least 0."""
    if type(value) is not int:
        raise TypeError(f"{attribute.name} must be an integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


def _optional_non_negative(
    instance: object, attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None:
        non_negative(instance, attribute, value)  # type: ignore[arg-type]


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


def _fingerprint(
    instance: object, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is not None and not _FINGERPRINT_RE.fullmatch(value):
        raise ValueError(
            f"{attribute.name} {value!r} must be a SPKI SHA-256 fingerprint: 64 lowercase hex "
            "digits"
        )


def _changed_to(
    instance: object, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is not None and value != NO_CERTIFICATE and not _FINGERPRINT_RE.fullmatch(value):
        raise ValueError(
            f"{attribute.name} {value!r} must be a SPKI SHA-256 fingerprint (64 lowercase hex "
            f"digits) or {NO_CERTIFICATE!r}"
        )


def field_pattern(
    regex: str, *, complete: bool = True, exact: str | None = None, since: int = 1
) -> dict[str, object]:
    """Field metadata: the text a valid value is written as in the peer file.

    ``complete`` says that the pattern admits only valid values, so that a value read through
    it needs no validator; a value whose rule no pattern can state (an address in canonical
    form and dialable, distinct capabilities) is read with its validator run. ``exact``, for
    such a field, is a narrower pattern that admits only valid values: a value it matches
    needs no validator either (an IPv4 address, :data:`DIALABLE_V4_PATTERN`). ``since`` is the
    file schema that brought the field: a file whose entries all hold it at its default is
    written in the schema before (:mod:`thenodes_peerstore.codec`).
    """
    return {"pattern": regex, "complete": complete, "exact": exact, "since": since}


@attrs.frozen(weakref_slot=False)
class PeerEntry:
    """One known peer. Times are integer Unix seconds.

    The fields, in this order, with their types and defaults, are the peer file's entry schema:
    :mod:`thenodes_peerstore.codec` derives its writer and its reader from them. A field's
    ``pattern`` metadata is the text of a valid value; an optional field is left out of the file
    while it holds its default.

    No weak reference to an entry is ever taken: without the slot for one, the two certificate
    fields cost an entry 8 bytes, not 16 (of 291 B an entry held at the largest cap; ``python -m
    benchmarks.bench_vs_libp2p --only memory``).
    """

    addr: str = attrs.field(
        validator=_canonical,
        metadata=field_pattern(ADDR_PATTERN, complete=False, exact=DIALABLE_V4_PATTERN),
    )
    source: Source
    first_seen: int = attrs.field(validator=non_negative, metadata=field_pattern(COUNT_PATTERN))
    last_seen: int = attrs.field(validator=non_negative, metadata=field_pattern(COUNT_PATTERN))
    last_connected: int | None = attrs.field(
        default=None, validator=_optional_non_negative, metadata=field_pattern(COUNT_PATTERN)
    )
    last_attempt: int | None = attrs.field(
        default=None, validator=_optional_non_negative, metadata=field_pattern(COUNT_PATTERN)
    )
    failures: int = attrs.field(
        default=0, validator=non_negative, metadata=field_pattern(COUNT_PATTERN)
    )
    node_id: str | None = attrs.field(
        default=None, validator=_node_id, metadata=field_pattern(NODE_ID_PATTERN)
    )
    capabilities: tuple[str, ...] = attrs.field(
        default=(),
        validator=_capabilities,
        metadata=field_pattern(CAPABILITY_PATTERN, complete=False),
    )
    cert_fingerprint: str | None = attrs.field(
        default=None,
        validator=_fingerprint,
        metadata=field_pattern(FINGERPRINT_PATTERN, since=CERTIFICATE_SCHEMA),
    )
    """The certificate the peer was proven with: the SPKI SHA-256 of the TLS certificate it
    presented to the node's dial that proved it, or None (proven on plaintext, or never)."""
    cert_changed_to: str | None = attrs.field(
        default=None,
        validator=_changed_to,
        metadata=field_pattern(
            f"(?:{FINGERPRINT_PATTERN}|{NO_CERTIFICATE})", since=CERTIFICATE_SCHEMA
        ),
    )
    """What a later dial of ``addr`` presented instead of :attr:`cert_fingerprint` (a
    fingerprint, or :data:`NO_CERTIFICATE`): whoever answers there is not the peer the node
    proved, and the entry is not proven until that certificate answers again or the operator
    accepts this one (:func:`~thenodes_peerstore.store.accept_certificate`). None otherwise."""

    @property
    def proven(self) -> bool:
        """Whether the node itself completed a handshake on a connection it dialled to ``addr``,
        and no later dial there presented another certificate than the one it proved (see
        :attr:`cert_changed_to`): only such peers enter the reconnect plan."""
        return self.source is Source.CONNECTED and self.cert_changed_to is None

    @classmethod
    def new(cls, addr: str | Address, source: Source, now: int) -> PeerEntry:
        """A peer first seen now; an :class:`Address` is canonical already and not parsed again."""
        if isinstance(addr, str):
            return cls(addr=addr, source=source, first_seen=now, last_seen=now)
        return seen_first(addr.text, source, now)

    def replace(self, **changes: Any) -> PeerEntry:
        """This entry with ``changes``, validating the changed fields only.

        The other fields were validated when this entry was made; entries change on every
        connection and every peer list.
        """
        entry = _copy(self)
        for name, value in changes.items():
            try:
                field, validator, set_slot = _CHANGERS[name]
            except KeyError:
                raise TypeError(f"PeerEntry has no field {name!r}") from None
            if validator is not None:
                validator(self, field, value)
            set_slot(entry, value)
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


_SET_SLOT = {name: getattr(PeerEntry, name).__set__ for name in _FIELDS}
"""Each field's slot setter: what attrs' ``__init__`` ends in, less the lookup of the field by
name. The generated functions below make entries with them."""
_CHANGERS = {name: (field, field.validator, _SET_SLOT[name]) for name, field in _FIELDS.items()}
"""A field's attribute, validator and slot setter, by name: what :meth:`PeerEntry.replace`
needs of a changed field."""
_OPTIONAL = [f for f in _FIELDS.values() if f.default is not attrs.NOTHING]


def _generated(source: str, name: str) -> Callable[..., PeerEntry]:
    """The function ``name`` of ``source``, which makes an entry over the slots' setters
    (``_<field>``), with ``_new`` and each optional field's ``_<field>_default`` at hand."""
    namespace: dict[str, Any] = {"_new": object.__new__, "PeerEntry": PeerEntry}
    namespace.update((f"_{field}", setter) for field, setter in _SET_SLOT.items())
    namespace.update((f"_{f.name}_default", f.default) for f in _OPTIONAL)
    exec(source, namespace)  # noqa: S102 - built from the model's fields
    generated: Callable[..., PeerEntry] = namespace[name]
    return generated


_copy: Callable[[PeerEntry], PeerEntry] = _generated(
    "\n".join(
        [
            "def copy(source):",
            "    entry = _new(PeerEntry)",
            *(f"    _{name}(entry, source.{name})" for name in _FIELDS),
            "    return entry\n",
        ]
    ),
    "copy",
)
"""A copy of an entry, for :meth:`PeerEntry.replace` to change. Unrolled over the slots' own
setters, a replace of one field takes 0.90 us, where a loop over the fields through
``object.__setattr__`` took 1.7 and ``attrs.evolve`` takes 5.7 (``python -m
benchmarks.bench_paths``, replace): every connection and every save replaces entries."""


seen_first: Callable[[str, Source, int], PeerEntry] = _generated(
    "\n".join(
        [
            "def seen_first(addr, source, now):",
            "    entry = _new(PeerEntry)",
            "    _addr(entry, addr)",
            "    _source(entry, source)",
            "    _first_seen(entry, now)",
            "    _last_seen(entry, now)",
            *(f"    _{f.name}(entry, _{f.name}_default)" for f in _OPTIONAL),
            "    return entry\n",
        ]
    ),
    "seen_first",
)
"""``PeerEntry.new`` for an address known canonical (``Address.parse(...).text``, or a match of
:data:`DIALABLE_V4_PATTERN`): no validator runs. One is made for every new address of every
peer list; unrolled over the slots' own setters it takes 0.6 us where attrs' ``__init__`` with
its validators takes 2.8 (``python -m benchmarks.bench_paths``, entry)."""


@attrs.frozen
class PlanHead:
    """What a file says first, so that a start reads its plan before the rest of the file.

    The store chooses :attr:`entries` (:meth:`~thenodes_peerstore.store.PeerStore.plan_head`),
    the codec writes them as the file's first tables with the rest of this head in comments
    above them, and a start computes its plan from them alone when the rest cannot change it
    (:func:`~thenodes_peerstore.store.plan_from_head`).
    """

    entries: tuple[PeerEntry, ...]
    """Proven peers of longest standing, best first."""
    proven: int
    """How many proven peers the file holds, these included."""
    rest: PeerEntry | None = None
    """A proven entry at least as good as every other proven peer of the file in each field
    a plan is decided by: the least address and ``first_seen`` (no later than its
    ``last_seen``), the greatest ``last_seen``, ``last_connected`` and ``last_attempt``, the
    fewest failures; None when the file holds no other."""
    suspended: int = 0
    """How many entries of the file are ``Connected`` but not proven, a dial having met another
    certificate (:attr:`PeerEntry.cert_changed_to`): never planned, they share the proven
    peers' tier, so the cap counts them with the proven ones."""

    @classmethod
    def of(
        cls, entries: Iterable[PeerEntry], others: Sequence[PeerEntry], suspended: int = 0
    ) -> PlanHead:
        """The head of these proven ``entries``, the file's ``others`` bounded by :attr:`rest`,
        and the number of its ``suspended`` entries."""
        first = tuple(entries)
        if not others:
            return cls(first, len(first), suspended=suspended)
        # Each field in one pass over the others.
        column = {name: list(map(operator.attrgetter(name), others)) for name in _BOUNDED}
        rest = PeerEntry(
            addr=min(column["addr"]),
            source=Source.CONNECTED,
            first_seen=min(map(min, column["first_seen"], column["last_seen"])),
            last_seen=max(column["last_seen"]),
            last_connected=max(filter(_is_set, column["last_connected"]), default=None),
            last_attempt=max(filter(_is_set, column["last_attempt"]), default=None),
            failures=min(column["failures"]),
        )
        return cls(first, len(first) + len(others), rest, suspended)

    def describes(self, entries: Sequence[PeerEntry]) -> bool:
        """Whether these entries, a whole file's in its order, are the ones this head was made
        from: its entries first, as many proven and suspended ones in all, each other proven
        one within :attr:`rest`."""
        count = len(self.entries)
        if tuple(entries[:count]) != self.entries:
            return False
        connected = [e for e in entries[count:] if e.source is Source.CONNECTED]
        others = [e for e in connected if e.proven]
        suspended = len(connected) - len(others)
        if len(others) + count != self.proven or suspended != self.suspended:
            return False
        if not others:
            return self.rest is None
        return self.rest is not None and self == PlanHead.of(self.entries, others, suspended)


_BOUNDED = ("addr", "first_seen", "last_seen", "last_connected", "last_attempt", "failures")
_is_set = functools.partial(operator.is_not, None)
