"""Names as TheNodes derives and checks them: realm codes, realm versions and node ids.

One statement of these rules for the whole distribution: hostsim derives a node's realm code
with it, and the plugin and its ``peerstore`` command derive and check the same codes with it.
It imports neither package.

A realm code is derived from a realm name exactly as TheNodes' ``to_kebab_ascii_strict``
(src/utils/naming.rs) derives it, so a node of this project and a TheNodes node with the same
``[realm] name`` are in the same realm:

- ASCII letters and digits are kept, lowercased;
- ``ü`` and ``Ü`` become ``ue``;
- a character of the Latin blocks becomes the ASCII letters and digits of its deunicode
  transliteration (``é`` -> ``e``, ``Æ`` -> ``ae``, ``ß`` -> ``ss``), or a separator when that has
  none;
- every other character (ASCII punctuation and spaces, other scripts, symbols) is a separator;
- runs of separators become one ``-``, and separators at either end are dropped;
- an empty result is ``default``.

A code names the realm's files, so it is also checked against the file-name rules: lowercase
ASCII ``[a-z0-9][a-z0-9._-]*``, at most 64 characters, never ``.`` or ``..`` and not a name
Windows keeps for a device. A derived code always has the alphabet; only its length or a device
name can make it unusable.
"""

from __future__ import annotations

import re

from thenodes_naming.latin_ascii import LATIN_ASCII, LATIN_BLOCKS

__all__ = [
    "DEFAULT_REALM_CODE",
    "DEFAULT_REALM_VERSION",
    "LATIN_ASCII",
    "LATIN_BLOCKS",
    "NODE_ID_MAX",
    "NODE_ID_PATTERN",
    "REALM_CODE_MAX",
    "REALM_CODE_PATTERN",
    "WINDOWS_DEVICE_NAMES",
    "is_windows_device_name",
    "node_id_problem",
    "realm_code",
    "realm_code_problem",
]

DEFAULT_REALM_CODE = "default"
"""TheNodes' code of a name with no letter or digit it keeps (and of the default realm)."""
DEFAULT_REALM_VERSION = "1.0"
"""TheNodes' realm version when a config's ``[realm]`` names none; nodes share a realm when its
code and its version match."""
REALM_CODE_MAX = 64
REALM_CODE_PATTERN = r"[a-z0-9][a-z0-9._-]{0,63}"
"""A realm code that can name a file, but for the names Windows keeps for devices."""
REALM_CODE_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
WINDOWS_DEVICE_NAMES = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"com{n}" for n in range(1, 10)]
    + [f"lpt{n}" for n in range(1, 10)]
)
"""Names Windows keeps for devices (``con``, ``nul``, ``com1``...); with an extension too."""
NODE_ID_MAX = 128
NODE_ID_PATTERN = r"[A-Za-z0-9._-]{1,128}"
"""A node id as TheNodes accepts it in a HELLO and keeps it in its peer record."""
NODE_ID_RE = re.compile(NODE_ID_PATTERN)
_SEPARATORS = re.compile(r"-{2,}")
_UMLAUT_U = frozenset("üÜ")


def realm_code(name: str) -> str:
    """The realm code TheNodes derives from ``name`` (``"Für Elise!"`` -> ``"fuer-elise"``)."""
    parts: list[str] = []
    for ch in name:
        if ch.isascii():
            parts.append(ch.lower() if ch.isalnum() else "-")
        elif ch in _UMLAUT_U:
            parts.append("ue")
        else:
            parts.append(LATIN_ASCII.get(ord(ch)) or "-")
    code = _SEPARATORS.sub("-", "".join(parts)).strip("-")
    return code or DEFAULT_REALM_CODE


def realm_code_problem(code: str) -> str | None:
    """Why ``code`` cannot name a realm's files, or None when it can."""
    if not REALM_CODE_RE.fullmatch(code):
        return (
            'must be lowercase ASCII letters, digits, ".", "_" or "-",'
            " starting with a letter or digit"
        )
    if len(code) > REALM_CODE_MAX:
        return f"must be at most {REALM_CODE_MAX} characters (it has {len(code)})"
    if is_windows_device_name(code):
        return "must not be a name Windows keeps for a device (con, prn, aux, nul, com1-9, lpt1-9)"
    return None


def is_windows_device_name(name: str) -> bool:
    """Whether Windows keeps ``name`` for a device, with or without an extension (``nul.txt``)."""
    return name.partition(".")[0].rstrip(" ").lower() in WINDOWS_DEVICE_NAMES


def node_id_problem(node_id: str) -> str | None:
    """Why ``node_id`` is not a node id TheNodes accepts, or None when it is one."""
    if not NODE_ID_RE.fullmatch(node_id):
        return f'must be 1 to {NODE_ID_MAX} ASCII letters, digits, ".", "_" or "-"'
    return None
