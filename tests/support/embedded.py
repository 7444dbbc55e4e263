"""IPv4 addresses spelt as IPv6: each standard embedding, written out from its RFC.

The store's scope rule must see through every one of them; the tests build them here, from the
RFCs' layouts, independently of how the store reads them.
"""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

IPv4 = ipaddress.IPv4Address

WELL_KNOWN_NAT64 = "64:ff9b::/96"
LOCAL_USE_NAT64 = "64:ff9b:1::/48"
SIX_TO_FOUR = "2002::/16"
TEREDO = "2001::/32"
MAPPED = "::ffff:0:0/96"

LOCAL_USE_LENGTHS = (48, 56, 64, 96)
"""The prefix lengths RFC 6052 (section 2.2) allows that a domain may carve from RFC 8215's /48."""


def nat64(v4: IPv4, prefix: str = WELL_KNOWN_NAT64, length: int = 96, rest: int = 0) -> str:
    """``v4`` behind a NAT64 prefix of ``length`` bits (RFC 6052, section 2.2): the IPv4 bits
    follow the prefix, skipping bits 64 to 71 (the "u" octet, zero); ``rest`` fills the bits
    of a /96 prefix that the /48 leaves free."""
    base = int(ipaddress.ip_network(prefix).network_address)
    if length == 96:
        value = base | (rest % (1 << 48)) << 32 | int(v4)
    else:
        bits = int(v4)
        before_u = 64 - length  # IPv4 bits that fit between the prefix and the u octet
        high, low = bits >> (32 - before_u), bits & ((1 << (32 - before_u)) - 1)
        value = base | high << 64 | low << (56 - (32 - before_u))
    return f"[{ipaddress.IPv6Address(value)}]:7447"


def six_to_four(v4: IPv4, subnet: int = 0) -> str:
    """``v4``'s 6to4 prefix 2002:V4ADDR::/48 (RFC 3056, section 2), one host in it."""
    value = 0x2002 << 112 | int(v4) << 80 | (subnet % (1 << 16)) << 64 | 1
    return f"[{ipaddress.IPv6Address(value)}]:7447"


def teredo(server: IPv4, client: IPv4, port: int = 7447, flags: int = 0) -> str:
    """A Teredo address (RFC 4380, section 4): prefix, server, flags, then the client's mapped
    port and IPv4, each bit inverted."""
    value = (
        0x20010000 << 96
        | int(server) << 64
        | (flags % (1 << 16)) << 48
        | (port ^ 0xFFFF) << 32
        | int(client) ^ 0xFFFFFFFF
    )
    return f"[{ipaddress.IPv6Address(value)}]:7447"


def mapped(v4: IPv4) -> str:
    """``v4`` as an IPv4-mapped IPv6 address (RFC 4291, section 2.5.5.2)."""
    return f"[::ffff:{v4}]:7447"


NARROW_NETS = (
    "127.0.0.0/8",
    "169.254.0.0/16",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
)
"""The IPv4 networks of every scope narrower than public, as the store's rules name them:
loopback, link-local, private (RFC 1918) and shared (CGNAT, RFC 6598)."""

narrow_v4 = st.one_of(*(st.ip_addresses(network=net) for net in NARROW_NETS))
"""An IPv4 address of a scope narrower than public."""
v4_addresses = st.one_of(st.ip_addresses(v=4), narrow_v4)
"""Any IPv4 address, the narrow scopes drawn often."""
