"""``python -m thenodes_peerstore``: the ``peerstore`` command."""

from thenodes_console.entry import peerstore

raise SystemExit(peerstore())
