"""What the two commands, ``hostsim`` and ``peerstore``, share, stated once for both.

- :func:`counted`: a count and its noun, ``1 peer``, ``2 peers``, in every message of both
  packages;
- :mod:`thenodes_console.entry`: the console scripts, which answer Ctrl-C from their first
  instant (before the command's modules are imported);
- :mod:`thenodes_console.completion`: shell completion written from a command's own parser.

It imports neither package, and nothing beyond the standard library.
"""

from __future__ import annotations

__all__ = ["EXIT_INTERRUPTED", "counted", "interrupted_line"]

EXIT_INTERRUPTED = 130
"""The exit status of a command stopped by Ctrl-C (SIGINT), as a shell reports it: 128 + 2."""

_SIBILANT = ("s", "x", "z", "ch", "sh")


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``number`` and ``noun``, in the singular for 1 and in the plural otherwise.

    The plural is English's regular one (``peer`` -> ``peers``, ``address`` -> ``addresses``,
    ``entry`` -> ``entries``) unless ``plural`` names it; a noun of several words takes the
    plural on its last word (``fake address`` -> ``fake addresses``).

    >>> counted(1, "connection"), counted(2, "address"), counted(0, "entry")
    ('1 connection', '2 addresses', '0 entries')
    """
    return f"{number} {noun if number == 1 else plural or _plural(noun)}"


def _plural(noun: str) -> str:
    if noun.endswith(_SIBILANT):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return noun[:-1] + "ies"
    return noun + "s"


def interrupted_line(prog: str, detail: str = "") -> str:
    """The one line a command writes on stderr when Ctrl-C stops it."""
    return f"{prog}: interrupted{'; ' + detail if detail else ''}\n"
